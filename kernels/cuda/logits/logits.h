// The logits reductions on the device: argmax, seeded sampling from given uniforms,
// and target log-probabilities, one block per row; kernels/cpu/logits.h is the
// reference. Results go to device arrays (the backend downloads them: a few bytes a
// row instead of the row).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"

namespace gb::kernels::cuda {

// ids[r] = the lowest id of the largest logit of row r; logits [rows, vocab].
Status argmax_rows(cudaStream_t s, const float* logits, int64_t rows, int64_t vocab, int32_t* ids);

// ids[r] = the token drawn from row r with uniform u[r] in [0, 1), as
// kernels::cpu::sample_row draws it (temperature > 0), except that the
// probabilities are summed in 2^-40 fixed point (see logits.cu).
Status sample_rows(cudaStream_t s, const float* logits, int64_t rows, int64_t vocab, double temperature,
                   int64_t top_k, double top_p, const double* u, int32_t* ids);

// lp[r] = log softmax(logits[r, :])[targets[r]] in f64; targets[r] < 0: lp[r] = 0.
Status target_log_probs(cudaStream_t s, const float* logits, int64_t rows, int64_t vocab, const int32_t* targets,
                        double* lp);

}  // namespace gb::kernels::cuda

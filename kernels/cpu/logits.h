// The reductions of a row of logits to what a decode step or a score needs: the
// argmax id, a token drawn as engine/model/sampler.h draws it from a given uniform,
// and the log-probability of a target token. The reference the CUDA kernels
// (kernels/cuda/logits/) are checked against; plain loops in f64, not tuned. Not
// here: the random generator (the caller draws the uniform) and any batching.
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

// The lowest id of the largest logit (as torch.argmax); row [vocab], vocab >= 1.
int32_t argmax_row(const float* logits, int64_t vocab);

// The token drawn from the row with uniform u01 in [0, 1): candidates by descending
// logit (ties by id), cut to the top_k (0: all), then to the smallest prefix whose
// probability reaches top_p (1: all), p_i = exp((l_i - max) / temperature) in f64;
// the first candidate whose running sum exceeds u01 times the kept sum.
// temperature == 0: argmax_row.
int32_t sample_row(const float* logits, int64_t vocab, double temperature, int64_t top_k, double top_p, double u01);

// log softmax(logits)[target] in f64: -(log(sum_i exp(l_i - max)) + max - l_target),
// the sum in id order.
double target_log_prob_row(const float* logits, int64_t vocab, int32_t target);

}  // namespace gb::kernels::cpu

// Activations quantized to 8 bits for the q8 mode of the packed linear kernels, as
// llama.cpp quantizes them for its q-type dot products: q8_0-style blocks of 32 (for
// q8_0, q4_0, q4_1, q5_0, q5_1 weights) and q8_K blocks of 256 with sums per 16 (for
// the K-quants q2_K to q6_K). Not the weight codecs (kernels/codecs/): these exist only for the
// duration of one linear op, on the host.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels::cpu {

// How a linear layer treats its activations: f32 as they are (every codec), or
// quantized to 8 bits per block (q8: only the GGUF codecs that have a q8 kernel;
// the others still read f32).
enum class ActivationMode : uint8_t { kF32, kQ8 };

const char* activation_mode_name(ActivationMode m);  // "f32", "q8"

// x[k] ~= d * qs[k]; s = d * sum(qs) (for the codecs with a min: q4_1, q5_1).
struct ActQ8_0 {
  float d;
  float s;
  int8_t qs[32];
};

// x[k] ~= d * qs[k]; bsums[j] = sum of qs[16 j, 16 j + 16).
struct ActQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

// The q8 activation blocks a codec's kernel reads: 32 (q8_0 ... q5_1), 256 (q2_K
// ... q6_K) or 0 (none: the codec reads f32 activations).
int q8_activation_block(WeightCodec c);

// Rows of x [rows, cols] as blocks, row r at out + r * (cols / block); cols must be a
// multiple of the block. Symmetric round-to-nearest with d = absmax / 127.
void quantize_activations_q8_0(const float* x, int64_t rows, int64_t cols, std::vector<ActQ8_0>* out);
void quantize_activations_q8_K(const float* x, int64_t rows, int64_t cols, std::vector<ActQ8_K>* out);

// Activations of one linear op in the forms its weights' kernels need (a fused
// layer's parts may differ in codec): made on demand by prepare().
struct QuantizedActivations {
  const float* x = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<ActQ8_0> q8_0;
  std::vector<ActQ8_K> q8_K;
  bool has_q8_0 = false;
  bool has_q8_K = false;

  void reset(const float* x_, int64_t rows_, int64_t cols_) {
    x = x_;
    rows = rows_;
    cols = cols_;
    has_q8_0 = has_q8_K = false;
  }
  // Makes the blocks `c` reads (nothing for codecs without a q8 kernel).
  void prepare(WeightCodec c);
};

}  // namespace gb::kernels::cpu

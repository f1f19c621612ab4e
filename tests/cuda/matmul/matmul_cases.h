// The weight formats the CUDA linear tests run (tests/cuda/matmul/): every
// WeightCodec, with each scale layout the CPU kernels dispatch on (int8/fp8 per row,
// per tensor and per group; int4 groups; nf4/fp4 plain and double-quantized), and
// the shapes of each: a small one (odd K where the codec allows it) and a larger
// one; N is never a multiple of the GEMV's 8 output rows per block.
#pragma once

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "kernels/quantize/quantize_matrix.h"

namespace gb::kernels::cuda::testing {

struct MatmulCase {
  std::string name;
  QuantSpec spec;
  std::vector<int64_t> ks;  // input features to try
};

// gtest prints a parameter with this (else as raw bytes, into ctest's test names).
inline void PrintTo(const MatmulCase& c, std::ostream* os) { *os << c.name; }

inline QuantSpec make_spec(WeightCodec c, ScaleLayout l = ScaleLayout::kNone, int64_t g = 0, bool pt = false,
                           bool dq = false) {
  QuantSpec q;
  q.codec = c;
  q.layout = l;
  q.group = g;
  q.per_tensor = pt;
  q.double_quant = dq;
  return q;
}

inline std::vector<MatmulCase> matmul_cases() {
  using C = WeightCodec;
  using L = ScaleLayout;
  return {
      {"f32", make_spec(C::kF32), {97, 512}},
      {"f16", make_spec(C::kF16), {97, 512}},
      {"bf16", make_spec(C::kBF16), {97, 512}},
      {"int8_row", make_spec(C::kInt8, L::kRow), {97, 512}},
      {"int8_tensor", make_spec(C::kInt8, L::kRow, 0, true), {97, 512}},
      {"int8_g32", make_spec(C::kInt8, L::kGroup, 32), {96, 512}},
      {"int8_g128", make_spec(C::kInt8, L::kGroup, 128), {384}},
      {"fp8_row", make_spec(C::kFp8, L::kRow), {97, 512}},
      {"fp8_g64", make_spec(C::kFp8, L::kGroup, 64), {192, 512}},
      {"fp8_g8", make_spec(C::kFp8, L::kGroup, 8), {40}},  // a group smaller than a tuned piece
      {"int4_g32", make_spec(C::kInt4, L::kGroup, 32), {96, 512}},
      {"int4_g128", make_spec(C::kInt4, L::kGroup, 128), {384}},
      {"int4_g10", make_spec(C::kInt4, L::kGroup, 10), {50}},  // not whole pieces: the generic kernel
      {"nf4", make_spec(C::kNf4, L::kNone, 64), {192, 512}},
      {"nf4_dq", make_spec(C::kNf4, L::kNone, 64, false, true), {192, 512}},
      {"fp4", make_spec(C::kFp4, L::kNone, 64), {192}},
      {"fp4_dq", make_spec(C::kFp4, L::kNone, 64, false, true), {512}},
      {"q8_0", make_spec(C::kQ8_0), {96, 512}},
      {"q4_0", make_spec(C::kQ4_0), {96, 512}},
      {"q4_1", make_spec(C::kQ4_1), {96, 512}},
      {"q5_0", make_spec(C::kQ5_0), {96, 512}},
      {"q5_1", make_spec(C::kQ5_1), {96, 512}},
      {"q2_K", make_spec(C::kQ2_K), {256, 768}},
      {"q3_K", make_spec(C::kQ3_K), {256, 768}},
      {"q4_K", make_spec(C::kQ4_K), {256, 768}},
      {"q5_K", make_spec(C::kQ5_K), {256, 768}},
      {"q6_K", make_spec(C::kQ6_K), {256, 768}},
  };
}

inline std::vector<float> normal_values(int64_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(g);
  return v;
}

}  // namespace gb::kernels::cuda::testing

// MLP activations on f32, the CPU reference: SiLU-gated (Llama, Qwen) and GELU,
// exact or tanh-approximated (GPT-NeoX, GPT-2).
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

// out[r, i] = silu(gu[r, i]) * gu[r, inner + i] for rows r in [r0, r1);
// gu [rows, 2 * inner] (gate | up), out [rows, inner].
void silu_mul_rows(const float* gu, int64_t r0, int64_t r1, int64_t inner, float* out);

// x[i] = gelu(x[i]) in place for i in [i0, i1).
void gelu_range(float* x, int64_t i0, int64_t i1, bool tanh_approximation);

}  // namespace gb::kernels::cpu

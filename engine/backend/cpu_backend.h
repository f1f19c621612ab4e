// The CPU reference backend (engine/backend/cpu_backend.cc): host memory, the ops of
// kernels/cpu/ split across a thread pool.
#pragma once

#include <memory>

#include "engine/backend/backend.h"
#include "kernels/cpu/packed/activations_q8.h"

namespace gb::engine {

// The CPU reference backend with `threads` threads (<= 0: all hardware threads).
// `activations`: how linear layers treat their inputs: f32 (exact, the default), or
// q8: quantized to 8 bits per block for the GGUF codecs with a q8 kernel (q8_0,
// q4_0, q4_1, q5_0, q5_1, q2_K to q6_K), as llama.cpp computes them; every other
// codec reads f32 either way.
using kernels::cpu::ActivationMode;
std::unique_ptr<Backend> make_cpu_backend(int threads = 0, ActivationMode activations = ActivationMode::kF32);

}  // namespace gb::engine

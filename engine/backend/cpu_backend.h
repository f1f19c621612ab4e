// The CPU reference backend (engine/backend/cpu_backend.cc): host memory, the ops of
// kernels/cpu/ split across a thread pool.
#pragma once

#include <memory>

#include "engine/backend/backend.h"

namespace gb::engine {

// The CPU reference backend with `threads` threads (<= 0: all hardware threads).
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace gb::engine

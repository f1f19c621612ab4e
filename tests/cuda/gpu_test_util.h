// Shared by the CUDA tests (gb_cuda_tests): GB_REQUIRE_GPU() skips a test, with a
// message saying why, where the build has CUDA but the machine has no usable GPU
// (the developers' machines and CI). Tests of code that needs no GPU do not use it.
#pragma once

#include <gtest/gtest.h>

#include "kernels/device_info.h"

namespace gb::testing {

inline bool gpu_present() { return !gb::kernels::cuda_devices().empty(); }

}  // namespace gb::testing

#define GB_REQUIRE_GPU()                                                                    \
  do {                                                                                      \
    if (!::gb::testing::gpu_present())                                                      \
      GTEST_SKIP() << "no CUDA device on this machine: built with CUDA, not run (needs a GPU)"; \
  } while (0)

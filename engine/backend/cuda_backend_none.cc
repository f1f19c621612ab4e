// The CUDA backend's entry points in a build without CUDA (GRIDBENCH_CUDA=OFF or no
// nvcc): each is an error that says so. With CUDA, engine/backend/cuda_backend.cu
// defines them and this file compiles to nothing.
#include "engine/backend/cuda_backend.h"

#if !defined(GRIDBENCH_WITH_CUDA)

namespace gb::engine {

namespace {
constexpr const char* kNoCuda =
    "this gridbench was built without CUDA (nvcc was not found when it was configured, or GRIDBENCH_CUDA=OFF)";
}

bool cuda_backend_built() { return false; }

Result<std::unique_ptr<CudaBackend>> make_cuda_backend(int device) {
  return Error{"backend cuda:" + std::to_string(device) + ": " + kNoCuda};
}

Result<DeviceFreeMemory> cuda_device_free_memory(int device) {
  return Error{"cuda:" + std::to_string(device) + ": " + kNoCuda};
}

}  // namespace gb::engine

#endif

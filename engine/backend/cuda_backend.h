// The CUDA backend (engine/backend/cuda_backend.cu): device memory with exact
// accounting by category, one stream, and every Backend op as a kernel of
// kernels/cuda/ (the elementwise ops, matmul/, attention/). Declared for every
// build: without CUDA (engine/backend/cuda_backend_none.cc) make_cuda_backend is an
// error that says so, so that callers need no #ifdef. This header includes no CUDA
// header (the C++20 engine includes it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "engine/backend/backend.h"

namespace gb::engine {

// Every device allocation failure's message contains this, so that a job runner can
// tell an out-of-memory (the job's `oom` outcome) from any other failure.
inline constexpr std::string_view kDeviceOutOfMemory = "out of device memory";

// This backend's device memory, bytes. Exact: each live buffer counts the bytes
// cudaMalloc was asked for (the request rounded up to 256), under the category that
// was set when it was allocated; the staging rings and the kernels' workspace count
// as workspace. device_free/device_total: cudaMemGetInfo when the account was taken
// (the whole device: other processes and the CUDA context itself included).
struct DeviceMemoryAccount {
  uint64_t live[3] = {0, 0, 0};  // indexed by MemoryUse
  uint64_t peak[3] = {0, 0, 0};  // each category's own peak
  uint64_t live_total = 0;
  uint64_t peak_total = 0;  // the peak of live_total (not the sum of the peaks)
  uint64_t device_free = 0;
  uint64_t device_total = 0;
};

class CudaBackend : public Backend {
 public:
  virtual int device() const = 0;
  // Waits for the stream, then reads the account and cudaMemGetInfo.
  virtual DeviceMemoryAccount memory_account() = 0;
  // Forgets the peaks (they restart at the live figures).
  virtual void reset_peak() = 0;
};

// Whether this build compiled the CUDA backend (nvcc was found at configure time).
bool cuda_backend_built();

// A backend on cuda:device with its own stream. Errors: built without CUDA, no such
// device (naming the devices the runtime sees), or the context cannot be created.
Result<std::unique_ptr<CudaBackend>> make_cuda_backend(int device);

// cudaMemGetInfo of cuda:device: {free, total} bytes; an error without CUDA or device.
struct DeviceFreeMemory {
  uint64_t free = 0;
  uint64_t total = 0;
};
Result<DeviceFreeMemory> cuda_device_free_memory(int device);

// Why a job cannot run on cuda:device in this process (a build without CUDA, no
// such device), as a message for the job's `invalid` outcome; nullopt when it can
// (engine/backend/cuda_availability.cc).
std::optional<std::string> cuda_unavailable(int device);

// Whether `bytes` (a job's placement estimate) fit in cuda:device's free memory now:
// nullopt when they do or the free memory cannot be read, else why not, naming
// `what`, the bytes needed and free: the job's `oom` outcome before anything loads.
std::optional<std::string> device_memory_shortfall(int64_t bytes, int device, const std::string& what);

}  // namespace gb::engine

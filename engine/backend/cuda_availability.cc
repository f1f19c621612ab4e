// Whether a cuda job can run here and whether its estimate fits the device's free
// memory (engine/backend/cuda_backend.h): the checks a job runner makes before it
// loads anything. Plain C++ over cuda_backend_built() and cuda_device_free_memory(),
// so it builds with and without CUDA.
#include <cstdio>

#include "engine/backend/cuda_backend.h"
#include "kernels/device_info.h"

namespace gb::engine {

std::optional<std::string> cuda_unavailable(int device) {
  const std::string dev = "cuda:" + std::to_string(device);
  if (!cuda_backend_built())
    return "backend cuda: this gridbench-job was built without CUDA (nvcc was not found when it was configured, "
           "or GRIDBENCH_CUDA=OFF); run the job on a worker built with CUDA, or with backend: cpu";
  const std::vector<kernels::DeviceInfo> devices = kernels::cuda_devices();
  for (const kernels::DeviceInfo& d : devices)
    if (d.index == device) return std::nullopt;
  std::string known;
  for (const kernels::DeviceInfo& d : devices) known += (known.empty() ? "" : ", ") + ("cuda:" + std::to_string(d.index));
  return "backend cuda: " + dev + " is not on this machine (" +
         (devices.empty() ? std::string("the CUDA runtime sees no device") : "it has " + known) + ")";
}

std::optional<std::string> device_memory_shortfall(int64_t bytes, int device, const std::string& what) {
  if (bytes <= 0) return std::nullopt;
  Result<DeviceFreeMemory> m = cuda_device_free_memory(device);
  if (!m || static_cast<uint64_t>(bytes) <= m->free) return std::nullopt;
  char gib[96];
  std::snprintf(gib, sizeof gib, " (%.2f GiB needed, %.2f GiB free of %.2f GiB)", bytes / 1073741824.0,
                m->free / 1073741824.0, m->total / 1073741824.0);
  return what + " needs at least " + std::to_string(bytes) + " bytes of cuda:" + std::to_string(device) +
         " memory (the weights at their format's bits and the KV cache) but " + std::to_string(m->free) +
         " bytes are free" + gib + " (" + std::string(kDeviceOutOfMemory) + "); nothing was loaded";
}

}  // namespace gb::engine

// The device a worker registers: finding "cpu" or "cuda:N" and measuring it
// (DeviceReport, discover_device in worker_daemon.h). Not here: registering it
// (worker_rpcs.cc), nor making a child see it (setup in worker_daemon.cc).
#include <algorithm>
#include <vector>

#include "kernels/device_info.h"
#include "worker/daemon/worker_daemon.h"

namespace gb::worker {

Json DeviceReport::to_json() const {
  return Json{{"kind", kind},
              {"index", index},
              {"name", name},
              {"memory_bytes", memory_bytes},
              {"compute_capability", compute_capability},
              {"copy_bandwidth_bytes_per_s", copy_bandwidth_bytes_per_s},
              {"matmul_flops_per_s", matmul_flops_per_s}};
}

Status check_device_spec(const std::string& spec) {
  if (spec == "cpu") return Status::Ok();
  const std::string prefix = "cuda:";
  if (spec.rfind(prefix, 0) != 0 || spec.size() == prefix.size() || spec.size() > prefix.size() + 4 ||
      !std::all_of(spec.begin() + static_cast<long>(prefix.size()), spec.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Error{"--device: expected \"cpu\" or \"cuda:N\" (N a CUDA device index, e.g. cuda:0), got \"" + spec + "\""};
  }
  return Status::Ok();
}

Result<DeviceReport> discover_device(const std::string& spec, bool measure) {
  GB_RETURN_IF_ERROR(check_device_spec(spec));
  DeviceReport d;
  if (spec == "cpu") {
    kernels::DeviceInfo info = kernels::host_cpu();
    d.kind = "cpu";
    d.name = info.name;
    d.memory_bytes = info.memory_bytes;
    if (measure) d.copy_bandwidth_bytes_per_s = kernels::measure_host_copy_bandwidth(16u << 20, 8);
    return d;
  }
  const std::string prefix = "cuda:";
  const int index = std::stoi(spec.substr(prefix.size()));
  if (!kernels::built_with_cuda()) {
    return Error{"--device " + spec + ": this gridbench-worker was built without CUDA; use --device cpu"};
  }
  std::vector<kernels::DeviceInfo> devices = kernels::cuda_devices();
  const kernels::DeviceInfo* found = nullptr;
  std::string known;
  for (const auto& dev : devices) {
    if (dev.index == index) found = &dev;
    known += (known.empty() ? "" : ", ") + ("cuda:" + std::to_string(dev.index)) + " (" + dev.name + ")";
  }
  if (found == nullptr) {
    return Error{"--device " + spec + ": no such CUDA device (" +
                 (devices.empty() ? std::string("the CUDA runtime sees none") : "found: " + known) + ")"};
  }
  d.kind = "cuda";
  d.index = index;
  d.name = found->name;
  d.memory_bytes = found->memory_bytes;
  d.compute_capability = found->compute_capability;
  if (measure) {
    Result<double> bw = kernels::measure_cuda_copy_bandwidth(index, 256u << 20, 10);
    if (!bw.ok()) return Error{"--device " + spec + ": measuring copy bandwidth: " + bw.message()};
    d.copy_bandwidth_bytes_per_s = *bw;
    Result<double> flops = kernels::measure_cuda_matmul_flops(index, 4096, 10);
    if (!flops.ok()) return Error{"--device " + spec + ": measuring matmul rate: " + flops.message()};
    d.matmul_flops_per_s = *flops;
  }
  return d;
}

}  // namespace gb::worker

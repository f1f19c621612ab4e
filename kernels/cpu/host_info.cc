// The host CPU as a DeviceInfo, and its memcpy bandwidth.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "kernels/device_info.h"

namespace gb::kernels {

DeviceInfo host_cpu() {
  DeviceInfo d;
  d.kind = "cpu";
  d.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      if (pos != std::string::npos) d.name = line.substr(pos + 2);
      break;
    }
  }
  if (d.name.empty()) d.name = "cpu";
  std::ifstream meminfo("/proc/meminfo");
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemTotal:", 0) == 0) {
      d.memory_bytes = std::stod(line.substr(9)) * 1024.0;  // kB
      break;
    }
  }
  return d;
}

double measure_host_copy_bandwidth(size_t bytes, int iters) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  double best = 0;
  for (int i = 0; i < std::max(1, iters); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::memcpy(dst.data(), src.data(), bytes);
    auto t1 = std::chrono::steady_clock::now();
    double s = std::chrono::duration<double>(t1 - t0).count();
    if (s > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / s);
    src[i % bytes] = static_cast<char>(dst[(i * 7) % bytes] + 1);  // keep the copy observable
  }
  return best;
}

#ifndef GRIDBENCH_WITH_CUDA
bool built_with_cuda() { return false; }
std::vector<DeviceInfo> cuda_devices() { return {}; }
Result<double> measure_cuda_copy_bandwidth(int, size_t, int) {
  return Error{"this gridbench was built without CUDA (GRIDBENCH_CUDA=OFF or no nvcc)"};
}
Result<double> measure_cuda_matmul_flops(int, int, int) {
  return Error{"this gridbench was built without CUDA (GRIDBENCH_CUDA=OFF or no nvcc)"};
}
#endif

}  // namespace gb::kernels

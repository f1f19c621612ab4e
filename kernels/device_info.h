// Device discovery and the two figures a roofline needs measured rather than
// copied from a datasheet: copy bandwidth and matmul rate. CUDA devices come from
// kernels/cuda/device_query.cu when built with CUDA (none otherwise); the host CPU
// from kernels/cpu/host_info.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gb::kernels {

struct DeviceInfo {
  std::string kind;  // "cpu" or "cuda"
  int index = 0;     // cuda:N
  std::string name;
  double memory_bytes = 0;
  int compute_capability = 0;  // major*10 + minor; 0 for cpu
  int cores = 0;               // cpu: online cores; cuda: SMs
};

// The host CPU: model name from /proc/cpuinfo, memory from /proc/meminfo.
DeviceInfo host_cpu();

// Every CUDA device the runtime sees; empty when built without CUDA or none.
std::vector<DeviceInfo> cuda_devices();
bool built_with_cuda();

// Copy bandwidth in bytes/s (read + write counted once each, as STREAM's copy):
// host memcpy of `bytes` repeated `iters` times, best of the repeats.
double measure_host_copy_bandwidth(size_t bytes, int iters);
// Device-to-device copy kernel on cuda:index; an error without CUDA or device.
Result<double> measure_cuda_copy_bandwidth(int index, size_t bytes, int iters);
// Dense bf16 matmul rate in FLOP/s (2*n^3 per n x n x n GEMM, fp32 accumulate) on
// cuda:index through cuBLAS, best of `iters`; an error without CUDA or device.
Result<double> measure_cuda_matmul_flops(int index, int n, int iters);

}  // namespace gb::kernels

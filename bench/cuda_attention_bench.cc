// cuda_attention_bench: decode attention (kernels/cuda/attention/) at llama-3-8b's
// shape (32 query heads, 8 kv heads, head_dim 128), batch 1, at contexts 1k, 8k and
// 32k for every KvElement: the KV bytes one call reads (both planes, codes and scales)
// over its median time, and that rate over the device-to-device copy bandwidth
// measured in the same run (kernels/device_info.h: bytes read + written), the ceiling
// a memory-bound decode attention can approach. The caches are filled by the device
// kv_store from random values and rotated among enough copies that every call reads
// from device memory, not L2. Prints "no CUDA device: nothing measured" and exits 0 on
// a machine without a GPU.
//
// Not a test: run by hand, e.g. build/bin/cuda_attention_bench --iters 50.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "kernels/codecs/kv_quant.h"
#include "kernels/cuda/attention/attention.h"
#include "kernels/cuda/attention/kv_store.h"
#include "kernels/device_info.h"

namespace {

using gb::kernels::KvElement;
using gb::kernels::KvSlotLayout;
namespace kc = gb::kernels::cuda;

#define BENCH_CUDA(expr)                                                                     \
  do {                                                                                       \
    const cudaError_t e_ = (expr);                                                           \
    if (e_ != cudaSuccess) {                                                                 \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                          \
    }                                                                                        \
  } while (0)

void check(const gb::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.message().c_str());
    std::exit(1);
  }
}

struct DeviceFree {
  void operator()(void* p) const { cudaFree(p); }
};
using DevicePtr = std::unique_ptr<void, DeviceFree>;

DevicePtr device_alloc(size_t bytes) {
  void* p = nullptr;
  BENCH_CUDA(cudaMalloc(&p, bytes > 0 ? bytes : 1));
  return DevicePtr(p);
}

struct Element {
  KvElement e;
  const char* name;
};
constexpr Element kElements[] = {{KvElement::kF32, "f32"},   {KvElement::kF16, "f16"},
                                 {KvElement::kBF16, "bf16"}, {KvElement::kInt8, "int8"},
                                 {KvElement::kFp8, "fp8"},   {KvElement::kInt4, "int4"},
                                 {KvElement::kInt4G32, "int4-g32"}, {KvElement::kInt8Calib, "int8-calib"}};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CUDA decode attention: KV bytes read per second over measured copy bandwidth"};
  int iters = 50, device = 0;
  std::vector<int64_t> contexts{1024, 8192, 32768};
  int64_t heads = 32, kv_heads = 8, head_dim = 128;
  app.add_option("--iters", iters, "timed calls per point (the median is printed)")->check(CLI::PositiveNumber);
  app.add_option("--contexts", contexts, "context lengths (cache slots)");
  app.add_option("--device", device, "cuda:N");
  app.add_option("--heads", heads, "query heads")->check(CLI::PositiveNumber);
  app.add_option("--kv-heads", kv_heads, "kv heads")->check(CLI::PositiveNumber);
  app.add_option("--head-dim", head_dim, "head_dim")->check(CLI::Range(int64_t{1}, kc::kAttentionMaxHeadDim));
  CLI11_PARSE(app, argc, argv);

  if (gb::kernels::cuda_devices().empty()) {
    std::printf("no CUDA device: nothing measured\n");
    return 0;
  }
  BENCH_CUDA(cudaSetDevice(device));
  const gb::Result<double> copy = gb::kernels::measure_cuda_copy_bandwidth(device, size_t{1} << 30, 5);
  if (!copy.ok()) {
    std::fprintf(stderr, "copy bandwidth: %s\n", copy.message().c_str());
    return 1;
  }
  int l2 = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  std::printf("device %d: copy bandwidth %.1f GB/s (read + write), L2 %.0f MiB; shape %lld heads / %lld kv heads x %lld, batch 1\n",
              device, *copy / 1e9, l2 / 1048576.0, static_cast<long long>(heads), static_cast<long long>(kv_heads),
              static_cast<long long>(head_dim));

  const int64_t kvw = kv_heads * head_dim;
  const int64_t max_ctx = *std::max_element(contexts.begin(), contexts.end());
  // Random keys and values for the longest context, stored into each cache by kv_store.
  std::vector<float> host(static_cast<size_t>(max_ctx * kvw * 2));
  std::mt19937 g(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& x : host) x = nd(g);
  DevicePtr kv = device_alloc(host.size() * sizeof(float));
  BENCH_CUDA(cudaMemcpy(kv.get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  std::vector<float> hq(static_cast<size_t>(heads * head_dim)), calib(static_cast<size_t>(2 * kv_heads));
  for (auto& x : hq) x = nd(g);
  for (int64_t h = 0; h < kv_heads; ++h) {
    calib[2 * h] = 4.0f / 127.5f;
    calib[2 * h + 1] = 0.0f;
  }
  DevicePtr q = device_alloc(hq.size() * sizeof(float)), out = device_alloc(hq.size() * sizeof(float));
  DevicePtr dcalib = device_alloc(calib.size() * sizeof(float)), visible = device_alloc(sizeof(int64_t));
  BENCH_CUDA(cudaMemcpy(q.get(), hq.data(), hq.size() * sizeof(float), cudaMemcpyHostToDevice));
  BENCH_CUDA(cudaMemcpy(dcalib.get(), calib.data(), calib.size() * sizeof(float), cudaMemcpyHostToDevice));
  const size_t ws_bytes = kc::attention_workspace_bytes(1, heads, head_dim, max_ctx);
  DevicePtr ws = device_alloc(ws_bytes);
  cudaStream_t stream;
  BENCH_CUDA(cudaStreamCreate(&stream));
  cudaEvent_t t0, t1;
  BENCH_CUDA(cudaEventCreate(&t0));
  BENCH_CUDA(cudaEventCreate(&t1));
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

  std::printf("%-11s %7s %9s %10s %9s %8s  %s\n", "kv_element", "context", "KV MiB", "median us", "GB/s",
              "of copy", "kernel");
  for (const Element& el : kElements) {
    for (int64_t ctx : contexts) {
      const KvSlotLayout L{el.e, kv_heads, head_dim};
      const size_t plane = static_cast<size_t>(ctx) * L.slot_bytes();
      const double read = 2.0 * static_cast<double>(plane);  // K and V planes
      // Enough copies that their KV exceeds 4x L2, so each call reads device memory.
      const int copies = static_cast<int>(std::clamp<double>(std::ceil(4.0 * l2 / read), 1, 256));
      std::vector<DevicePtr> planes;
      std::vector<kc::KvCacheView> views;
      for (int c = 0; c < copies; ++c) {
        planes.push_back(device_alloc(plane));
        planes.push_back(device_alloc(plane));
        kc::KvCacheView v;
        v.k = planes[planes.size() - 2].get();
        v.v = planes.back().get();
        v.len = ctx;
        v.element = el.e;
        v.kv_heads = kv_heads;
        v.head_dim = head_dim;
        v.k_calib = v.v_calib = static_cast<const float*>(dcalib.get());
        const float* k = static_cast<const float*>(kv.get());
        check(kc::kv_store(stream, k, k + kvw, ctx, 2 * kvw, kvw, v, 0), "kv_store");
        views.push_back(v);
      }
      BENCH_CUDA(cudaMemcpyAsync(visible.get(), &ctx, sizeof(int64_t), cudaMemcpyHostToDevice, stream));
      auto call = [&](int i) {
        check(kc::attention(stream, static_cast<const float*>(q.get()), 1, heads * head_dim, heads, kv_heads,
                            head_dim, views[static_cast<size_t>(i % copies)], static_cast<const int64_t*>(visible.get()),
                            kc::RopeTable{}, scale, static_cast<float*>(out.get()), ws.get(), ws_bytes),
              "attention");
      };
      for (int i = 0; i < 3; ++i) call(i);
      std::vector<float> ms(static_cast<size_t>(iters));
      for (int i = 0; i < iters; ++i) {
        BENCH_CUDA(cudaEventRecord(t0, stream));
        call(i);
        BENCH_CUDA(cudaEventRecord(t1, stream));
        BENCH_CUDA(cudaEventSynchronize(t1));
        BENCH_CUDA(cudaEventElapsedTime(&ms[static_cast<size_t>(i)], t0, t1));
      }
      BENCH_CUDA(cudaGetLastError());
      std::nth_element(ms.begin(), ms.begin() + iters / 2, ms.end());
      const double sec = ms[static_cast<size_t>(iters / 2)] * 1e-3;
      const double rate = read / sec;
      std::printf("%-11s %7lld %9.2f %10.1f %9.1f %7.1f%%  %s\n", el.name, static_cast<long long>(ctx),
                  read / 1048576.0, sec * 1e6, rate / 1e9, 100.0 * rate / *copy,
                  kc::attention_kernel_name(views[0], 1).c_str());
      std::fflush(stdout);
    }
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  cudaStreamDestroy(stream);
  return 0;
}

// cuda_matmul_bench: the CUDA linear layer (kernels/cuda/matmul/linear.h) against the
// memory roofline, as ratios measured in one run on cuda:0. For every weight codec
// and the linear shapes of llama-3-8b (out x in: 4096x4096 attention, 14336x4096
// gate/up, 4096x14336 down, 128256x4096 the vocabulary) at batch 1 and 8 (the
// decode GEMV path), it prints the kernel, the time per call, the bytes moved
// (every packed array of W, the activations read and the outputs written) per
// second, and that over the device-to-device copy bandwidth measured first
// (kernels/device_info.h): 1.0 is the roofline.
//
// The weights are constant bytes (0x2a: finite in every codec; speed does not depend
// on the values), in enough copies that together they exceed the L2 cache, cycled
// call after call so that each call streams its W from memory. Timed with events,
// --iters calls per figure after 3 warm-ups.
//
// Not a test: run by hand (scripts/gpu-check.sh runs it); without a CUDA device it
// prints "no CUDA device: nothing measured" and exits 0.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/codecs/packed_matrix.h"
#include "kernels/cuda/matmul/linear.h"
#include "kernels/device_info.h"
#include "kernels/quantize/quantize_matrix.h"

namespace {

using gb::kernels::PackedMatrix;
using gb::kernels::ScaleLayout;
using gb::kernels::WeightCodec;

struct Format {
  const char* name;
  WeightCodec codec;
  ScaleLayout layout;
  int64_t group;
};

const Format kFormats[] = {
    {"f32", WeightCodec::kF32, ScaleLayout::kNone, 0},           {"f16", WeightCodec::kF16, ScaleLayout::kNone, 0},
    {"bf16", WeightCodec::kBF16, ScaleLayout::kNone, 0},         {"int8", WeightCodec::kInt8, ScaleLayout::kRow, 0},
    {"int8-g128", WeightCodec::kInt8, ScaleLayout::kGroup, 128}, {"fp8", WeightCodec::kFp8, ScaleLayout::kRow, 0},
    {"int4-g128", WeightCodec::kInt4, ScaleLayout::kGroup, 128}, {"nf4", WeightCodec::kNf4, ScaleLayout::kNone, 64},
    {"fp4", WeightCodec::kFp4, ScaleLayout::kNone, 64},          {"q8_0", WeightCodec::kQ8_0, ScaleLayout::kNone, 0},
    {"q4_0", WeightCodec::kQ4_0, ScaleLayout::kNone, 0},         {"q4_1", WeightCodec::kQ4_1, ScaleLayout::kNone, 0},
    {"q5_0", WeightCodec::kQ5_0, ScaleLayout::kNone, 0},         {"q5_1", WeightCodec::kQ5_1, ScaleLayout::kNone, 0},
    {"q2_K", WeightCodec::kQ2_K, ScaleLayout::kNone, 0},         {"q3_K", WeightCodec::kQ3_K, ScaleLayout::kNone, 0},
    {"q4_K", WeightCodec::kQ4_K, ScaleLayout::kNone, 0},         {"q5_K", WeightCodec::kQ5_K, ScaleLayout::kNone, 0},
    {"q6_K", WeightCodec::kQ6_K, ScaleLayout::kNone, 0},
};

struct Shape {
  int64_t out, in;
};
const Shape kShapes[] = {{4096, 4096}, {14336, 4096}, {4096, 14336}, {128256, 4096}};

// The bytes of each array W stores in `f` for [n, k].
struct Sizes {
  size_t codes = 0, scales = 0, zeros = 0;
  size_t total() const { return codes + scales + zeros; }
};
Sizes sizes_of(const Format& f, int64_t n, int64_t k) {
  Sizes s;
  s.codes = gb::kernels::codec_row_bytes(f.codec, k) * static_cast<size_t>(n);
  const size_t groups = f.group > 0 ? static_cast<size_t>(n) * static_cast<size_t>(k / f.group) : 0;
  switch (f.codec) {
    case WeightCodec::kInt8:
    case WeightCodec::kFp8: s.scales = f.layout == ScaleLayout::kRow ? static_cast<size_t>(n) * 4 : groups * 2; break;
    case WeightCodec::kInt4: s.scales = s.zeros = groups * 2; break;
    case WeightCodec::kNf4:
    case WeightCodec::kFp4: s.scales = groups * 4; break;
    default: break;
  }
  return s;
}

// Device memory freed on every path out.
struct Buffers {
  std::vector<void*> ptrs;
  ~Buffers() {
    for (void* p : ptrs) cudaFree(p);
  }
  void* alloc(size_t bytes, int byte) {
    void* p = nullptr;
    if (cudaMalloc(&p, std::max<size_t>(bytes, 256)) != cudaSuccess) return nullptr;
    ptrs.push_back(p);
    cudaMemset(p, byte, std::max<size_t>(bytes, 256));
    return p;
  }
};

bool cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "cuda_matmul_bench: %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  int iters = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
      iters = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--help") == 0) {
      std::printf("usage: cuda_matmul_bench [--iters N]  (calls timed per figure, default 20)\n");
      return 0;
    } else {
      std::fprintf(stderr, "cuda_matmul_bench: unknown argument %s (try --help)\n", argv[i]);
      return 2;
    }
  }
  const std::vector<gb::kernels::DeviceInfo> devs = gb::kernels::cuda_devices();
  if (devs.empty()) {
    std::printf("no CUDA device: nothing measured\n");
    return 0;
  }
  gb::Result<double> copy = gb::kernels::measure_cuda_copy_bandwidth(0, size_t{1} << 30, 10);
  if (!copy.ok()) {
    std::fprintf(stderr, "cuda_matmul_bench: copy bandwidth: %s\n", copy.message().c_str());
    return 1;
  }
  int l2 = 0;
  cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0);
  std::printf("device: %s; copy bandwidth %.1f GB/s; L2 %d MiB; %d calls per figure\n\n", devs[0].name.c_str(),
              *copy / 1e9, l2 >> 20, iters);
  std::printf("| format | kernel | out x in | batch | us/call | GB/s | of copy |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  cudaStream_t stream = nullptr;
  if (!cuda_ok(cudaStreamCreate(&stream), "cudaStreamCreate")) return 1;
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  int failures = 0;
  for (const Shape& sh : kShapes) {
    for (const Format& f : kFormats) {
      const Sizes sz = sizes_of(f, sh.out, sh.in);
      // Copies of W that together exceed the L2 cache (at least 4x), one if W alone does.
      const size_t want = std::max<size_t>(size_t{4} * static_cast<size_t>(l2), size_t{256} << 20);
      const int copies =
          static_cast<int>(std::min<size_t>(64, std::max<size_t>(1, (want + sz.total() - 1) / sz.total())));
      Buffers mem;
      std::vector<PackedMatrix> ws;
      for (int c = 0; c < copies; ++c) {
        PackedMatrix m;
        m.codec = f.codec;
        m.layout = f.layout;
        m.rows = sh.out;
        m.cols = sh.in;
        m.group = f.group;
        m.row_bytes = gb::kernels::codec_row_bytes(f.codec, sh.in);
        m.codes = static_cast<const uint8_t*>(mem.alloc(sz.codes, 0x2a));
        if (sz.scales) m.scales = mem.alloc(sz.scales, 0x2a);
        if (sz.zeros) m.zeros = mem.alloc(sz.zeros, 0x2a);
        if (!m.codes || (sz.scales && !m.scales) || (sz.zeros && !m.zeros)) break;
        ws.push_back(m);
      }
      if (ws.size() != static_cast<size_t>(copies)) {
        std::printf("| %s | - | %ldx%ld | - | out of device memory | | |\n", f.name, static_cast<long>(sh.out),
                    static_cast<long>(sh.in));
        cudaGetLastError();
        continue;
      }
      for (int64_t batch : {1, 8}) {
        const float* x = static_cast<const float*>(mem.alloc(static_cast<size_t>(batch * sh.in) * 4, 0x3c));
        float* y = static_cast<float*>(mem.alloc(static_cast<size_t>(batch * sh.out) * 4, 0));
        const size_t ws_bytes = gb::kernels::cuda::linear_workspace_bytes(ws[0], batch);
        void* workspace = ws_bytes ? mem.alloc(ws_bytes, 0) : nullptr;
        if (!x || !y || (ws_bytes && !workspace)) {
          std::printf("| %s | - | %ldx%ld | %ld | out of device memory | | |\n", f.name, static_cast<long>(sh.out),
                      static_cast<long>(sh.in), static_cast<long>(batch));
          continue;
        }
        const gb::kernels::cuda::MatmulContext ctx{stream, nullptr, workspace, ws_bytes};
        gb::Status st;
        for (int i = 0; i < 3 && st.ok(); ++i)
          st = gb::kernels::cuda::linear(ctx, x, batch, ws[static_cast<size_t>(i) % ws.size()], nullptr, y, sh.out);
        cudaEventRecord(start, stream);
        for (int i = 0; i < iters && st.ok(); ++i)
          st = gb::kernels::cuda::linear(ctx, x, batch, ws[static_cast<size_t>(i) % ws.size()], nullptr, y, sh.out);
        cudaEventRecord(stop, stream);
        const bool synced = cuda_ok(cudaEventSynchronize(stop), "run");
        float ms = 0;
        cudaEventElapsedTime(&ms, start, stop);
        const std::string kernel = gb::kernels::cuda::linear_kernel_name(ws[0], batch);
        if (!st.ok() || !synced) {
          std::printf("| %s | %s | %ldx%ld | %ld | failed: %s | | |\n", f.name, kernel.c_str(),
                      static_cast<long>(sh.out), static_cast<long>(sh.in), static_cast<long>(batch),
                      st.ok() ? "device error" : st.message().c_str());
          ++failures;
          if (!synced) return 1;  // the context is lost: nothing further can be measured
          continue;
        }
        const double sec = ms / 1e3 / iters;
        const double bytes = static_cast<double>(sz.total()) + static_cast<double>(batch) * (sh.in + sh.out) * 4.0;
        const double bw = bytes / sec;
        std::printf("| %s | %s | %ldx%ld | %ld | %.1f | %.0f | %.2f |\n", f.name, kernel.c_str(),
                    static_cast<long>(sh.out), static_cast<long>(sh.in), static_cast<long>(batch), sec * 1e6, bw / 1e9,
                    bw / *copy);
        std::fflush(stdout);
      }
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  return failures ? 1 : 0;
}

// The CUDA linear (kernels/cuda/matmul/linear.h) against the CPU reference
// (kernels/cpu/matmul.h: linear_range_reference, W through dequantize_row):
//  - without a GPU: every case has a kernel name of its codec and path (tuned or
//    generic GEMV up to 16 rows, cuBLASLt above), the GEMV paths need no workspace
//    and the prefill's is bounded (tiles, not W) and grows with rows; bad arguments
//    (shapes, null or misaligned pointers, a missing cuBLASLt handle or a short
//    workspace) are Error values that say what, checked before anything runs; a
//    launch on a machine without a device is an Error, not an abort;
//  - with a GPU: for every codec and layout of matmul_cases.h, two shapes (odd K
//    where the codec allows, N never a multiple of 8) and rows 1, 3, 16, 17, 64,
//    y equals the reference within the path's named tolerance, with and without a
//    bias, x aligned and not, ldy > N with the padding left untouched; a fused
//    double-quantized nf4 matrix (block_row_index); and a prefill of several W tiles.
#include "kernels/cuda/matmul/linear.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/quantize/quantize_matrix.h"
#include "tests/cuda/gpu_test_util.h"
#include "tests/cuda/matmul/matmul_cases.h"

namespace gb::kernels::cuda {
namespace {

using testing::matmul_cases;
using testing::MatmulCase;
using testing::normal_values;

// |y - reference| <= tolerance * |W_n| |x_m| (the size of the dot product's terms,
// Cauchy-Schwarz) per path:
//  - the GEMVs and f32 cuBLASLt: the same f32 products summed in another order
//    (about 1e-7 of that; 20x margin over the worst K here);
//  - f16 W through cuBLASLt: x rounded to f16 (relative 2^-11 per term);
//  - bf16 W, and every quantized W dequantized to bf16: x and W rounded to bf16
//    (2^-9 each per term, 2^-8 together at worst).
constexpr double kTolGemv = 2e-6;
constexpr double kTolLtF32 = 2e-6;
constexpr double kTolLtF16 = 1e-3;
constexpr double kTolLtBf16 = 5e-3;
constexpr float kSentinel = 1.0e30f;

double tolerance_for(const std::string& kernel) {
  if (kernel.find("gemv") != std::string::npos) return kTolGemv;
  if (kernel == "f32-cublaslt") return kTolLtF32;
  if (kernel == "f16-cublaslt") return kTolLtF16;
  return kTolLtBf16;
}

#define GB_CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call << ": " << cudaGetErrorString(cudaGetLastError())

// Device allocations, all freed with it.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory() {
    for (void* p : ptrs_) cudaFree(p);
  }
  void* alloc(size_t bytes) {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) return nullptr;
    ptrs_.push_back(p);
    return p;
  }
  template <class T>
  T* upload(const T* host, size_t count) {
    auto* d = static_cast<T*>(alloc(count * sizeof(T)));
    if (d && count && cudaMemcpy(d, host, count * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess) return nullptr;
    return d;
  }

 private:
  std::vector<void*> ptrs_;
};

// W's arrays copied to the device; the view points at them.
PackedMatrix to_device(const QuantizedMatrix& q, DeviceMemory& mem) {
  PackedMatrix m = q.view();
  const PackedMatrix h = m;
  m.codes = mem.upload(q.codes.data(), q.codes.size());
  if (h.scales) m.scales = mem.upload(q.scales.data(), q.scales.size());
  if (h.zeros) m.zeros = mem.upload(q.zeros.data(), q.zeros.size());
  if (h.dq_code) {
    m.dq_code = mem.upload(h.dq_code, 256);
    m.dq_scales = mem.upload(q.dq_scales.data(), q.dq_scales.size());
    m.dq_offsets = mem.upload(q.dq_offsets.data(), q.dq_offsets.size());
  }
  if (h.block_row_index) m.block_row_index = mem.upload(q.block_row_index.data(), q.block_row_index.size());
  return m;
}

double term_scale(const std::vector<float>& W, int64_t n, const float* x, int64_t K) {
  double ww = 0, xx = 0;
  for (int64_t k = 0; k < K; ++k) {
    ww += double{W[static_cast<size_t>(n * K + k)]} * W[static_cast<size_t>(n * K + k)];
    xx += double{x[k]} * x[k];
  }
  return std::sqrt(ww * xx);
}

// One linear on the device against the reference; `offset` floats shift x off its
// 16-byte alignment.
void expect_matches(const QuantizedMatrix& q, int64_t rows, bool with_bias, int64_t offset, uint64_t seed,
                    const std::string& what) {
  const PackedMatrix hw = q.view();
  const int64_t N = q.rows, K = q.cols, ldy = N + 3;
  DeviceMemory mem;
  const PackedMatrix dw = to_device(q, mem);
  ASSERT_NE(dw.codes, nullptr) << what;
  const std::vector<float> x = normal_values(rows * K + offset, seed);
  const std::vector<float> bias = normal_values(N, seed + 1);
  const float* dx = mem.upload(x.data(), x.size());
  const float* dbias = with_bias ? mem.upload(bias.data(), bias.size()) : nullptr;
  std::vector<float> y(static_cast<size_t>(rows * ldy), kSentinel);
  float* dy = mem.upload(y.data(), y.size());
  ASSERT_TRUE(dx && dy && (!with_bias || dbias)) << what;
  const size_t ws_bytes = linear_workspace_bytes(hw, rows);
  void* ws = ws_bytes ? mem.alloc(ws_bytes) : nullptr;
  ASSERT_TRUE(ws_bytes == 0 || ws) << what;
  cudaStream_t stream = nullptr;
  GB_CUDA_OK(cudaStreamCreate(&stream));
  cublasLtHandle_t lt = nullptr;
  ASSERT_EQ(cublasLtCreate(&lt), CUBLAS_STATUS_SUCCESS);
  const MatmulContext ctx{stream, lt, ws, ws_bytes};
  const Status st = linear(ctx, dx + offset, rows, dw, dbias, dy, ldy);
  const cudaError_t sync = cudaStreamSynchronize(stream);
  cublasLtDestroy(lt);
  cudaStreamDestroy(stream);
  ASSERT_TRUE(st.ok()) << what << ": " << st.message();
  ASSERT_EQ(sync, cudaSuccess) << what << ": " << cudaGetErrorString(sync);
  GB_CUDA_OK(cudaMemcpy(y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));

  std::vector<float> want(static_cast<size_t>(rows * ldy), kSentinel);
  cpu::linear_range_reference(x.data() + offset, rows, hw, with_bias ? bias.data() : nullptr, 0, N, want.data(), ldy);
  const std::vector<float> W = dequantize_matrix(q);
  const std::string kernel = linear_kernel_name(hw, rows);
  const double tol = tolerance_for(kernel);
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t n = 0; n < ldy; ++n) {
      const float got = y[static_cast<size_t>(m * ldy + n)];
      if (n >= N) {
        ASSERT_EQ(got, kSentinel) << what << " (" << kernel << "): wrote the padding at " << m << "," << n;
        continue;
      }
      const double bound = tol * term_scale(W, n, x.data() + offset + m * K, K) + 1e-6 * std::fabs(bias[n]) + 1e-30;
      ASSERT_NEAR(got, want[static_cast<size_t>(m * ldy + n)], bound)
          << what << " (" << kernel << ") rows=" << rows << " m=" << m << " n=" << n;
    }
}

TEST(CudaLinear, EveryCodecHasAKernelNameAndBoundedWorkspace) {
  for (const MatmulCase& c : matmul_cases()) {
    const int64_t K = c.ks.back(), N = 4096;
    const std::vector<float> w = normal_values(16 * K, 3);
    Result<QuantizedMatrix> q = quantize_matrix(c.spec, w.data(), 16, K, c.name);
    ASSERT_TRUE(q.ok()) << q.message();
    PackedMatrix m = q->view();
    m.rows = N;  // the sizes only: nothing is read
    const std::string codec = codec_name(m.codec);
    for (int64_t rows : {1, 3, 16}) {
      const std::string name = linear_kernel_name(m, rows);
      EXPECT_EQ(name.rfind(codec + "-gemv", 0), 0u) << c.name << ": " << name;
      EXPECT_EQ(linear_workspace_bytes(m, rows), 0u) << c.name << " rows=" << rows;
    }
    for (int64_t rows : {17, 64, 512}) {
      const std::string name = linear_kernel_name(m, rows);
      EXPECT_EQ(name.rfind(codec + "-", 0), 0u) << c.name << ": " << name;
      EXPECT_NE(name.find("cublaslt"), std::string::npos) << c.name << ": " << name;
      EXPECT_GT(linear_workspace_bytes(m, rows), 0u) << c.name;
    }
    const size_t w17 = linear_workspace_bytes(m, 17), w512 = linear_workspace_bytes(m, 512);
    if (m.codec == WeightCodec::kF32) {
      EXPECT_EQ(w17, w512) << c.name << ": f32 needs cuBLASLt's workspace alone";
    } else {
      EXPECT_LT(w17, w512) << c.name << ": the activations' copy grows with rows";
    }
    // Bounded: cuBLASLt's 32 MiB, the activations as 16-bit and at most one 32 MiB
    // (plus one quantum of 128 rows) tile of W; never W itself as bf16.
    const size_t bound = (size_t{32} << 20) + 512 * K * 2 + (size_t{32} << 20) + 128 * K * 2 + 1024;
    EXPECT_LE(w512, bound) << c.name;
  }
  // The tuned GEMV takes the codecs that matter most at their usual shapes.
  const std::vector<float> w = normal_values(8 * 4096, 4);
  for (WeightCodec codec : {WeightCodec::kF32, WeightCodec::kF16, WeightCodec::kBF16, WeightCodec::kQ8_0,
                            WeightCodec::kQ4_0, WeightCodec::kQ4_K, WeightCodec::kQ6_K}) {
    Result<QuantizedMatrix> q = quantize_matrix(testing::make_spec(codec), w.data(), 8, 4096, "w");
    ASSERT_TRUE(q.ok()) << q.message();
    EXPECT_EQ(linear_kernel_name(q->view(), 1), std::string(codec_name(codec)) + "-gemv-cuda");
  }
  Result<QuantizedMatrix> q2 = quantize_matrix(testing::make_spec(WeightCodec::kQ2_K), w.data(), 8, 4096, "w");
  ASSERT_TRUE(q2.ok());
  const std::string q2k = codec_name(WeightCodec::kQ2_K);
  EXPECT_EQ(linear_kernel_name(q2->view(), 1), q2k + "-gemv-generic-cuda");
  EXPECT_EQ(linear_kernel_name(q2->view(), 17), q2k + "-dequant-bf16-cublaslt");
}

TEST(CudaLinear, BadArgumentsAreErrorsBeforeAnythingRuns) {
  // Host pointers stand in for device ones: every call below fails its checks first.
  const std::vector<float> w = normal_values(8 * 64, 5);
  Result<QuantizedMatrix> q =
      quantize_matrix(testing::make_spec(WeightCodec::kInt4, ScaleLayout::kGroup, 32), w.data(), 8, 64, "w");
  ASSERT_TRUE(q.ok()) << q.message();
  const PackedMatrix m = q->view();
  std::vector<float> x(64 * 64), y(64 * 16);
  const MatmulContext none{nullptr, nullptr, nullptr, 0};
  auto fails_with = [&](const Status& st, const std::string& part) {
    ASSERT_FALSE(st.ok()) << "expected an error mentioning " << part;
    EXPECT_NE(st.message().find(part), std::string::npos) << st.message();
  };
  fails_with(linear(none, x.data(), 1, m, nullptr, y.data(), 7), "ldy");
  fails_with(linear(none, nullptr, 1, m, nullptr, y.data(), 8), "null");
  fails_with(linear(none, x.data(), -1, m, nullptr, y.data(), 8), "negative");
  fails_with(
      linear(none, x.data() + 1, 1, m, nullptr, reinterpret_cast<float*>(reinterpret_cast<char*>(y.data()) + 1), 8),
      "aligned");
  PackedMatrix odd = m;
  odd.cols = 63;
  fails_with(linear(none, x.data(), 1, odd, nullptr, y.data(), 8), "do not fit");
  PackedMatrix no_zeros = m;
  no_zeros.zeros = nullptr;
  fails_with(linear(none, x.data(), 1, no_zeros, nullptr, y.data(), 8), "zeros");
  PackedMatrix bad_group = m;
  bad_group.group = 24;
  fails_with(linear(none, x.data(), 1, bad_group, nullptr, y.data(), 8), "group");
  fails_with(linear(none, x.data(), 17, m, nullptr, y.data(), 8), "cuBLASLt handle");
  const MatmulContext short_ws{nullptr, reinterpret_cast<cublasLtHandle_t>(&x), nullptr, 16};
  fails_with(linear(short_ws, x.data(), 17, m, nullptr, y.data(), 8), "workspace");
  // Nothing to do is not an error.
  EXPECT_TRUE(linear(none, x.data(), 0, m, nullptr, y.data(), 8).ok());
}

TEST(CudaLinear, LaunchWithoutADeviceIsAnError) {
  if (gb::testing::gpu_present()) GTEST_SKIP() << "a GPU is present: this test is for machines without one";
  const std::vector<float> w = normal_values(8 * 64, 6);
  Result<QuantizedMatrix> q = quantize_matrix(testing::make_spec(WeightCodec::kQ4_0), w.data(), 8, 64, "w");
  ASSERT_TRUE(q.ok()) << q.message();
  std::vector<float> x(64), y(8);
  const Status st = linear(MatmulContext{nullptr, nullptr, nullptr, 0}, x.data(), 1, q->view(), nullptr, y.data(), 8);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("launch failed"), std::string::npos) << st.message();
}

class CudaLinearCodec : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(CudaLinearCodec, MatchesCpuReference) {
  GB_REQUIRE_GPU();
  const MatmulCase& c = GetParam();
  uint64_t seed = 1000;
  for (size_t s = 0; s < c.ks.size(); ++s) {
    const int64_t K = c.ks[s], N = s == 0 ? 37 : 70;
    const std::vector<float> w = normal_values(N * K, ++seed);
    Result<QuantizedMatrix> q = quantize_matrix(c.spec, w.data(), N, K, c.name);
    ASSERT_TRUE(q.ok()) << q.message();
    for (int64_t rows : {1, 3, 16, 17, 64}) {
      const std::string what = c.name + " " + std::to_string(N) + "x" + std::to_string(K);
      expect_matches(*q, rows, rows % 2 == 1, rows == 3 || rows == 17 ? 1 : 0, ++seed, what);
      if (HasFatalFailure()) return;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, CudaLinearCodec, ::testing::ValuesIn(matmul_cases()),
                         [](const ::testing::TestParamInfo<MatmulCase>& i) { return i.param.name; });

TEST(CudaLinear, FusedDoubleQuantizedNf4) {
  GB_REQUIRE_GPU();
  const QuantSpec spec = testing::make_spec(WeightCodec::kNf4, ScaleLayout::kNone, 64, false, true);
  std::vector<QuantizedMatrix> parts;
  for (int64_t n : {37, 29}) {
    const std::vector<float> w = normal_values(n * 512, 40 + n);
    Result<QuantizedMatrix> q = quantize_matrix(spec, w.data(), n, 512, "part");
    ASSERT_TRUE(q.ok()) << q.message();
    parts.push_back(std::move(*q));
  }
  Result<QuantizedMatrix> fused = concat_rows(std::move(parts), "qkv");
  ASSERT_TRUE(fused.ok()) << fused.message();
  ASSERT_FALSE(fused->block_row_index.empty());
  for (int64_t rows : {1, 17}) expect_matches(*fused, rows, true, 0, 50 + rows, "nf4_dq fused");
}

TEST(CudaLinear, PrefillOverSeveralWeightTiles) {
  GB_REQUIRE_GPU();
  // 8192 columns: tiles of 2048 rows, so 2100 rows are two tiles, the second short.
  const int64_t N = 2100, K = 8192;
  const std::vector<float> w = normal_values(N * K, 60);
  Result<QuantizedMatrix> q = quantize_matrix(testing::make_spec(WeightCodec::kQ4_0), w.data(), N, K, "w");
  ASSERT_TRUE(q.ok()) << q.message();
  expect_matches(*q, 17, true, 0, 61, "q4_0 2100x8192");
}

}  // namespace
}  // namespace gb::kernels::cuda

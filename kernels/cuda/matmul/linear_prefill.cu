// The prefill linear (rows > 16): Y = X W^T through cuBLASLt with f32 accumulation
// and f32 output, as the column-major problem Y^T = W X^T (W's rows are columns of
// a K x N matrix with leading dimension row_bytes / element size, op T; X^T is
// K x rows, op N; Y^T is N x rows with leading dimension ldy).
//   f32 W:      W and X as they are (CUBLAS_COMPUTE_32F: no TF32).
//   f16/bf16 W: X converted to W's type in the workspace; W as it is.
//   other W:    X converted to bf16; W dequantized to bf16 in tiles of output rows
//               (decode_unit, the shared codecs) into the workspace, one GEMM per tile.
// The bias, when given, is added by a last elementwise kernel. Where cuBLASLt has no
// algorithm for the pointers' alignments (odd K in 16-bit types, say) the generic
// kernel (linear_gemv_generic.cu) computes the whole call instead. Correct and
// simple first; not yet tuned (the dequantizing kernels are one thread per unit).
//
// Workspace (linear_workspace_bytes), each part 256-byte aligned:
//   [cuBLASLt workspace kLtWorkspace][X as 16-bit: rows K][W tile: tile_rows K bf16]
// Launch shapes: convert and bias kernels grid-stride, 256 threads, <= 4096 blocks;
// the tile dequantizer one thread per (row of the tile, unit), grid-stride likewise.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "kernels/cuda/matmul/linear_paths.h"
#include "kernels/cuda/matmul/weight_units.h"

namespace gb::kernels::cuda {
namespace {

constexpr size_t kLtWorkspace = size_t{32} << 20;  // NVIDIA's suggestion for Hopper
constexpr int64_t kTileElems = int64_t{16} << 20;  // 32 MiB of bf16 per W tile
constexpr int64_t kTileQuantum = 128;              // tile rows are a multiple of this (or all of W)
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(kMaxBlocks, (n + kThreads - 1) / kThreads)));
}

bool is_float16(WeightCodec c) { return c == WeightCodec::kF16 || c == WeightCodec::kBF16; }

int64_t tile_rows(const PackedMatrix& w) {
  const int64_t t = std::max<int64_t>(kTileQuantum, kTileElems / w.cols / kTileQuantum * kTileQuantum);
  return std::min<int64_t>(t, w.rows);
}

template <bool kBf16>
__global__ void convert_kernel(const float* __restrict__ x, int64_t n, uint16_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (kBf16) {
      out[i] = __bfloat16_as_ushort(__float2bfloat16_rn(x[i]));
    } else {
      out[i] = __half_as_ushort(__float2half_rn(x[i]));
    }
  }
}

// Rows [n0, n0 + nt) of W as bf16 into tile[(n - n0) K + k].
__global__ void dequant_tile_kernel(PackedMatrix w, int64_t n0, int64_t nt, uint16_t* __restrict__ tile) {
  const int64_t units = units_per_row(w);
  const int64_t unit = unit_elems(w.codec);
  float buf[kMaxUnit];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < nt * units;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / units, u = i % units;
    const int cnt = decode_unit(w, n0 + r, u, buf);
    uint16_t* out = tile + r * w.cols + u * unit;
    for (int j = 0; j < cnt; ++j) out[j] = __bfloat16_as_ushort(__float2bfloat16_rn(buf[j]));
  }
}

__global__ void add_bias_kernel(float* __restrict__ y, int64_t rows, int64_t n, int64_t ldy,
                                const float* __restrict__ bias) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < rows * n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / n, c = i % n;
    y[r * ldy + c] += bias[c];
  }
}

// The alignment cuBLASLt may assume of a matrix: the largest power of two up to 256
// dividing its address and the byte stride of its columns.
uint32_t alignment_of(const void* p, int64_t ld, size_t elem) {
  const uint64_t v = reinterpret_cast<uintptr_t>(p) | static_cast<uint64_t>(ld) * elem | 256u;
  return static_cast<uint32_t>(v & (~v + 1));
}

#define GB_LT_TRY(call)                                                                                        \
  do {                                                                                                         \
    const cublasStatus_t st_ = (call);                                                                         \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                          \
      return Error{std::string("linear (cuBLASLt): ") + #call + " failed with status " + std::to_string(st_)}; \
  } while (0)

// Frees the descriptors on every path out.
struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// D[i + j ldd] = sum_k A[k + i lda] B[k + j K], i < m, j < n: y's columns n0.. for
// the rows of W in A, every activation row in B.
// *ran is false when cuBLASLt has no algorithm for these types and alignments.
Status lt_gemm(const MatmulContext& ctx, cudaDataType_t type, const void* a, int64_t lda, int64_t m, const void* b,
               int64_t n, int64_t k, float* d, int64_t ldd, void* lt_ws, bool* ran) {
  *ran = false;
  const size_t elem = type == CUDA_R_32F ? 4 : 2;
  LtDescs L;
  GB_LT_TRY(cublasLtMatmulDescCreate(&L.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  GB_LT_TRY(cublasLtMatmulDescSetAttribute(L.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  GB_LT_TRY(cublasLtMatmulDescSetAttribute(L.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  GB_LT_TRY(cublasLtMatrixLayoutCreate(&L.a, type, static_cast<uint64_t>(k), static_cast<uint64_t>(m), lda));
  GB_LT_TRY(cublasLtMatrixLayoutCreate(&L.b, type, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k));
  GB_LT_TRY(cublasLtMatrixLayoutCreate(&L.d, CUDA_R_32F, static_cast<uint64_t>(m), static_cast<uint64_t>(n), ldd));
  GB_LT_TRY(cublasLtMatmulPreferenceCreate(&L.pref));
  const uint64_t ws = kLtWorkspace;
  GB_LT_TRY(cublasLtMatmulPreferenceSetAttribute(L.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  const uint32_t al_a = alignment_of(a, lda, elem), al_b = alignment_of(b, k, elem), al_d = alignment_of(d, ldd, 4);
  GB_LT_TRY(
      cublasLtMatmulPreferenceSetAttribute(L.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
  GB_LT_TRY(
      cublasLtMatmulPreferenceSetAttribute(L.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
  GB_LT_TRY(
      cublasLtMatmulPreferenceSetAttribute(L.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof al_d));
  GB_LT_TRY(
      cublasLtMatmulPreferenceSetAttribute(L.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof al_d));
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  // No algorithm is CUBLAS_STATUS_NOT_SUPPORTED or a count of 0, depending on the version.
  const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(ctx.lt, L.op, L.a, L.b, L.d, L.d, L.pref, 1, &heur, &found);
  if (hs == CUBLAS_STATUS_NOT_SUPPORTED || (hs == CUBLAS_STATUS_SUCCESS && found < 1)) return Status::Ok();
  if (hs != CUBLAS_STATUS_SUCCESS)
    return Error{"linear (cuBLASLt): cublasLtMatmulAlgoGetHeuristic failed with status " + std::to_string(hs)};
  const float alpha = 1.0f, beta = 0.0f;
  GB_LT_TRY(cublasLtMatmul(ctx.lt, L.op, &alpha, a, L.a, b, L.b, &beta, d, L.d, d, L.d, &heur.algo, lt_ws, kLtWorkspace,
                           ctx.stream));
  *ran = true;
  return Status::Ok();
}

}  // namespace

size_t prefill_workspace_bytes(const PackedMatrix& w, int64_t rows) {
  if (w.codec == WeightCodec::kF32) return kLtWorkspace;
  const size_t x16 = align256(static_cast<size_t>(rows) * static_cast<size_t>(w.cols) * 2);
  if (is_float16(w.codec)) return kLtWorkspace + x16;
  return kLtWorkspace + x16 + align256(static_cast<size_t>(tile_rows(w)) * static_cast<size_t>(w.cols) * 2);
}

Status launch_prefill(const MatmulContext& ctx, const float* x, int64_t rows, const PackedMatrix& w, const float* bias,
                      float* y, int64_t ldy) {
  if (!ctx.lt) return Error{"linear: rows > 16 need a cuBLASLt handle (MatmulContext.lt is null)"};
  const size_t need = prefill_workspace_bytes(w, rows);
  if (!ctx.workspace || ctx.workspace_bytes < need)
    return Error{"linear: workspace of " + std::to_string(ctx.workspace_bytes) + " bytes, " + std::to_string(need) +
                 " needed (linear_workspace_bytes)"};
  if (reinterpret_cast<uintptr_t>(ctx.workspace) % 256 != 0) return Error{"linear: workspace not 256-byte aligned"};
  auto* base = static_cast<uint8_t*>(ctx.workspace);
  void* lt_ws = base;
  const int64_t K = w.cols;
  bool ran = false;
  if (w.codec == WeightCodec::kF32) {
    GB_RETURN_IF_ERROR(lt_gemm(ctx, CUDA_R_32F, w.codes, static_cast<int64_t>(w.row_bytes / 4), w.rows, x, rows, K, y,
                               ldy, lt_ws, &ran));
    if (!ran) return launch_gemv_generic(ctx.stream, x, rows, w, bias, y, ldy);
  } else {
    auto* x16 = reinterpret_cast<uint16_t*>(base + kLtWorkspace);
    const int64_t nx = rows * K;
    const bool bf16 = w.codec != WeightCodec::kF16;
    if (bf16) {
      convert_kernel<true><<<blocks_for(nx), kThreads, 0, ctx.stream>>>(x, nx, x16);
    } else {
      convert_kernel<false><<<blocks_for(nx), kThreads, 0, ctx.stream>>>(x, nx, x16);
    }
    GB_RETURN_IF_ERROR(launch_status("convert_kernel"));
    const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
    if (is_float16(w.codec)) {
      GB_RETURN_IF_ERROR(lt_gemm(ctx, type, w.codes, static_cast<int64_t>(w.row_bytes / 2), w.rows, x16, rows, K, y,
                                 ldy, lt_ws, &ran));
      if (!ran) return launch_gemv_generic(ctx.stream, x, rows, w, bias, y, ldy);
    } else {
      auto* tile = reinterpret_cast<uint16_t*>(base + kLtWorkspace + align256(static_cast<size_t>(nx) * 2));
      const int64_t tr = tile_rows(w);
      for (int64_t n0 = 0; n0 < w.rows; n0 += tr) {
        const int64_t nt = std::min<int64_t>(tr, w.rows - n0);
        dequant_tile_kernel<<<blocks_for(nt * units_per_row(w)), kThreads, 0, ctx.stream>>>(w, n0, nt, tile);
        GB_RETURN_IF_ERROR(launch_status("dequant_tile_kernel"));
        GB_RETURN_IF_ERROR(lt_gemm(ctx, CUDA_R_16BF, tile, K, nt, x16, rows, K, y + n0, ldy, lt_ws, &ran));
        // No algorithm for these alignments: the generic kernel computes all of y (and the bias) again.
        if (!ran) return launch_gemv_generic(ctx.stream, x, rows, w, bias, y, ldy);
      }
    }
  }
  if (bias) {
    add_bias_kernel<<<blocks_for(rows * w.rows), kThreads, 0, ctx.stream>>>(y, rows, w.rows, ldy, bias);
    GB_RETURN_IF_ERROR(launch_status("add_bias_kernel"));
  }
  return Status::Ok();
}

}  // namespace gb::kernels::cuda

// The CUDA linear entry (linear.h): checks W, the pointers and their alignment, then
// picks the path (linear_paths.h) by codec and activation rows. The one dispatch
// place: linear_kernel_name and linear_workspace_bytes follow the same choice.
// No kernel here.
#include "kernels/cuda/matmul/linear.h"

#include <cstdint>
#include <string>

#include "kernels/cuda/matmul/linear_paths.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::kernels::cuda {
namespace {

enum class Path { kGemvGeneric, kGemvTuned, kLtDirect, kLtDequant };

Path pick(const PackedMatrix& w, int64_t rows) {
  if (rows > kMaxGemvRows) {
    const bool direct = w.codec == WeightCodec::kF32 || w.codec == WeightCodec::kF16 || w.codec == WeightCodec::kBF16;
    return direct ? Path::kLtDirect : Path::kLtDequant;
  }
  if (gemv_tuned_supports(w)) return Path::kGemvTuned;
  return Path::kGemvGeneric;
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// The codec's byte alignment of W's codes (its element or GGUF block field size).
size_t codes_alignment(WeightCodec c) {
  if (c == WeightCodec::kF32) return 4;
  if (c == WeightCodec::kF16 || c == WeightCodec::kBF16 || is_ggml_codec(c)) return 2;
  return 1;
}

Status check(const float* x, int64_t rows, const PackedMatrix& w, const float* bias, const float* y, int64_t ldy) {
  const std::string what = std::string("linear (") + codec_name(w.codec) + " " + std::to_string(w.rows) + "x" +
                           std::to_string(w.cols) + ", " + std::to_string(rows) + " rows): ";
  if (rows < 0 || w.rows < 0 || w.cols < 1) return Error{what + "empty or negative shape"};
  if (w.rows > INT32_MAX) return Error{what + "more than 2^31-1 output features"};
  const size_t rb = codec_row_bytes(w.codec, w.cols);
  if (rb == 0) return Error{what + "rows of " + std::to_string(w.cols) + " elements do not fit the codec"};
  if (w.row_bytes < rb) return Error{what + "row_bytes " + std::to_string(w.row_bytes) + " < " + std::to_string(rb)};
  if (!x || !y || !w.codes) return Error{what + "null x, y or W codes"};
  if (ldy < w.rows) return Error{what + "ldy " + std::to_string(ldy) + " < output features"};
  if (!aligned(x, 4) || !aligned(y, 4) || (bias && !aligned(bias, 4)))
    return Error{what + "x, y or bias not 4-byte aligned"};
  const size_t ca = codes_alignment(w.codec);
  if (!aligned(w.codes, ca) || w.row_bytes % ca != 0)
    return Error{what + "codes or row_bytes not " + std::to_string(ca) + "-byte aligned"};
  const bool grouped_ok = w.group > 0 && w.cols % w.group == 0;
  switch (w.codec) {
    case WeightCodec::kInt8:
    case WeightCodec::kFp8:
      if (!w.scales) return Error{what + "null scales"};
      if (w.layout == ScaleLayout::kRow) {
        if (!aligned(w.scales, 4)) return Error{what + "f32 row scales not 4-byte aligned"};
      } else if (w.layout == ScaleLayout::kGroup) {
        if (!grouped_ok) return Error{what + "group " + std::to_string(w.group) + " does not divide the row"};
        if (!aligned(w.scales, 2)) return Error{what + "f16 group scales not 2-byte aligned"};
      } else {
        return Error{what + "int8/fp8 needs a scale layout (per row or group)"};
      }
      break;
    case WeightCodec::kInt4:
      if (!w.scales || !w.zeros) return Error{what + "null scales or zeros"};
      if (!grouped_ok) return Error{what + "group " + std::to_string(w.group) + " does not divide the row"};
      if (!aligned(w.scales, 2) || !aligned(w.zeros, 2)) return Error{what + "f16 scales or zeros not 2-byte aligned"};
      break;
    case WeightCodec::kNf4:
    case WeightCodec::kFp4:
      if (!w.scales) return Error{what + "null absmax"};
      if (!grouped_ok) return Error{what + "block " + std::to_string(w.group) + " does not divide the row"};
      if (w.dq_code) {
        if (!w.dq_scales || !w.dq_offsets || w.dq_block < 1) return Error{what + "incomplete double quantization"};
      } else if (!aligned(w.scales, 4)) {
        return Error{what + "f32 absmax not 4-byte aligned"};
      }
      break;
    default: break;
  }
  return Status::Ok();
}

}  // namespace

size_t linear_workspace_bytes(const PackedMatrix& w, int64_t rows) {
  switch (pick(w, rows)) {
    case Path::kGemvGeneric:
    case Path::kGemvTuned: return 0;
    case Path::kLtDirect:
    case Path::kLtDequant: return prefill_workspace_bytes(w, rows);
  }
  return 0;
}

Status linear(const MatmulContext& ctx, const float* x, int64_t rows, const PackedMatrix& w, const float* bias,
              float* y, int64_t ldy) {
  GB_RETURN_IF_ERROR(check(x, rows, w, bias, y, ldy));
  if (rows == 0 || w.rows == 0) return Status::Ok();
  switch (pick(w, rows)) {
    case Path::kGemvGeneric: return launch_gemv_generic(ctx.stream, x, rows, w, bias, y, ldy);
    case Path::kGemvTuned: return launch_gemv_tuned(ctx.stream, x, rows, w, bias, y, ldy);
    case Path::kLtDirect:
    case Path::kLtDequant: return launch_prefill(ctx, x, rows, w, bias, y, ldy);
  }
  return Error{"linear: no path"};
}

std::string linear_kernel_name(const PackedMatrix& w, int64_t rows) {
  const std::string c = codec_name(w.codec);
  switch (pick(w, rows)) {
    case Path::kGemvGeneric: return c + "-gemv-generic-cuda";
    case Path::kGemvTuned: return c + "-gemv-cuda";
    case Path::kLtDirect: return c + "-cublaslt";
    case Path::kLtDequant: return c + "-dequant-bf16-cublaslt";
  }
  return c;
}

}  // namespace gb::kernels::cuda

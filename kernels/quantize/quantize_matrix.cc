// Quantizing matrices into every codec (kernels/quantize/quantize_matrix.h): the
// int8/fp8/int4 quantizers here, GGUF's in ggml_quantize.cc, bitsandbytes' in
// bnb_quantize.cc.
#include "kernels/quantize/quantize_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/codecs/group_quantize.h"
#include "kernels/quantize/bnb_quantize.h"
#include "kernels/quantize/ggml_quantize.h"

namespace gb::kernels {
namespace {

void put_f32(std::vector<uint8_t>& v, size_t i, float f) { std::memcpy(v.data() + 4 * i, &f, 4); }

Status quantize_symmetric(QuantizedMatrix& q, const float* w) {
  const QuantSpec& s = q.spec;
  if (s.layout == ScaleLayout::kRow) {
    q.scales.resize(static_cast<size_t>(q.rows) * 4);
    const float qmax = symmetric_qmax(s.codec);
    const float tensor_scale = group_absmax([w](int64_t k) { return w[k]; }, q.rows * q.cols) / qmax;
    for (int64_t r = 0; r < q.rows; ++r) {
      const float* x = w + r * q.cols;
      const float scale = s.per_tensor ? tensor_scale : group_absmax([x](int64_t k) { return x[k]; }, q.cols) / qmax;
      put_f32(q.scales, static_cast<size_t>(r), scale);
      const float inv = symmetric_inverse(scale);
      uint8_t* out = q.codes.data() + r * q.row_bytes;
      for (int64_t k = 0; k < q.cols; ++k) out[k] = symmetric_code(s.codec, x[k], inv);
    }
    return Status::Ok();
  }
  const int64_t gpr = q.cols / s.group;
  q.scales.resize(static_cast<size_t>(q.rows * gpr) * 2);
  auto* scales = reinterpret_cast<uint16_t*>(q.scales.data());
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t g = 0; g < gpr; ++g) {
      const float* x = w + r * q.cols + g * s.group;
      quantize_symmetric_group(s.codec, [x](int64_t k) { return x[k]; }, s.group, &scales[r * gpr + g],
                               q.codes.data() + r * q.row_bytes + g * s.group);
    }
  return Status::Ok();
}

// Asymmetric 4-bit per group (AWQ/GPTQ style): kernels/codecs/group_quantize.h.
void quantize_int4(QuantizedMatrix& q, const float* w) {
  const int64_t g = q.spec.group, gpr = q.cols / g;
  q.scales.resize(static_cast<size_t>(q.rows * gpr) * 2);
  q.zeros.resize(static_cast<size_t>(q.rows * gpr) * 2);
  auto* scales = reinterpret_cast<uint16_t*>(q.scales.data());
  auto* zeros = reinterpret_cast<uint16_t*>(q.zeros.data());
  std::fill(q.codes.begin(), q.codes.end(), 0);
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t j = 0; j < gpr; ++j) {
      const float* x = w + r * q.cols + j * g;
      quantize_int4_group([x](int64_t k) { return x[k]; }, g, j * g, q.codes.data() + r * q.row_bytes,
                          &scales[r * gpr + j], &zeros[r * gpr + j]);
    }
}

void quantize_bnb(QuantizedMatrix& q, const float* w) {
  const int64_t n = q.rows * q.cols, nb = n / q.spec.group;
  std::vector<float> absmax(static_cast<size_t>(nb));
  bnb_quantize_4bit(q.spec.codec == WeightCodec::kNf4, w, n, q.spec.group, q.codes.data(), absmax.data());
  if (!q.spec.double_quant) {
    q.scales.resize(static_cast<size_t>(nb) * 4);
    std::memcpy(q.scales.data(), absmax.data(), q.scales.size());
    return;
  }
  double_quantize_absmax(q, absmax.data(), nb);
}

Status check_shape(const QuantSpec& s, int64_t rows, int64_t cols, const std::string& what) {
  if (rows < 1 || cols < 1) return Error{what + ": empty matrix"};
  const char* name = codec_name(s.codec);
  if (codec_row_bytes(s.codec, cols) == 0) {
    const BlockShape b = ggml_block_shape(s.codec);
    return Error{what + ": rows of " + std::to_string(cols) + " elements do not fit " + name + " (" +
                 (b.elems ? "blocks of " + std::to_string(b.elems) : std::string("two codes per byte")) + ")"};
  }
  const bool grouped = (s.codec == WeightCodec::kInt8 || s.codec == WeightCodec::kFp8)
                           ? s.layout == ScaleLayout::kGroup
                           : (s.codec == WeightCodec::kInt4 || s.codec == WeightCodec::kNf4 ||
                              s.codec == WeightCodec::kFp4);
  if (grouped && (s.group < 2 || cols % s.group != 0))
    return Error{what + ": rows of " + std::to_string(cols) + " elements are not a whole number of " + name +
                 " groups of " + std::to_string(s.group)};
  if ((s.codec == WeightCodec::kInt8 || s.codec == WeightCodec::kFp8) && s.layout == ScaleLayout::kNone)
    return Error{what + ": " + name + " needs a scale layout (per row, tensor or group)"};
  return Status::Ok();
}

}  // namespace

const char* codec_name(WeightCodec c) {
  switch (c) {
    case WeightCodec::kF32: return "f32";
    case WeightCodec::kF16: return "f16";
    case WeightCodec::kBF16: return "bf16";
    case WeightCodec::kInt8: return "int8";
    case WeightCodec::kFp8: return "fp8";
    case WeightCodec::kInt4: return "int4";
    case WeightCodec::kNf4: return "nf4";
    case WeightCodec::kFp4: return "fp4";
    case WeightCodec::kQ8_0: return "q8_0";
    case WeightCodec::kQ4_0: return "q4_0";
    case WeightCodec::kQ4_1: return "q4_1";
    case WeightCodec::kQ5_0: return "q5_0";
    case WeightCodec::kQ5_1: return "q5_1";
    case WeightCodec::kQ2_K: return "q2_k";
    case WeightCodec::kQ3_K: return "q3_k";
    case WeightCodec::kQ4_K: return "q4_k";
    case WeightCodec::kQ5_K: return "q5_k";
    case WeightCodec::kQ6_K: return "q6_k";
  }
  return "?";
}

size_t QuantizedMatrix::bytes() const {
  return codes.size() + scales.size() + zeros.size() + (dq_scales.size() + dq_offsets.size()) * sizeof(float) +
         block_row_index.size() * sizeof(uint32_t);
}

PackedMatrix QuantizedMatrix::view() const {
  PackedMatrix m;
  m.codec = spec.codec;
  m.layout = spec.layout;
  m.rows = rows;
  m.cols = cols;
  m.group = spec.group;
  m.codes = codes.data();
  m.row_bytes = row_bytes;
  m.scales = scales.empty() ? nullptr : scales.data();
  m.zeros = zeros.empty() ? nullptr : zeros.data();
  if (spec.double_quant) {
    m.dq_code = bnb_dynamic_map();
    m.dq_scales = dq_scales.data();
    m.dq_offsets = dq_offsets.data();
    m.block_row_index = block_row_index.empty() ? nullptr : block_row_index.data();
  }
  return m;
}

Result<QuantizedMatrix> quantize_matrix(const QuantSpec& spec, const float* w, int64_t rows, int64_t cols,
                                        const std::string& what) {
  if (Status st = check_shape(spec, rows, cols, what); !st.ok()) return st.error();
  QuantizedMatrix q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.row_bytes = codec_row_bytes(spec.codec, cols);
  q.codes.resize(q.row_bytes * static_cast<size_t>(rows));
  switch (spec.codec) {
    case WeightCodec::kF32:
      std::memcpy(q.codes.data(), w, q.codes.size());
      break;
    case WeightCodec::kF16:
    case WeightCodec::kBF16: {
      auto* out = reinterpret_cast<uint16_t*>(q.codes.data());
      for (int64_t i = 0; i < rows * cols; ++i)
        out[i] = spec.codec == WeightCodec::kF16 ? f32_to_f16(w[i]) : f32_to_bf16(w[i]);
      break;
    }
    case WeightCodec::kInt8:
    case WeightCodec::kFp8:
      if (Status st = quantize_symmetric(q, w); !st.ok()) return st.error();
      break;
    case WeightCodec::kInt4:
      quantize_int4(q, w);
      break;
    case WeightCodec::kNf4:
    case WeightCodec::kFp4:
      quantize_bnb(q, w);
      break;
    default:
      for (int64_t r = 0; r < rows; ++r) ggml_quantize_row(spec.codec, w + r * cols, q.codes.data() + r * q.row_bytes, cols);
      break;
  }
  return q;
}

Result<QuantizedMatrix> packed_matrix_copy(WeightCodec codec, const uint8_t* data, int64_t rows, int64_t cols,
                                           const std::string& what) {
  const bool plain = codec == WeightCodec::kF32 || codec == WeightCodec::kF16 || codec == WeightCodec::kBF16;
  if (!plain && !is_ggml_codec(codec))
    return Error{what + ": " + codec_name(codec) + " matrices carry scales; they are quantized, not copied"};
  QuantSpec spec;
  spec.codec = codec;
  if (Status st = check_shape(spec, rows, cols, what); !st.ok()) return st.error();
  QuantizedMatrix q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.row_bytes = codec_row_bytes(codec, cols);
  q.codes.assign(data, data + q.row_bytes * static_cast<size_t>(rows));
  return q;
}

QuantizedSizes quantized_sizes(const QuantSpec& s, int64_t rows_, int64_t cols) {
  const size_t rows = static_cast<size_t>(rows_);
  const size_t groups = s.group > 0 ? rows * static_cast<size_t>(cols / s.group) : 0;
  QuantizedSizes want;
  want.codes = rows * codec_row_bytes(s.codec, cols);
  switch (s.codec) {
    case WeightCodec::kInt8:
    case WeightCodec::kFp8:
      want.scales = s.layout == ScaleLayout::kRow ? rows * 4 : groups * 2;
      break;
    case WeightCodec::kInt4:
      want.scales = want.zeros = groups * 2;
      break;
    case WeightCodec::kNf4:
    case WeightCodec::kFp4:
      want.scales = s.double_quant ? groups : groups * 4;
      want.dq_scales = want.dq_offsets = s.double_quant ? (groups + 255) / 256 : 0;
      break;
    default:
      break;
  }
  return want;
}

Status check_quantized_sizes(const QuantSpec& s, int64_t rows_, int64_t cols, const QuantizedSizes& have,
                             const std::string& what) {
  if (Status st = check_shape(s, rows_, cols, what); !st.ok()) return st;
  const QuantizedSizes want = quantized_sizes(s, rows_, cols);
  auto check = [&](const char* array, size_t h, size_t w) -> Status {
    if (h == w) return Status::Ok();
    return Error{what + ": " + array + " holds " + std::to_string(h) + ", expected " + std::to_string(w) + " for " +
                 std::to_string(rows_) + "x" + std::to_string(cols) + " " + codec_name(s.codec) +
                 (s.group > 0 ? " in groups of " + std::to_string(s.group) : std::string())};
  };
  GB_RETURN_IF_ERROR(check("codes (bytes)", have.codes, want.codes));
  GB_RETURN_IF_ERROR(check("scales (bytes)", have.scales, want.scales));
  GB_RETURN_IF_ERROR(check("zeros (bytes)", have.zeros, want.zeros));
  GB_RETURN_IF_ERROR(check("dq_scales (floats)", have.dq_scales, want.dq_scales));
  GB_RETURN_IF_ERROR(check("dq_offsets (floats)", have.dq_offsets, want.dq_offsets));
  return Status::Ok();
}

Status check_quantized_arrays(const QuantizedMatrix& q, const std::string& what) {
  if (!q.block_row_index.empty()) return Error{what + ": a stored matrix has no block row index"};
  if (q.row_bytes != codec_row_bytes(q.spec.codec, q.cols)) return Error{what + ": row_bytes does not match the codec"};
  return check_quantized_sizes(q.spec, q.rows, q.cols,
                               {q.codes.size(), q.scales.size(), q.zeros.size(), q.dq_scales.size(), q.dq_offsets.size()},
                               what);
}

Result<QuantizedMatrix> concat_rows(std::vector<QuantizedMatrix> parts, const std::string& what) {
  if (parts.empty()) return Error{what + ": nothing to concatenate"};
  if (parts.size() == 1) return std::move(parts.front());
  QuantizedMatrix out;
  out.spec = parts.front().spec;
  out.cols = parts.front().cols;
  out.row_bytes = parts.front().row_bytes;
  const bool dq = out.spec.double_quant;
  const int64_t gpr = out.spec.group > 0 ? out.cols / out.spec.group : 0;
  for (QuantizedMatrix& p : parts) {
    if (p.spec.codec != out.spec.codec || p.spec.layout != out.spec.layout || p.spec.group != out.spec.group ||
        p.spec.double_quant != dq || p.cols != out.cols)
      return Error{what + ": the parts differ in format or width"};
    if (dq) {
      // Each part's absmax codes start at a whole block of 256, so that its blocks
      // keep their own statistics; the row index says where each row's codes are.
      const size_t base = out.scales.size();
      for (int64_t r = 0; r < p.rows; ++r)
        out.block_row_index.push_back(static_cast<uint32_t>(base + static_cast<size_t>(r * gpr)));
      out.scales.insert(out.scales.end(), p.scales.begin(), p.scales.end());
      out.scales.resize((out.scales.size() + 255) / 256 * 256, 0);
      out.dq_scales.insert(out.dq_scales.end(), p.dq_scales.begin(), p.dq_scales.end());
      out.dq_offsets.insert(out.dq_offsets.end(), p.dq_offsets.begin(), p.dq_offsets.end());
    } else {
      out.scales.insert(out.scales.end(), p.scales.begin(), p.scales.end());
    }
    out.codes.insert(out.codes.end(), p.codes.begin(), p.codes.end());
    out.zeros.insert(out.zeros.end(), p.zeros.begin(), p.zeros.end());
    out.rows += p.rows;
  }
  return out;
}

void double_quantize_absmax(QuantizedMatrix& q, const float* absmax, int64_t nb) {
  q.scales.resize(static_cast<size_t>(nb));
  float offset = 0;
  bnb_double_quantize(absmax, nb, q.scales.data(), &q.dq_scales, &offset);
  q.dq_offsets.assign(q.dq_scales.size(), offset);
}

std::vector<float> dequantize_matrix(const QuantizedMatrix& q) {
  std::vector<float> out(static_cast<size_t>(q.rows * q.cols));
  const PackedMatrix m = q.view();
  for (int64_t r = 0; r < q.rows; ++r) dequantize_row(m, r, out.data() + r * q.cols);
  return out;
}

}  // namespace gb::kernels

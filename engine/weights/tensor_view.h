// A minimal host tensor view: element type, shape and a pointer to bytes that
// somebody else owns (a memory-mapped safetensors or GGUF file, a std::vector), and
// reading its elements as f32. This is what loaders hand out; the backends hold
// their own buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "engine/spec/dtype.h"
#include "kernels/codecs/float16.h"
#include "kernels/codecs/packed_matrix.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::engine {

// A non-owning view. `data` may be unaligned (a safetensors buffer need not align
// its tensors): read elements through the helpers below, which use memcpy.
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  // Set for a matrix stored in a block codec (a GGUF q-type): data holds shape[0]
  // rows of codec_row_bytes(*packed, shape[1]) bytes, and dtype is meaningless.
  std::optional<kernels::WeightCodec> packed;
  // Set with `packed` for a matrix whose codec carries scales (int8, fp8, int4,
  // nf4, fp4 of a saved quantized checkpoint, engine/weights/hf/quantized_checkpoint.h):
  // every array, owned and aligned; data points at its codes.
  std::shared_ptr<const kernels::QuantizedMatrix> quantized = nullptr;

  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const {
    if (packed) return static_cast<size_t>(shape[0]) * kernels::codec_row_bytes(*packed, shape[1]);
    return static_cast<size_t>(numel()) * dtype_size(dtype);
  }
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(data); }
};

// Element i of a F32/F16/BF16 view as f32. Other dtypes: NaN (callers check
// is_float_weight_dtype first).
inline float element_as_f32(const TensorView& t, int64_t i) {
  const uint8_t* p = t.bytes() + static_cast<size_t>(i) * dtype_size(t.dtype);
  switch (t.dtype) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DType::kF16:
    case DType::kBF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return t.dtype == DType::kF16 ? kernels::f16_to_f32(h) : kernels::bf16_to_f32(h);
    }
    default:
      return kernels::f32_from_bits(0x7fc00000u);
  }
}

// The whole F32/F16/BF16 view, or a packed matrix dequantized, as f32 into out[0, numel).
inline void to_f32(const TensorView& t, float* out) {
  if (t.quantized) {
    const kernels::PackedMatrix m = t.quantized->view();
    for (int64_t r = 0; r < m.rows; ++r) kernels::dequantize_row(m, r, out + r * m.cols);
    return;
  }
  if (t.packed) {
    kernels::PackedMatrix m;
    m.codec = *t.packed;
    m.rows = t.shape[0];
    m.cols = t.shape[1];
    m.codes = t.bytes();
    m.row_bytes = kernels::codec_row_bytes(*t.packed, m.cols);
    for (int64_t r = 0; r < m.rows; ++r) kernels::dequantize_row(m, r, out + r * m.cols);
    return;
  }
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) out[i] = element_as_f32(t, i);
}
inline std::vector<float> to_f32(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  to_f32(t, v.data());
  return v;
}

// Index of the first NaN or infinity in a F32/F16/BF16 view, or -1.
inline int64_t first_non_finite(const TensorView& t) {
  const int64_t n = t.numel();
  const uint8_t* p = t.bytes();
  if (t.dtype == DType::kF32) {
    for (int64_t i = 0; i < n; ++i) {
      uint32_t u;
      std::memcpy(&u, p + 4 * i, 4);
      if ((u & 0x7f800000u) == 0x7f800000u) return i;
    }
  } else if (t.dtype == DType::kF16 || t.dtype == DType::kBF16) {
    const uint16_t mask = t.dtype == DType::kF16 ? 0x7c00u : 0x7f80u;
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      if ((h & mask) == mask) return i;
    }
  }
  return -1;
}

}  // namespace gb::engine

// A minimal host tensor view: element type, shape and a pointer to bytes that
// somebody else owns (a memory-mapped safetensors file, a std::vector), plus the
// f16/bf16 <-> f32 conversions. The engine's compute tensors come later; this is
// what loaders hand out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gb::engine {

// Element types. F32/F16/BF16 are what the engine computes with; the others are
// the rest of the safetensors dtypes, so that a file holding them parses (and a
// loader can say "tensor X is I64, expected F32/F16/BF16" instead of "bad file").
enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kF64,
  kI64,
  kI32,
  kI16,
  kI8,
  kU64,
  kU32,
  kU16,
  kU8,
  kBool,
  kF8E4M3,
  kF8E5M2,
};

// Bytes per element.
constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF64: case DType::kI64: case DType::kU64: return 8;
    case DType::kF32: case DType::kI32: case DType::kU32: return 4;
    case DType::kF16: case DType::kBF16: case DType::kI16: case DType::kU16: return 2;
    case DType::kI8: case DType::kU8: case DType::kBool: case DType::kF8E4M3: case DType::kF8E5M2: return 1;
  }
  return 0;
}

// The safetensors spelling: "F32", "BF16", "F8_E4M3", ...
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF64: return "F64";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kI16: return "I16";
    case DType::kI8: return "I8";
    case DType::kU64: return "U64";
    case DType::kU32: return "U32";
    case DType::kU16: return "U16";
    case DType::kU8: return "U8";
    case DType::kBool: return "BOOL";
    case DType::kF8E4M3: return "F8_E4M3";
    case DType::kF8E5M2: return "F8_E5M2";
  }
  return "?";
}

inline std::optional<DType> dtype_from_name(std::string_view s) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kI64, DType::kI32,
                  DType::kI16, DType::kI8, DType::kU64, DType::kU32, DType::kU16, DType::kU8,
                  DType::kBool, DType::kF8E4M3, DType::kF8E5M2})
    if (dtype_name(t) == s) return t;
  return std::nullopt;
}

// The types the engine loads weights in.
constexpr bool is_float_weight_dtype(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

// "[4096, 11008]".
inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Element count; callers have validated the shape (non-negative, no overflow).
inline int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A non-owning view. `data` may be unaligned (a safetensors buffer need not align
// its tensors): read elements through the helpers below, which use memcpy.
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;

  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(data); }
};

// ---- f16 / bf16 <-> f32 ----

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE binary16 -> binary32, exact (subnormals, infinities, NaN payloads kept).
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    if (mant == 0) return f32_from_bits(sign);  // +-0
    // Subnormal: normalise.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    return f32_from_bits(sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13);
  }
  return f32_from_bits(sign | (exp + 127 - 15) << 23 | mant << 13);
}

// binary32 -> binary16, round to nearest even; overflow gives inf, NaN stays NaN.
inline uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t exp = (u >> 23) & 0xffu;
  const uint32_t mant = u & 0x7fffffu;
  if (exp == 0xff) return sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u);
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00u;  // overflow
  if (e <= 0) {
    if (e < -10) return sign;  // underflows to zero (even after rounding)
    const uint32_t m = mant | 0x800000u;
    const int shift = 14 - e;
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t r = static_cast<uint32_t>(e) << 10 | mant >> 13;
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // may carry into inf: correct
  return sign | static_cast<uint16_t>(r);
}

inline float bf16_to_f32(uint16_t b) { return f32_from_bits(static_cast<uint32_t>(b) << 16); }

// binary32 -> bfloat16, round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

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
      return t.dtype == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    default:
      return f32_from_bits(0x7fc00000u);
  }
}

// The whole F32/F16/BF16 view as f32 into out[0, numel).
inline void to_f32(const TensorView& t, float* out) {
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

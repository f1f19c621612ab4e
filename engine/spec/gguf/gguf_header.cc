// The GGUF header parser and the ggml type table (engine/spec/gguf/gguf_header.h).
#include "engine/spec/gguf/gguf_header.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>


namespace gb::engine {

// ---- types ----

namespace {

constexpr std::array<GgmlTypeTraits, 32> kGgmlTypes = {{
    {GgmlType::kF32, "F32", 1, 4, false},
    {GgmlType::kF16, "F16", 1, 2, false},
    {GgmlType::kQ4_0, "Q4_0", 32, 18, true},
    {GgmlType::kQ4_1, "Q4_1", 32, 20, true},
    {GgmlType::kQ5_0, "Q5_0", 32, 22, true},
    {GgmlType::kQ5_1, "Q5_1", 32, 24, true},
    {GgmlType::kQ8_0, "Q8_0", 32, 34, true},
    {GgmlType::kQ8_1, "Q8_1", 32, 36, true},
    {GgmlType::kQ2_K, "Q2_K", 256, 84, true},
    {GgmlType::kQ3_K, "Q3_K", 256, 110, true},
    {GgmlType::kQ4_K, "Q4_K", 256, 144, true},
    {GgmlType::kQ5_K, "Q5_K", 256, 176, true},
    {GgmlType::kQ6_K, "Q6_K", 256, 210, true},
    {GgmlType::kQ8_K, "Q8_K", 256, 292, true},
    {GgmlType::kIQ2_XXS, "IQ2_XXS", 256, 66, true},
    {GgmlType::kIQ2_XS, "IQ2_XS", 256, 74, true},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", 256, 98, true},
    {GgmlType::kIQ1_S, "IQ1_S", 256, 50, true},
    {GgmlType::kIQ4_NL, "IQ4_NL", 32, 18, true},
    {GgmlType::kIQ3_S, "IQ3_S", 256, 110, true},
    {GgmlType::kIQ2_S, "IQ2_S", 256, 82, true},
    {GgmlType::kIQ4_XS, "IQ4_XS", 256, 136, true},
    {GgmlType::kI8, "I8", 1, 1, false},
    {GgmlType::kI16, "I16", 1, 2, false},
    {GgmlType::kI32, "I32", 1, 4, false},
    {GgmlType::kI64, "I64", 1, 8, false},
    {GgmlType::kF64, "F64", 1, 8, false},
    {GgmlType::kIQ1_M, "IQ1_M", 256, 56, true},
    {GgmlType::kBF16, "BF16", 1, 2, false},
    {GgmlType::kTQ1_0, "TQ1_0", 256, 54, true},
    {GgmlType::kTQ2_0, "TQ2_0", 256, 66, true},
    {GgmlType::kMXFP4, "MXFP4", 32, 17, true},
}};

// Bytes of a fixed-size metadata scalar; 0 for string and array.
size_t value_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64: return 8;
    case GgufValueType::kString: case GgufValueType::kArray: return 0;
  }
  return 0;
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

bool is_integer_type(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kUint16:
    case GgufValueType::kInt16: case GgufValueType::kUint32: case GgufValueType::kInt32:
    case GgufValueType::kUint64: case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
  return v;
}

std::string quote_name(std::string_view s) {
  // Names in messages: printable ASCII kept, anything else escaped, long ones cut.
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 200; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > 200) out += "...";
  return out + "'";
}

}  // namespace

std::string gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: return "u8";
    case GgufValueType::kInt8: return "i8";
    case GgufValueType::kUint16: return "u16";
    case GgufValueType::kInt16: return "i16";
    case GgufValueType::kUint32: return "u32";
    case GgufValueType::kInt32: return "i32";
    case GgufValueType::kFloat32: return "f32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "u64";
    case GgufValueType::kInt64: return "i64";
    case GgufValueType::kFloat64: return "f64";
  }
  return "type " + std::to_string(static_cast<uint32_t>(t));
}

const GgmlTypeTraits* ggml_type_traits(uint32_t type) {
  for (const GgmlTypeTraits& t : kGgmlTypes)
    if (static_cast<uint32_t>(t.type) == type) return &t;
  return nullptr;
}

std::string ggml_type_name(uint32_t type) {
  const GgmlTypeTraits* t = ggml_type_traits(type);
  return t ? std::string(t->name) : "type " + std::to_string(type);
}

std::optional<DType> ggml_type_dtype(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return DType::kF32;
    case GgmlType::kF16: return DType::kF16;
    case GgmlType::kBF16: return DType::kBF16;
    case GgmlType::kF64: return DType::kF64;
    case GgmlType::kI8: return DType::kI8;
    case GgmlType::kI16: return DType::kI16;
    case GgmlType::kI32: return DType::kI32;
    case GgmlType::kI64: return DType::kI64;
    default: return std::nullopt;
  }
}

// ---- GgufValue ----

std::string GgufValue::type_description() const {
  if (!is_array()) return gguf_value_type_name(type_);
  return "array of " + gguf_value_type_name(element_type_);
}

std::optional<int64_t> GgufValue::int_of(GgufValueType t, const uint8_t* p) const {
  switch (t) {
    case GgufValueType::kUint8: return static_cast<int64_t>(p[0]);
    case GgufValueType::kInt8: return static_cast<int64_t>(static_cast<int8_t>(p[0]));
    case GgufValueType::kUint16: return static_cast<int64_t>(load_le(p, 2));
    case GgufValueType::kInt16: return static_cast<int64_t>(static_cast<int16_t>(load_le(p, 2)));
    case GgufValueType::kUint32: return static_cast<int64_t>(load_le(p, 4));
    case GgufValueType::kInt32: return static_cast<int64_t>(static_cast<int32_t>(load_le(p, 4)));
    case GgufValueType::kUint64: {
      const uint64_t u = load_le(p, 8);
      if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(u);
    }
    case GgufValueType::kInt64: return static_cast<int64_t>(load_le(p, 8));
    default: return std::nullopt;
  }
}

std::optional<double> GgufValue::float_of(GgufValueType t, const uint8_t* p) const {
  if (t == GgufValueType::kFloat64) return std::bit_cast<double>(load_le(p, 8));
  if (t != GgufValueType::kFloat32) return std::nullopt;
  const float f = std::bit_cast<float>(static_cast<uint32_t>(load_le(p, 4)));
  if (!std::isfinite(f)) return static_cast<double>(f);
  // Shortest decimal that round-trips the float, read back as a double: 1e-5f -> 1e-5.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), f);
  double d = static_cast<double>(f);
  if (ec == std::errc()) std::from_chars(buf, end, d);
  return d;
}

std::optional<int64_t> GgufValue::as_int() const {
  if (is_array() || raw_ == nullptr) return std::nullopt;
  return int_of(type_, raw_);
}

std::optional<uint64_t> GgufValue::as_uint() const {
  if (is_array() || raw_ == nullptr || !is_integer_type(type_)) return std::nullopt;
  if (type_ == GgufValueType::kUint64) return load_le(raw_, 8);
  const std::optional<int64_t> v = int_of(type_, raw_);
  if (!v || *v < 0) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

std::optional<double> GgufValue::as_float() const {
  if (is_array() || raw_ == nullptr) return std::nullopt;
  return float_of(type_, raw_);
}

std::optional<bool> GgufValue::as_bool() const {
  if (type_ != GgufValueType::kBool || raw_ == nullptr) return std::nullopt;
  return raw_[0] != 0;
}

std::optional<std::string_view> GgufValue::as_string() const {
  if (type_ != GgufValueType::kString || strings_.empty()) return std::nullopt;
  return strings_[0];
}

std::optional<int64_t> GgufValue::int_at(uint64_t i) const {
  if (!is_array() || i >= count_ || !is_integer_type(element_type_)) return std::nullopt;
  return int_of(element_type_, raw_ + i * value_size(element_type_));
}

std::optional<double> GgufValue::float_at(uint64_t i) const {
  if (!is_array() || i >= count_ || value_size(element_type_) == 0) return std::nullopt;
  return float_of(element_type_, raw_ + i * value_size(element_type_));
}

std::optional<std::string_view> GgufValue::string_at(uint64_t i) const {
  if (!is_array() || element_type_ != GgufValueType::kString || i >= strings_.size()) return std::nullopt;
  return strings_[i];
}

// ---- the parser ----

class GgufParser {
 public:
  GgufParser(const uint8_t* file, size_t size, const std::string& where) : p_(file), size_(size), where_(where) {}

  Result<GgufHeader> run() {
    GgufHeader h;
    h.where = where_;
    if (!parse(h)) return Error{where_ + ": " + error_};
    return h;
  }

 private:
  // Records the first error; always returns false.
  bool fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  size_t left() const { return size_ - pos_; }

  // `n` more bytes must be in the file.
  bool need(uint64_t n, const std::string& what) {
    if (n <= left()) return true;
    return fail("file truncated: " + what + " at byte " + std::to_string(pos_) + " needs " + std::to_string(n) +
                " bytes but the file ends after " + std::to_string(left()) + " (file size " +
                std::to_string(size_) + ")");
  }

  bool u32(uint32_t* v, const std::string& what) {
    if (!need(4, what)) return false;
    *v = static_cast<uint32_t>(load_le(p_ + pos_, 4));
    pos_ += 4;
    return true;
  }

  bool u64(uint64_t* v, const std::string& what) {
    if (!need(8, what)) return false;
    *v = load_le(p_ + pos_, 8);
    pos_ += 8;
    return true;
  }

  bool string(std::string_view* s, const std::string& what) {
    uint64_t n;
    const size_t at = pos_;
    if (!u64(&n, "the length of " + what)) return false;
    if (n > left())
      return fail(what + ": string length " + std::to_string(n) + " at byte " + std::to_string(at) +
                  " is larger than the " + std::to_string(left()) + " bytes left in the file (truncated or corrupt)");
    *s = std::string_view(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return true;
  }

  bool value(GgufValue* v, GgufValueType type, const std::string& what) {
    v->type_ = type;
    if (type == GgufValueType::kString) {
      std::string_view s;
      if (!string(&s, what)) return false;
      v->strings_.push_back(s);
      return true;
    }
    if (type == GgufValueType::kArray) return array(v, what);
    const size_t n = value_size(type);
    if (!need(n, what + " (" + gguf_value_type_name(type) + ")")) return false;
    if (type == GgufValueType::kBool && p_[pos_] > 1)
      return fail(what + ": bool at byte " + std::to_string(pos_) + " is " + std::to_string(p_[pos_]) +
                  ", not 0 or 1");
    v->raw_ = p_ + pos_;
    pos_ += n;
    return true;
  }

  bool array(GgufValue* v, const std::string& what) {
    uint32_t et;
    uint64_t count;
    if (!u32(&et, "the element type of " + what)) return false;
    if (!known_value_type(et))
      return fail(what + ": unknown array element type " + std::to_string(et) + " at byte " +
                  std::to_string(pos_ - 4) + " (known: 0..12)");
    if (et == static_cast<uint32_t>(GgufValueType::kArray))
      return fail(what + ": arrays of arrays are not supported");
    const auto type = static_cast<GgufValueType>(et);
    const size_t at = pos_;
    if (!u64(&count, "the element count of " + what)) return false;
    // Bound the count by what the rest of the file could hold before allocating.
    const size_t min_size = type == GgufValueType::kString ? 8 : value_size(type);
    if (count > left() / min_size)
      return fail(what + ": array of " + std::to_string(count) + " " + gguf_value_type_name(type) +
                  " at byte " + std::to_string(at) + " cannot fit in the " + std::to_string(left()) +
                  " bytes left in the file (truncated or corrupt)");
    v->element_type_ = type;
    v->count_ = count;
    if (type == GgufValueType::kString) {
      v->strings_.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        std::string_view s;
        if (!string(&s, what + "[" + std::to_string(i) + "]")) return false;
        v->strings_.push_back(s);
      }
      return true;
    }
    v->raw_ = p_ + pos_;
    if (type == GgufValueType::kBool)
      for (uint64_t i = 0; i < count; ++i)
        if (p_[pos_ + i] > 1)
          return fail(what + "[" + std::to_string(i) + "]: bool at byte " + std::to_string(pos_ + i) + " is " +
                      std::to_string(p_[pos_ + i]) + ", not 0 or 1");
    pos_ += count * min_size;
    return true;
  }

  bool parse(GgufHeader& h) {
    if (size_ < 4)
      return fail("file is " + std::to_string(size_) + " bytes, too short for the GGUF magic (not a GGUF file)");
    const uint32_t magic = static_cast<uint32_t>(load_le(p_, 4));
    if (magic != kGgufMagic) {
      std::string shown;
      for (int i = 0; i < 4; ++i) shown += (p_[i] >= 0x20 && p_[i] < 0x7f) ? static_cast<char>(p_[i]) : '.';
      return fail("bad magic '" + shown + "' (expected 'GGUF'): not a GGUF file");
    }
    pos_ = 4;
    if (!u32(&h.version, "the version")) return false;
    if (h.version != 2 && h.version != 3) {
      const uint32_t swapped = __builtin_bswap32(h.version);
      if (swapped >= 1 && swapped <= 3)
        return fail("the version field reads " + std::to_string(h.version) + ": a big-endian GGUF file (version " +
                    std::to_string(swapped) + "); only little-endian files are supported");
      if (h.version == 1)
        return fail("GGUF version 1 is not supported (it predates 64-bit counts); versions 2 and 3 are");
      return fail("unsupported GGUF version " + std::to_string(h.version) + " (versions 2 and 3 are supported)");
    }
    uint64_t n_tensors, n_kv;
    if (!u64(&n_tensors, "the tensor count") || !u64(&n_kv, "the metadata count")) return false;
    // Smallest encodings: a key/value is a 1-byte key and a u8 (14 bytes), a tensor a
    // 1-byte name and one dimension (33 bytes).
    if (n_kv > left() / 14)
      return fail("metadata count " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(left()) +
                  " bytes after the header (truncated or corrupt)");
    if (n_tensors > left() / 33)
      return fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the " + std::to_string(left()) +
                  " bytes after the header (truncated or corrupt)");

    h.metadata.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string what = "metadata entry " + std::to_string(i);
      std::string_view key;
      const size_t at = pos_;
      if (!string(&key, "the key of " + what)) return false;
      if (key.empty()) return fail(what + " at byte " + std::to_string(at) + " has an empty key");
      const std::string kwhat = "metadata key " + quote_name(key);
      if (h.key_index_.contains(key)) return fail("duplicate " + kwhat + " at byte " + std::to_string(at));
      uint32_t type;
      if (!u32(&type, "the value type of " + kwhat)) return false;
      if (!known_value_type(type))
        return fail(kwhat + ": unknown value type " + std::to_string(type) + " at byte " + std::to_string(pos_ - 4) +
                    " (known: 0..12)");
      GgufValue v;
      if (!value(&v, static_cast<GgufValueType>(type), kwhat)) return false;
      h.key_index_.emplace(key, h.metadata.size());
      h.metadata.emplace_back(key, std::move(v));
    }

    if (const GgufValue* a = h.find("general.alignment")) {
      if (a->type() != GgufValueType::kUint32)
        return fail("metadata key 'general.alignment' is " + a->type_description() + ", expected u32");
      const uint64_t al = *a->as_uint();
      if (al == 0 || (al & (al - 1)) != 0)
        return fail("general.alignment " + std::to_string(al) + " is not a power of two");
      h.alignment = al;
    }

    h.tensors.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo t;
      const std::string what = "tensor info " + std::to_string(i);
      const size_t at = pos_;
      if (!string(&t.name, "the name of " + what)) return false;
      if (t.name.empty()) return fail(what + " at byte " + std::to_string(at) + " has an empty name");
      const std::string tw = "tensor " + quote_name(t.name);
      if (t.name.size() > kGgufMaxTensorName)
        return fail(tw + ": the name is " + std::to_string(t.name.size()) + " bytes, longer than the limit of " +
                    std::to_string(kGgufMaxTensorName));
      if (h.tensor_index_.contains(t.name)) return fail("duplicate tensor name " + quote_name(t.name) + " at byte " +
                                                        std::to_string(at));
      uint32_t n_dims;
      if (!u32(&n_dims, "the dimension count of " + tw)) return false;
      if (n_dims < 1 || n_dims > kGgufMaxDims)
        return fail(tw + ": " + std::to_string(n_dims) + " dimensions (1 to " + std::to_string(kGgufMaxDims) +
                    " are allowed)");
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t ne;
        if (!u64(&ne, "dimension " + std::to_string(d) + " of " + tw)) return false;
        if (ne > static_cast<uint64_t>(INT64_MAX))
          return fail(tw + ": dimension " + std::to_string(d) + " is negative (" +
                      std::to_string(static_cast<int64_t>(ne)) + ")");
        t.ne.push_back(static_cast<int64_t>(ne));
      }
      if (!u32(&t.type, "the type of " + tw) || !u64(&t.offset, "the offset of " + tw)) return false;
      const GgmlTypeTraits* tt = ggml_type_traits(t.type);
      if (tt == nullptr) return fail(tw + ": unknown ggml type " + std::to_string(t.type));
      t.shape.assign(t.ne.rbegin(), t.ne.rend());
      if (t.ne[0] % tt->block_size != 0)
        return fail(tw + ": row length ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of " +
                    std::string(tt->name) + "'s block size " + std::to_string(tt->block_size));
      // Both the element count and the byte size must fit in 63 bits.
      uint64_t numel = 1, nbytes = static_cast<uint64_t>(t.ne[0]) / tt->block_size;
      bool overflow = __builtin_mul_overflow(nbytes, static_cast<uint64_t>(tt->type_size), &nbytes);
      for (uint32_t d = 0; d < n_dims; ++d) {
        overflow = overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(t.ne[d]), &numel);
        if (d > 0) overflow = overflow || __builtin_mul_overflow(nbytes, static_cast<uint64_t>(t.ne[d]), &nbytes);
      }
      if (overflow || numel > static_cast<uint64_t>(INT64_MAX) || nbytes > static_cast<uint64_t>(INT64_MAX))
        return fail(tw + ": shape " + shape_string(t.shape) + " of " + std::string(tt->name) +
                    " is larger than fits in 63 bits");
      t.nbytes = nbytes;
      h.tensor_index_.emplace(t.name, h.tensors.size());
      h.tensors.push_back(std::move(t));
    }

    // The data section starts at the next multiple of the alignment. A file without
    // tensor bytes may end before it.
    const uint64_t a = h.alignment;
    h.data_start = (static_cast<uint64_t>(pos_) + a - 1) / a * a;
    h.data_size = h.data_start <= size_ ? size_ - h.data_start : 0;
    for (const GgufTensorInfo& t : h.tensors) {
      const std::string tw = "tensor " + quote_name(t.name);
      if (t.offset % a != 0)
        return fail(tw + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                    std::to_string(a));
      if (t.offset > h.data_size || t.nbytes > h.data_size - t.offset)
        return fail(tw + ": bytes [" + std::to_string(t.offset) + ", " + std::to_string(t.offset + t.nbytes) +
                    ") of the data section are beyond the end of the file (the data section starts at byte " +
                    std::to_string(h.data_start) + " and holds " + std::to_string(h.data_size) +
                    " bytes: truncated or corrupt)");
    }
    std::vector<const GgufTensorInfo*> order;
    for (const GgufTensorInfo& t : h.tensors)
      if (t.nbytes > 0) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](const GgufTensorInfo* x, const GgufTensorInfo* y) { return x->offset < y->offset; });
    for (size_t i = 1; i < order.size(); ++i)
      if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
        return fail("tensor " + quote_name(order[i]->name) + " at offset " + std::to_string(order[i]->offset) +
                    " overlaps tensor " + quote_name(order[i - 1]->name) + " (bytes [" +
                    std::to_string(order[i - 1]->offset) + ", " +
                    std::to_string(order[i - 1]->offset + order[i - 1]->nbytes) + "))");
    return true;
  }

  const uint8_t* p_;
  size_t size_;
  const std::string& where_;
  size_t pos_ = 0;
  std::string error_;
};

Result<GgufHeader> parse_gguf_header(const uint8_t* file, size_t size, const std::string& where) {
  return GgufParser(file, size, where).run();
}

// ---- GgufHeader lookups ----

const GgufValue* GgufHeader::find(std::string_view key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata[it->second].second;
}

const GgufTensorInfo* GgufHeader::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors[it->second];
}

Result<const GgufValue*> GgufHeader::typed(std::string_view key, const char* expected) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return Error{where + ": missing metadata key " + quote_name(key) + " (" + expected + ")"};
  return v;
}

namespace {
Error wrong_type(const std::string& where, std::string_view key, const GgufValue& v, const char* expected) {
  return Error{where + ": metadata key " + quote_name(key) + " is " + v.type_description() + ", expected " + expected};
}
}  // namespace

Result<std::string> GgufHeader::get_string(std::string_view key) const {
  Result<const GgufValue*> v = typed(key, "a string");
  if (!v) return v.error();
  if (auto s = (*v)->as_string()) return std::string(*s);
  return wrong_type(where, key, **v, "a string");
}

Result<int64_t> GgufHeader::get_int(std::string_view key) const {
  Result<const GgufValue*> v = typed(key, "an integer");
  if (!v) return v.error();
  if (auto i = (*v)->as_int()) return *i;
  if ((*v)->type() == GgufValueType::kUint64)
    return Error{where + ": metadata key " + quote_name(key) + " = " + std::to_string(*(*v)->as_uint()) +
                 " does not fit in a signed 64-bit integer"};
  return wrong_type(where, key, **v, "an integer");
}

Result<double> GgufHeader::get_float(std::string_view key) const {
  Result<const GgufValue*> v = typed(key, "a number");
  if (!v) return v.error();
  if (auto f = (*v)->as_float()) return *f;
  return wrong_type(where, key, **v, "f32 or f64");
}

Result<bool> GgufHeader::get_bool(std::string_view key) const {
  Result<const GgufValue*> v = typed(key, "a bool");
  if (!v) return v.error();
  if (auto b = (*v)->as_bool()) return *b;
  return wrong_type(where, key, **v, "a bool");
}

Result<std::string> GgufHeader::get_string(std::string_view key, std::string fallback) const {
  return contains(key) ? get_string(key) : Result<std::string>(std::move(fallback));
}
Result<int64_t> GgufHeader::get_int(std::string_view key, int64_t fallback) const {
  return contains(key) ? get_int(key) : Result<int64_t>(fallback);
}
Result<double> GgufHeader::get_float(std::string_view key, double fallback) const {
  return contains(key) ? get_float(key) : Result<double>(fallback);
}
Result<bool> GgufHeader::get_bool(std::string_view key, bool fallback) const {
  return contains(key) ? get_bool(key) : Result<bool>(fallback);
}

Result<std::vector<std::string_view>> GgufHeader::get_string_array(std::string_view key) const {
  Result<const GgufValue*> v = typed(key, "an array of string");
  if (!v) return v.error();
  const GgufValue& a = **v;
  if (!a.is_array() || a.element_type() != GgufValueType::kString)
    return wrong_type(where, key, a, "an array of string");
  std::vector<std::string_view> out;
  out.reserve(a.size());
  for (uint64_t i = 0; i < a.size(); ++i) out.push_back(*a.string_at(i));
  return out;
}

Result<std::vector<int64_t>> GgufHeader::get_int_array(std::string_view key) const {
  Result<const GgufValue*> v = typed(key, "an array of integers");
  if (!v) return v.error();
  const GgufValue& a = **v;
  if (!a.is_array() || !is_integer_type(a.element_type())) return wrong_type(where, key, a, "an array of integers");
  std::vector<int64_t> out;
  out.reserve(a.size());
  for (uint64_t i = 0; i < a.size(); ++i) {
    std::optional<int64_t> x = a.int_at(i);
    if (!x)
      return Error{where + ": metadata key " + quote_name(key) + "[" + std::to_string(i) +
                   "] does not fit in a signed 64-bit integer"};
    out.push_back(*x);
  }
  return out;
}

Result<std::vector<double>> GgufHeader::get_float_array(std::string_view key) const {
  Result<const GgufValue*> v = typed(key, "an array of f32 or f64");
  if (!v) return v.error();
  const GgufValue& a = **v;
  if (!a.is_array() || (a.element_type() != GgufValueType::kFloat32 && a.element_type() != GgufValueType::kFloat64))
    return wrong_type(where, key, a, "an array of f32 or f64");
  std::vector<double> out;
  out.reserve(a.size());
  for (uint64_t i = 0; i < a.size(); ++i) out.push_back(*a.float_at(i));
  return out;
}


std::string gguf_quote(std::string_view s) { return quote_name(s); }

}  // namespace gb::engine

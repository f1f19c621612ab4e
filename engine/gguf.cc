// GGUF parsing, memory-mapped reading, the model config, the WeightSource and the
// writer (engine/gguf.h).
#include "engine/gguf.h"

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

#include "engine/hf_checkpoint.h"

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

// ---- GgufFile ----

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  Result<MappedFile> m = MappedFile::open(path);
  if (!m) return m.error();
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->map_ = std::move(*m);
  Result<GgufHeader> h = parse_gguf_header(f->map_.data(), f->map_.size(), path);
  if (!h) return h.error();
  f->header_ = std::move(*h);
  return f;
}

const uint8_t* GgufFile::data(const GgufTensorInfo& info) const {
  return map_.data() + header_.data_start + info.offset;
}

Result<TensorView> GgufFile::view(const GgufTensorInfo& info) const {
  std::optional<DType> dt = ggml_type_dtype(static_cast<GgmlType>(info.type));
  if (!dt)
    return Error{path_ + ": tensor " + quote_name(info.name) + " is " + ggml_type_name(info.type) +
                 ", a block-quantized type with no element view"};
  TensorView v;
  v.dtype = *dt;
  v.shape = info.shape;
  v.data = data(info);
  return v;
}

}  // namespace gb::engine

// ---- the model config ----

namespace gb::engine {
namespace {

constexpr const char* kArchitectures = "llama, qwen2, qwen3, gptneox, gpt2";
// Bounds on the sizes a config may declare, so that products of them (a weight's
// element count) cannot overflow: widths, heads and layers below 2^24, the
// vocabulary and the context below 2^31.
constexpr int64_t kMaxWidth = int64_t{1} << 24;
constexpr int64_t kMaxCount = int64_t{1} << 31;

// Reads typed metadata, collecting every problem so that one message names them all.
class MetaReader {
 public:
  explicit MetaReader(const GgufHeader& h) : h_(h) {}

  // A positive integer <= limit; nullopt when missing (a problem when required).
  std::optional<int64_t> count(const std::string& key, bool required, int64_t limit = kMaxWidth) {
    const GgufValue* v = find(key, required);
    if (v == nullptr) return std::nullopt;
    const std::optional<int64_t> i = v->as_int();
    if (!i) {
      fail("metadata key '" + key + "' is " + v->type_description() + ", expected an integer");
      return std::nullopt;
    }
    if (*i < 1 || *i > limit) {
      fail("metadata key '" + key + "' = " + std::to_string(*i) + " is out of range [1, " + std::to_string(limit) +
           "]");
      return std::nullopt;
    }
    return i;
  }

  // A token id: a non-negative integer.
  std::optional<int64_t> token_id(const std::string& key) {
    const GgufValue* v = find(key, false);
    if (v == nullptr) return std::nullopt;
    const std::optional<int64_t> i = v->as_int();
    if (!i || *i < 0) {
      fail("metadata key '" + key + "' must be a non-negative integer, got " + v->type_description());
      return std::nullopt;
    }
    return i;
  }

  // A positive finite number (f32 or f64).
  std::optional<double> positive(const std::string& key, bool required) {
    const GgufValue* v = find(key, required);
    if (v == nullptr) return std::nullopt;
    const std::optional<double> d = v->as_float();
    if (!d) {
      fail("metadata key '" + key + "' is " + v->type_description() + ", expected f32 or f64");
      return std::nullopt;
    }
    if (!(*d > 0) || !std::isfinite(*d)) {
      fail("metadata key '" + key + "' must be a positive number, got " + std::to_string(*d));
      return std::nullopt;
    }
    return d;
  }

  std::optional<bool> boolean(const std::string& key) {
    const GgufValue* v = find(key, false);
    if (v == nullptr) return std::nullopt;
    if (!v->as_bool()) {
      fail("metadata key '" + key + "' is " + v->type_description() + ", expected a bool");
      return std::nullopt;
    }
    return v->as_bool();
  }

  std::optional<std::string> string(const std::string& key, bool required) {
    const GgufValue* v = find(key, required);
    if (v == nullptr) return std::nullopt;
    if (!v->as_string()) {
      fail("metadata key '" + key + "' is " + v->type_description() + ", expected a string");
      return std::nullopt;
    }
    return std::string(*v->as_string());
  }

  void fail(std::string message) { errors_.push_back(std::move(message)); }
  bool ok() const { return errors_.empty(); }
  Error error(const std::string& where) const {
    std::string m = where + ": ";
    for (size_t i = 0; i < errors_.size(); ++i) m += (i ? "; " : "") + errors_[i];
    return Error{m};
  }

 private:
  const GgufValue* find(const std::string& key, bool required) {
    const GgufValue* v = h_.find(key);
    if (v == nullptr && required) fail("missing metadata key '" + key + "'");
    return v;
  }

  const GgufHeader& h_;
  std::vector<std::string> errors_;
};

// A tensor's bytes in the parsed file.
const uint8_t* tensor_data(const GgufHeader& h, const uint8_t* file, const GgufTensorInfo& t) {
  return file + h.data_start + t.offset;
}

// Whether two stored tensors are the same type, shape and bytes.
bool same_tensor(const GgufHeader& h, const uint8_t* file, const GgufTensorInfo& a, const GgufTensorInfo& b) {
  return a.type == b.type && a.ne == b.ne && a.nbytes == b.nbytes &&
         (a.nbytes == 0 || std::memcmp(tensor_data(h, file, a), tensor_data(h, file, b), a.nbytes) == 0);
}

// llama.cpp stores Llama 3.1's rope scaling ("rope_type": "llama3") as one factor
// per frequency in rope_freqs.weight, computed by the converter from the factor,
// low_freq_factor, high_freq_factor and original_max_position_embeddings. All ones
// is no scaling. Otherwise the parameters are recovered: the factor is the largest;
// each blended factor f_i between 1 and it gives smooth_i = (1/f_i - 1/factor) /
// (1 - 1/factor) = (orig / wavelen_i - low) / (high - low), so two of them fix low
// and high once orig is chosen. The factors depend on orig / (high - low) and
// low / (high - low) only, so orig = {arch}.rope.scaling.original_context_length
// when given, else Llama 3.1's 8192, loses nothing. The recovered parameters must
// reproduce every stored factor (to 1e-4 relative), else the file is refused.
Status rope_freqs_scaling(const GgufHeader& h, const uint8_t* file, int64_t original, ModelConfig& m) {
  const GgufTensorInfo* t = h.tensor("rope_freqs.weight");
  if (t == nullptr) return Status::Ok();
  const std::string w = h.where + ": tensor 'rope_freqs.weight' ";
  const int64_t n = m.head_dim / 2;
  if (t->type != static_cast<uint32_t>(GgmlType::kF32) || t->shape.size() != 1)
    return Error{w + "must be a 1-D F32 tensor, got " + ggml_type_name(t->type) + " " + shape_string(t->shape)};
  if (t->shape[0] != n)
    return Error{w + "has " + std::to_string(t->shape[0]) + " factors, expected head_dim / 2 = " + std::to_string(n)};
  std::vector<double> f(static_cast<size_t>(n)), inv(static_cast<size_t>(n));
  const uint8_t* p = tensor_data(h, file, *t);
  double factor = 0;
  bool all_ones = true;
  for (int64_t i = 0; i < n; ++i) {
    float x;
    std::memcpy(&x, p + 4 * i, 4);
    if (!(x >= 1.0f) || !std::isfinite(x))
      return Error{w + "factor " + std::to_string(i) + " is " + std::to_string(x) + " (rope factors are >= 1)"};
    f[i] = x;
    all_ones = all_ones && x == 1.0f;
    factor = std::max(factor, f[i]);
    inv[i] = 1.0 / std::pow(m.rope_theta, static_cast<double>(2 * i) / static_cast<double>(m.head_dim));
  }
  if (all_ones) return Status::Ok();
  if (m.rope_scaling != ModelConfig::RopeScaling::kNone)
    return Error{w + "and rope.scaling.type linear both scale the rope; only one is supported"};
  const auto orig = static_cast<double>(original);
  constexpr double kTwoPi = 6.283185307179586;
  // The blended factors, strictly between 1 and the factor.
  std::vector<int64_t> blended;
  for (int64_t i = 0; i < n; ++i)
    if (f[i] > 1.0 + 1e-4 && f[i] < factor * (1.0 - 1e-4)) blended.push_back(i);
  const std::string unsupported = "holds rope factors that are not Llama 3.1-style rope scaling";
  if (blended.size() < 2) return Error{w + unsupported + " (fewer than two blended factors to recover it from)"};
  auto smooth = [&](int64_t i) { return (1.0 / f[i] - 1.0 / factor) / (1.0 - 1.0 / factor); };
  const int64_t a = blended.front(), b = blended.back();
  const double xa = orig * inv[a] / kTwoPi, xb = orig * inv[b] / kTwoPi;
  const double span = (xa - xb) / (smooth(a) - smooth(b));  // high - low
  double low = xa - smooth(a) * span, high = low + span;
  // Round-number parameters (1, 4) come back to within float error: snap them.
  auto snap = [](double v) {
    const double r = std::round(v * 1000.0) / 1000.0;
    return std::abs(r - v) <= 1e-4 * std::abs(v) ? r : v;
  };
  low = snap(low);
  high = snap(high);
  if (!(low > 0) || !(high > low) || !std::isfinite(high))
    return Error{w + unsupported + " (recovered low_freq_factor " + std::to_string(low) + ", high_freq_factor " +
                 std::to_string(high) + ")"};
  for (int64_t i = 0; i < n; ++i) {
    const double wavelen = kTwoPi / inv[i];
    double want = factor;
    if (wavelen < orig / high) {
      want = 1.0;
    } else if (wavelen <= orig / low) {
      const double s = (orig / wavelen - low) / (high - low);
      want = 1.0 / ((1.0 - s) / factor + s);
    }
    if (std::abs(want - f[i]) > 1e-4 * f[i])
      return Error{w + unsupported + " (factor " + std::to_string(i) + " is " + std::to_string(f[i]) +
                   ", the recovered llama3 scaling gives " + std::to_string(want) + ")"};
  }
  m.rope_scaling = ModelConfig::RopeScaling::kLlama3;
  m.rope_factor = factor;
  m.rope_low_freq_factor = low;
  m.rope_high_freq_factor = high;
  m.rope_original_max_positions = original;
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> gguf_model_config(const GgufHeader& h, const uint8_t* file) {
  const std::string& where = h.where;
  Result<std::string> arch = h.get_string("general.architecture");
  if (!arch) return arch.error();
  ModelConfig m;
  m.name = h.where;
  if (*arch == "llama") {
    m.family = Family::kLlama;
  } else if (*arch == "qwen2") {
    m.family = Family::kQwen2;
  } else if (*arch == "qwen3") {
    m.family = Family::kQwen3;
  } else if (*arch == "gptneox") {
    m.family = Family::kGptNeoX;
  } else if (*arch == "gpt2") {
    m.family = Family::kGpt2;
  } else {
    return Error{where + ": unsupported general.architecture '" + *arch + "' (supported: " + kArchitectures + ")"};
  }
  const bool gpt2 = m.family == Family::kGpt2, neox = m.family == Family::kGptNeoX;
  const std::string a = *arch + ".";

  MetaReader r(h);
  auto hidden = r.count(a + "embedding_length", true);
  auto layers = r.count(a + "block_count", true);
  auto ffn = r.count(a + "feed_forward_length", true);
  auto heads = r.count(a + "attention.head_count", true);
  auto kv_heads = r.count(a + "attention.head_count_kv", false);
  auto key_length = r.count(a + "attention.key_length", false);
  auto value_length = r.count(a + "attention.value_length", false);
  auto context = r.count(a + "context_length", true, kMaxCount);
  auto eps = r.positive(a + (gpt2 || neox ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon"), true);
  std::optional<double> theta, scaling_factor, scale_linear;
  std::optional<int64_t> rope_dims, original_context;
  std::optional<std::string> scaling_type;
  if (!gpt2) {
    theta = r.positive(a + "rope.freq_base", false);
    rope_dims = r.count(a + "rope.dimension_count", false);
    scaling_type = r.string(a + "rope.scaling.type", false);
    scaling_factor = r.positive(a + "rope.scaling.factor", false);
    scale_linear = r.positive(a + "rope.scale_linear", false);
    original_context = r.count(a + "rope.scaling.original_context_length", false, kMaxCount);
  }
  std::optional<bool> parallel;
  if (neox) parallel = r.boolean("gptneox.use_parallel_residual");
  auto vocab_key = r.count(a + "vocab_size", false, kMaxCount);
  auto bos = r.token_id("tokenizer.ggml.bos_token_id");
  auto eos = r.token_id("tokenizer.ggml.eos_token_id");
  std::optional<uint64_t> n_tokens;
  if (const GgufValue* tokens = h.find("tokenizer.ggml.tokens")) {
    if (!tokens->is_array() || tokens->element_type() != GgufValueType::kString)
      r.fail("metadata key 'tokenizer.ggml.tokens' is " + tokens->type_description() + ", expected an array of string");
    else
      n_tokens = tokens->size();
  }
  if (!r.ok()) return r.error(where);

  m.hidden_size = *hidden;
  m.num_layers = *layers;
  m.intermediate_size = *ffn;
  m.num_heads = *heads;
  m.num_kv_heads = kv_heads.value_or(*heads);
  m.max_position_embeddings = *context;
  m.norm_eps = *eps;
  auto err = [&](const std::string& s) { return Error{where + ": " + s}; };
  if (!key_length && *hidden % *heads != 0)
    return err(a + "embedding_length " + std::to_string(*hidden) + " is not a multiple of " + a +
               "attention.head_count " + std::to_string(*heads) + " and " + a + "attention.key_length is not given");
  m.head_dim = key_length.value_or(*hidden / *heads);
  if (value_length && *value_length != m.head_dim)
    return err(a + "attention.value_length " + std::to_string(*value_length) + " differs from the key length " +
               std::to_string(m.head_dim) + " (not supported)");
  if (m.num_heads * m.head_dim > kMaxWidth)
    return err("head_count x head_dim = " + std::to_string(m.num_heads * m.head_dim) + " is too large");
  if (m.num_heads % m.num_kv_heads != 0)
    return err(a + "attention.head_count " + std::to_string(m.num_heads) + " is not a multiple of " + a +
               "attention.head_count_kv " + std::to_string(m.num_kv_heads));

  // Vocabulary: the tokenizer's token count, which the embedding's rows must match.
  const GgufTensorInfo* embd = h.tensor("token_embd.weight");
  if (embd == nullptr) return err("no tensor 'token_embd.weight'");
  if (embd->shape.size() != 2)
    return err("tensor 'token_embd.weight' has shape " + shape_string(embd->shape) + ", expected [vocab, " +
               std::to_string(m.hidden_size) + "]");
  const int64_t embd_rows = embd->shape[0];
  if (n_tokens && static_cast<int64_t>(*n_tokens) != embd_rows)
    return err("tokenizer.ggml.tokens has " + std::to_string(*n_tokens) + " tokens but token_embd.weight has " +
               std::to_string(embd_rows) + " rows");
  if (vocab_key && *vocab_key != embd_rows)
    return err(a + "vocab_size " + std::to_string(*vocab_key) + " differs from token_embd.weight's " +
               std::to_string(embd_rows) + " rows");
  if (embd_rows < 1 || embd_rows > kMaxCount)
    return err("token_embd.weight's " + std::to_string(embd_rows) + " rows are not a usable vocabulary size");
  m.vocab_size = embd_rows;
  for (auto [id, key] : {std::pair{bos, "bos"}, std::pair{eos, "eos"}})
    if (id && *id >= m.vocab_size)
      return err("tokenizer.ggml." + std::string(key) + "_token_id " + std::to_string(*id) +
                 " is outside the vocabulary of " + std::to_string(m.vocab_size));
  m.bos_token_id = bos.value_or(-1);
  m.eos_token_id = eos.value_or(-1);

  // The head is tied when it is not stored (GPT-2's converter stores a byte copy of
  // the embedding; that is tied too).
  const GgufTensorInfo* output = h.tensor("output.weight");
  m.tie_embeddings = output == nullptr || (gpt2 && same_tensor(h, file, *output, *embd));

  auto has = [&](const char* name) { return h.tensor(name) != nullptr; };
  switch (m.family) {
    case Family::kLlama:
      m.qkv_bias = has("blk.0.attn_q.bias");
      m.o_bias = has("blk.0.attn_output.bias");
      m.mlp_bias = has("blk.0.ffn_up.bias");
      break;
    case Family::kQwen2:
      m.qkv_bias = true;
      break;
    case Family::kQwen3:
      m.qkv_bias = has("blk.0.attn_q.bias");
      m.o_bias = has("blk.0.attn_output.bias");
      m.qk_norm = true;
      break;
    case Family::kGptNeoX:
      m.gated_mlp = false;
      m.qkv_bias = has("blk.0.attn_qkv.bias");
      m.o_bias = has("blk.0.attn_output.bias");
      m.mlp_bias = true;
      m.layer_norm = true;
      m.parallel_residual = parallel.value_or(true);
      m.activation = ModelConfig::Activation::kGelu;  // GGUF names none: HF's default "gelu"
      break;
    case Family::kGpt2:
      if (m.num_kv_heads != m.num_heads)
        return err("gpt2.attention.head_count_kv " + std::to_string(m.num_kv_heads) + " differs from head_count " +
                   std::to_string(m.num_heads) + " (GPT-2 has no grouped-query attention)");
      if (m.head_dim * m.num_heads != m.hidden_size)
        return err("gpt2.attention.key_length " + std::to_string(m.head_dim) + " is not embedding_length / head_count");
      m.gated_mlp = false;
      m.qkv_bias = m.o_bias = m.mlp_bias = true;
      m.learned_positions = true;
      m.layer_norm = true;
      m.activation = ModelConfig::Activation::kGeluTanh;  // HF's default "gelu_new"
      break;
  }

  if (!gpt2) {
    m.rope_theta = theta.value_or(10000.0);
    if (m.head_dim % 2 != 0) return err("head_dim " + std::to_string(m.head_dim) + " is odd (rope needs pairs)");
    const int64_t rot = rope_dims.value_or(m.head_dim);
    if (rot > m.head_dim || rot % 2 != 0)
      return err(a + "rope.dimension_count " + std::to_string(rot) + " must be even and at most head_dim " +
                 std::to_string(m.head_dim));
    if (neox) {
      m.rotary_pct = static_cast<double>(rot) / static_cast<double>(m.head_dim);
    } else if (rot != m.head_dim) {
      return err(a + "rope.dimension_count " + std::to_string(rot) + " differs from head_dim " +
                 std::to_string(m.head_dim) + " (partial rotary is supported for gptneox only)");
    }
    // Rope scaling: "none", or "linear" with rope.scaling.factor (or the older
    // rope.scale_linear); llama.cpp's default type is linear, and a factor of 1 is none.
    const std::string type = scaling_type.value_or("linear");
    const double factor = scaling_factor.value_or(scale_linear.value_or(1.0));
    if (type == "linear") {
      if (factor != 1.0) {
        m.rope_scaling = ModelConfig::RopeScaling::kLinear;
        m.rope_factor = factor;
      }
    } else if (type != "none") {
      return err(a + "rope.scaling.type '" + type + "' is not supported (none, linear)");
    }
    GB_RETURN_IF_ERROR(rope_freqs_scaling(h, file, original_context.value_or(8192), m));
  }
  return m;
}

Result<ModelConfig> gguf_model_config(const GgufFile& f) { return gguf_model_config(f.header(), f.bytes()); }

Result<ModelConfig> gguf_model_config(const std::string& path) {
  Result<std::unique_ptr<GgufFile>> f = GgufFile::open(path);
  if (!f) return f.error();
  return gguf_model_config(**f);
}

}  // namespace gb::engine

// ---- names and the WeightSource ----

namespace gb::engine {
namespace {

// One llama.cpp name and its Hugging Face counterpart; per-layer rules are the part
// after "blk.N." and after the family's HF layer prefix.
struct NameRule {
  std::string_view gguf, hf;
};

struct FamilyNames {
  std::string_view hf_layer_prefix;  // followed by N "."
  std::vector<NameRule> globals;
  std::vector<NameRule> layer;
};

const FamilyNames& family_names(Family f) {
  static const FamilyNames kLlamaLike = {
      "model.layers.",
      {{"token_embd.weight", "model.embed_tokens.weight"},
       {"output_norm.weight", "model.norm.weight"},
       {"output.weight", "lm_head.weight"}},
      {{"attn_norm.weight", "input_layernorm.weight"},
       {"attn_q.weight", "self_attn.q_proj.weight"},
       {"attn_q.bias", "self_attn.q_proj.bias"},
       {"attn_k.weight", "self_attn.k_proj.weight"},
       {"attn_k.bias", "self_attn.k_proj.bias"},
       {"attn_v.weight", "self_attn.v_proj.weight"},
       {"attn_v.bias", "self_attn.v_proj.bias"},
       {"attn_output.weight", "self_attn.o_proj.weight"},
       {"attn_output.bias", "self_attn.o_proj.bias"},
       {"attn_q_norm.weight", "self_attn.q_norm.weight"},
       {"attn_k_norm.weight", "self_attn.k_norm.weight"},
       {"ffn_norm.weight", "post_attention_layernorm.weight"},
       {"ffn_gate.weight", "mlp.gate_proj.weight"},
       {"ffn_gate.bias", "mlp.gate_proj.bias"},
       {"ffn_up.weight", "mlp.up_proj.weight"},
       {"ffn_up.bias", "mlp.up_proj.bias"},
       {"ffn_down.weight", "mlp.down_proj.weight"},
       {"ffn_down.bias", "mlp.down_proj.bias"}}};
  static const FamilyNames kNeoX = {
      "gpt_neox.layers.",
      {{"token_embd.weight", "gpt_neox.embed_in.weight"},
       {"output_norm.weight", "gpt_neox.final_layer_norm.weight"},
       {"output_norm.bias", "gpt_neox.final_layer_norm.bias"},
       {"output.weight", "embed_out.weight"}},
      {{"attn_norm.weight", "input_layernorm.weight"},
       {"attn_norm.bias", "input_layernorm.bias"},
       {"attn_qkv.weight", "attention.query_key_value.weight"},
       {"attn_qkv.bias", "attention.query_key_value.bias"},
       {"attn_output.weight", "attention.dense.weight"},
       {"attn_output.bias", "attention.dense.bias"},
       {"ffn_norm.weight", "post_attention_layernorm.weight"},
       {"ffn_norm.bias", "post_attention_layernorm.bias"},
       {"ffn_up.weight", "mlp.dense_h_to_4h.weight"},
       {"ffn_up.bias", "mlp.dense_h_to_4h.bias"},
       {"ffn_down.weight", "mlp.dense_4h_to_h.weight"},
       {"ffn_down.bias", "mlp.dense_4h_to_h.bias"}}};
  static const FamilyNames kGpt2 = {
      "transformer.h.",
      {{"token_embd.weight", "transformer.wte.weight"},
       {"position_embd.weight", "transformer.wpe.weight"},
       {"output_norm.weight", "transformer.ln_f.weight"},
       {"output_norm.bias", "transformer.ln_f.bias"},
       {"output.weight", "lm_head.weight"}},
      {{"attn_norm.weight", "ln_1.weight"},
       {"attn_norm.bias", "ln_1.bias"},
       {"attn_qkv.weight", "attn.c_attn.weight"},
       {"attn_qkv.bias", "attn.c_attn.bias"},
       {"attn_output.weight", "attn.c_proj.weight"},
       {"attn_output.bias", "attn.c_proj.bias"},
       {"ffn_norm.weight", "ln_2.weight"},
       {"ffn_norm.bias", "ln_2.bias"},
       {"ffn_up.weight", "mlp.c_fc.weight"},
       {"ffn_up.bias", "mlp.c_fc.bias"},
       {"ffn_down.weight", "mlp.c_proj.weight"},
       {"ffn_down.bias", "mlp.c_proj.bias"}}};
  switch (f) {
    case Family::kGptNeoX: return kNeoX;
    case Family::kGpt2: return kGpt2;
    default: return kLlamaLike;
  }
}

// "N.rest" -> N and "rest" (N decimal without leading zeros, below 2^24).
bool split_layer(std::string_view s, int64_t* layer, std::string_view* rest) {
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 8 || (s[0] == '0' && dot > 1)) return false;
  int64_t n = 0;
  for (size_t i = 0; i < dot; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    n = n * 10 + (s[i] - '0');
  }
  if (n >= kMaxWidth) return false;
  *layer = n;
  *rest = s.substr(dot + 1);
  return true;
}

// The HF -> llama.cpp direction of gguf_to_hf_name.
std::string hf_to_gguf_name(Family family, std::string_view hf) {
  const FamilyNames& names = family_names(family);
  for (const NameRule& r : names.globals)
    if (r.hf == hf) return std::string(r.gguf);
  if (!hf.starts_with(names.hf_layer_prefix)) return "";
  int64_t layer;
  std::string_view rest;
  if (!split_layer(hf.substr(names.hf_layer_prefix.size()), &layer, &rest)) return "";
  for (const NameRule& r : names.layer)
    if (r.hf == rest) return "blk." + std::to_string(layer) + "." + std::string(r.gguf);
  return "";
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// How a stored tensor differs from its HF layout (see open_gguf_weights in gguf.h).
enum class Transform { kNone, kUnpermuteRope, kNeoxQkv, kTranspose };

struct TransformOf {
  Transform kind = Transform::kNone;
  int64_t heads = 0;  // kUnpermuteRope, kNeoxQkv
};

TransformOf transform_of(const ModelConfig& c, std::string_view hf) {
  switch (c.family) {
    case Family::kLlama:
      if (ends_with(hf, ".self_attn.q_proj.weight") || ends_with(hf, ".self_attn.q_proj.bias"))
        return {Transform::kUnpermuteRope, c.num_heads};
      if (ends_with(hf, ".self_attn.k_proj.weight") || ends_with(hf, ".self_attn.k_proj.bias"))
        return {Transform::kUnpermuteRope, c.num_kv_heads};
      return {};
    case Family::kGptNeoX:
      if (ends_with(hf, ".attention.query_key_value.weight") || ends_with(hf, ".attention.query_key_value.bias"))
        return {Transform::kNeoxQkv, c.num_heads};
      return {};
    case Family::kGpt2:
      if (ends_with(hf, ".attn.c_attn.weight") || ends_with(hf, ".attn.c_proj.weight") ||
          ends_with(hf, ".mlp.c_fc.weight") || ends_with(hf, ".mlp.c_proj.weight"))
        return {Transform::kTranspose, 0};
      return {};
    default:
      return {};
  }
}

// The HF shape of a stored tensor.
std::vector<int64_t> canonical_shape(const std::vector<int64_t>& stored, Transform t) {
  if (t == Transform::kTranspose && stored.size() == 2) return {stored[1], stored[0]};
  return stored;
}

// Rows of `row_bytes` bytes: dst row d = src row map(d).
template <class F>
std::vector<uint8_t> gather_rows(const uint8_t* src, int64_t rows, size_t row_bytes, F&& map) {
  std::vector<uint8_t> dst(static_cast<size_t>(rows) * row_bytes);
  for (int64_t d = 0; d < rows; ++d)
    std::memcpy(dst.data() + static_cast<size_t>(d) * row_bytes, src + static_cast<size_t>(map(d)) * row_bytes,
                row_bytes);
  return dst;
}

// llama.cpp's converter permutes the q/k rows of each head for its interleaved rope:
//   w.reshape(n_head, 2, head_dim / 2, in).swapaxes(1, 2).reshape(out, in),
// so stored row h*hd + 2i + j holds HF row h*hd + j*(hd/2) + i. The inverse is
// reshape(n_head, head_dim / 2, 2, in).swapaxes(1, 2): HF row h*hd + j*(hd/2) + i
// reads stored row h*hd + 2i + j.
std::vector<uint8_t> unpermute_rope(const uint8_t* src, int64_t rows, size_t row_bytes, int64_t heads) {
  const int64_t hd = rows / heads, half = hd / 2;
  return gather_rows(src, rows, row_bytes, [&](int64_t d) {
    const int64_t h = d / hd, r = d % hd, j = r / half, i = r % half;
    return h * hd + 2 * i + j;
  });
}

// llama.cpp's converter regroups GPT-NeoX's per-head [q_h, k_h, v_h] rows as
// [q of all heads, k of all heads, v of all heads]: HF row (h*3 + j)*hd + x reads
// stored row j*(heads*hd) + h*hd + x.
std::vector<uint8_t> regroup_neox_qkv(const uint8_t* src, int64_t rows, size_t row_bytes, int64_t heads) {
  const int64_t q = rows / 3, hd = q / heads;
  return gather_rows(src, rows, row_bytes, [&](int64_t d) {
    const int64_t h = d / (3 * hd), j = (d / hd) % 3, x = d % hd;
    return j * q + h * hd + x;
  });
}

// [rows, cols] -> [cols, rows], elements of `esize` bytes.
std::vector<uint8_t> transpose(const uint8_t* src, int64_t rows, int64_t cols, size_t esize) {
  std::vector<uint8_t> dst(static_cast<size_t>(rows * cols) * esize);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(dst.data() + static_cast<size_t>(c * rows + r) * esize,
                  src + static_cast<size_t>(r * cols + c) * esize, esize);
  return dst;
}

std::string join_limited(const std::vector<std::string>& items, size_t limit = 6) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < limit; ++i) s += (i ? "; " : "") + items[i];
  if (items.size() > limit) s += "; and " + std::to_string(items.size() - limit) + " more";
  return s;
}

class GgufWeights final : public WeightSource {
 public:
  struct Param {
    const GgufTensorInfo* info = nullptr;
    TransformOf transform;
    std::vector<int64_t> shape;  // HF shape
  };

  static Result<std::unique_ptr<WeightSource>> open(const std::string& path, const GgufWeightsOptions& options) {
    Result<std::unique_ptr<GgufFile>> f = GgufFile::open(path);
    if (!f) return f.error();
    Result<ModelConfig> config = gguf_model_config(**f);
    if (!config) return config.error();
    std::unique_ptr<GgufWeights> w(new GgufWeights());
    w->file_ = std::move(*f);
    w->config_ = std::move(*config);
    GB_RETURN_IF_ERROR(w->index(options));
    if (w->file_->header().contains("tokenizer.ggml.model")) {
      Result<std::string> model = w->file_->header().get_string("tokenizer.ggml.model");
      if (!model) return model.error();
      if (*model == "gpt2" || *model == "llama") {
        Result<std::string> text = gguf_tokenizer_json(w->file_->header());
        if (!text) return text.error();
        Result<Tokenizer> t = Tokenizer::from_json_text(*text, path + " (embedded tokenizer)");
        if (!t) return t.error();
        w->tokenizer_.emplace(std::move(*t));
      }
    }
    return std::unique_ptr<WeightSource>(std::move(w));
  }

  const ModelConfig& config() const override { return config_; }
  std::string describe() const override { return "gguf:" + file_->path(); }
  // Rearranged copies are freed; the mapped file's pages leave resident memory.
  void release_tensors() override {
    owned_.clear();
    file_->drop_pages();
  }

  Result<TensorView> tensor(std::string_view name) override {
    if (head_tied_ && name == head_name_) name = embed_name_;
    auto it = params_.find(name);
    if (it == params_.end()) return Error{file_->path() + ": the model has no tensor '" + std::string(name) + "'"};
    const Param& p = it->second;
    const GgufTensorInfo& info = *p.info;
    const std::optional<DType> dt = ggml_type_dtype(static_cast<GgmlType>(info.type));
    if (!dt || !is_float_weight_dtype(*dt))
      return Error{
          file_->path() + ": tensor " + quote_name(info.name) + " (" + std::string(name) + ") is " +
          ggml_type_name(info.type) + "; " +
          (dt ? "expected F32, F16 or BF16" : "quantized GGUF types are not supported yet (F32, F16, BF16 only)")};
    TensorView v;
    v.dtype = *dt;
    v.shape = p.shape;
    if (p.transform.kind == Transform::kNone) {
      v.data = file_->data(info);
      return v;
    }
    auto owned = owned_.find(name);
    if (owned == owned_.end()) {
      const uint8_t* src = file_->data(info);
      const size_t esize = dtype_size(*dt);
      const int64_t rows = info.shape[0];
      const size_t row_bytes = static_cast<size_t>(info.nbytes / static_cast<uint64_t>(std::max<int64_t>(rows, 1)));
      std::vector<uint8_t> bytes;
      switch (p.transform.kind) {
        case Transform::kUnpermuteRope: bytes = unpermute_rope(src, rows, row_bytes, p.transform.heads); break;
        case Transform::kNeoxQkv: bytes = regroup_neox_qkv(src, rows, row_bytes, p.transform.heads); break;
        case Transform::kTranspose: bytes = transpose(src, info.shape[0], info.shape[1], esize); break;
        case Transform::kNone: break;
      }
      owned = owned_.emplace(std::string(name), std::move(bytes)).first;
    }
    v.data = owned->second.data();
    return v;
  }

  uint64_t parameter_bytes() const override { return bytes_; }
  const Tokenizer* tokenizer() const override { return tokenizer_ ? &*tokenizer_ : nullptr; }

 private:
  GgufWeights() = default;

  // Maps every stored tensor to its HF name and checks the set against the config.
  Status index(const GgufWeightsOptions& options) {
    const ModelConfig& c = config_;
    const std::vector<ExpectedTensor> expected = expected_hf_tensors(c, "transformer.");
    const FamilyNames& names = family_names(c.family);
    embed_name_ = std::string(names.globals[0].hf);
    for (const NameRule& r : names.globals)
      if (r.gguf == "output.weight") head_name_ = std::string(r.hf);
    head_tied_ = c.tie_embeddings;

    std::map<std::string, Param, std::less<>> stored;  // HF name -> stored tensor
    std::vector<std::string> unexpected, missing, mismatched, quantized;
    std::map<std::string, int> quantized_types;
    for (const GgufTensorInfo& t : file_->tensors()) {
      if (t.name == "rope_freqs.weight" && c.family != Family::kGpt2) continue;  // checked by the config: all ones
      if (t.name == "output.weight" && c.tie_embeddings) continue;  // GPT-2's byte copy of the embedding
      const std::string hf = gguf_to_hf_name(c.family, t.name);
      if (hf.empty()) {
        unexpected.push_back(quote_name(t.name));
        continue;
      }
      const TransformOf tr = transform_of(c, hf);
      stored[hf] = Param{&t, tr, canonical_shape(t.shape, tr.kind)};
    }
    uint64_t bytes = 0;
    std::set<std::string, std::less<>> expected_names;
    for (const ExpectedTensor& e : expected) {
      expected_names.insert(e.name);
      auto it = stored.find(e.name);
      const std::string gguf = hf_to_gguf_name(c.family, e.name);
      if (it == stored.end()) {
        missing.push_back(quote_name(gguf) + " (" + e.name + " " + shape_string(e.shape) + ")");
        continue;
      }
      const Param& p = it->second;
      if (p.shape != e.shape) {
        mismatched.push_back("tensor " + quote_name(gguf) + " has shape " + shape_string(p.info->shape) +
                             " but the metadata implies " +
                             shape_string(canonical_shape(e.shape, p.transform.kind)));
        continue;
      }
      const std::optional<DType> dt = ggml_type_dtype(static_cast<GgmlType>(p.info->type));
      if (!dt) {
        quantized.push_back(gguf);
        ++quantized_types[ggml_type_name(p.info->type)];
      } else if (!is_float_weight_dtype(*dt)) {
        mismatched.push_back("tensor " + quote_name(gguf) + " is " + ggml_type_name(p.info->type) +
                             ", expected F32, F16 or BF16");
      }
      bytes += p.info->nbytes;
    }
    for (const auto& [hf, p] : stored)
      if (!expected_names.contains(hf)) unexpected.push_back(quote_name(p.info->name) + " (" + hf + ")");

    std::vector<std::string> problems;
    if (!missing.empty())
      problems.push_back("missing tensor" + std::string(missing.size() > 1 ? "s " : " ") + join_limited(missing));
    if (!unexpected.empty())
      problems.push_back("unexpected tensor" + std::string(unexpected.size() > 1 ? "s " : " ") +
                         join_limited(unexpected) + " (not a " + std::string(family_name(c.family)) +
                         " parameter for this file's metadata)");
    if (!mismatched.empty()) problems.push_back(join_limited(mismatched));
    if (problems.empty() && !quantized.empty() && !options.allow_quantized) {
      std::string types;
      for (const auto& [name, n] : quantized_types)
        types += (types.empty() ? "" : ", ") + name + " x" + std::to_string(n);
      problems.push_back("tensor " + quote_name(quantized.front()) + " is " +
                         ggml_type_name(stored.at(gguf_to_hf_name(c.family, quantized.front())).info->type) +
                         "; quantized GGUF types are not supported yet (F32, F16, BF16 only) (" +
                         std::to_string(quantized.size()) + " quantized tensors: " + types + ")");
    }
    if (!problems.empty()) {
      std::string m = file_->path() + ": ";
      for (size_t i = 0; i < problems.size(); ++i) m += (i ? "; " : "") + problems[i];
      return Error{m};
    }
    params_ = std::move(stored);
    bytes_ = bytes;
    return Status::Ok();
  }

  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  std::map<std::string, Param, std::less<>> params_;
  std::map<std::string, std::vector<uint8_t>, std::less<>> owned_;  // rearranged tensors
  std::string embed_name_, head_name_;
  bool head_tied_ = false;
  uint64_t bytes_ = 0;
  std::optional<Tokenizer> tokenizer_;
};

}  // namespace

std::string gguf_to_hf_name(Family family, std::string_view gguf_name) {
  const FamilyNames& names = family_names(family);
  for (const NameRule& r : names.globals)
    if (r.gguf == gguf_name) return std::string(r.hf);
  if (!gguf_name.starts_with("blk.")) return "";
  int64_t layer;
  std::string_view rest;
  if (!split_layer(gguf_name.substr(4), &layer, &rest)) return "";
  for (const NameRule& r : names.layer)
    if (r.gguf == rest) return std::string(names.hf_layer_prefix) + std::to_string(layer) + "." + std::string(r.hf);
  return "";
}

Result<std::unique_ptr<WeightSource>> open_gguf_weights(const std::string& path, const GgufWeightsOptions& options) {
  return GgufWeights::open(path, options);
}

}  // namespace gb::engine

// ---- the embedded tokenizer ----

namespace gb::engine {
namespace {

using nlohmann::json;

// Pre-tokenizer regexes of llama.cpp's BPE pre-tokenizer types (llama-vocab.cpp).
// Qwen2's and Llama 3's are the ones their tokenizer.json files carry; llama.cpp's
// default type applies four regexes in turn.
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::vector<std::string> kDefaultRegexes = {
    R"([\p{P}\$\+<=>\^~\|]+)",
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
    R"(\p{N}+)",
    R"([0-9][0-9][0-9])",
};

json split(const std::string& regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
}
json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", use_regex}};
}

// The post-processor adding BOS (tokenizer.ggml.bos_token_id) and/or EOS around the
// text; null when it adds neither.
Result<json> special_template(const GgufHeader& h, const std::vector<std::string_view>& tokens, bool add_bos,
                              bool add_eos) {
  if (!add_bos && !add_eos) return json(nullptr);
  json single = json::array();
  json special = json::object();
  for (auto [on, key] : {std::pair{add_bos, "tokenizer.ggml.bos_token_id"}, std::pair{false, ""},
                         std::pair{add_eos, "tokenizer.ggml.eos_token_id"}}) {
    if (key[0] == '\0') {
      single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
      continue;
    }
    if (!on) continue;
    Result<int64_t> id = h.get_int(key);
    if (!id) return Error{id.message() + " (the tokenizer adds it)"};
    if (*id < 0 || static_cast<uint64_t>(*id) >= tokens.size())
      return Error{h.where + ": " + key + " " + std::to_string(*id) + " is not a token id"};
    const std::string tok(tokens[static_cast<size_t>(*id)]);
    if (tok.empty()) return Error{h.where + ": " + key + " " + std::to_string(*id) + " is an empty token"};
    single.push_back({{"SpecialToken", {{"id", tok}, {"type_id", 0}}}});
    special[tok] = {{"id", tok}, {"ids", {*id}}, {"tokens", {tok}}};
  }
  return json{{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", special}};
}

Result<std::string> dump_tokenizer(const GgufHeader& h, const json& doc) {
  try {
    return doc.dump();
  } catch (const json::exception& e) {
    return Error{h.where + ": the embedded tokenizer has a token or merge that is not valid UTF-8 (" + e.what() + ")"};
  }
}

json added_token(size_t id, const std::string& content, bool special) {
  return {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
          {"normalized", false}, {"special", special}};
}

// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int64_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4, kTypeByte = 6;

// A SentencePiece vocabulary (tokenizer.ggml.model "llama") as a BPE tokenizer.json
// that encodes as llama.cpp's SPM tokenizer and sentencepiece's BPE model do. They
// put "▁" in front of the text (tokenizer.ggml.add_space_prefix, default true) and
// for every space, start from the characters, and repeatedly merge the adjacent pair
// whose concatenation is a vocabulary piece of the highest score (leftmost among
// equal scores); a character outside the vocabulary becomes its <0xNN> byte tokens.
// A BPE model does the same with one merge (a, b) for every way of writing a piece as
// two vocabulary pieces, the merges ranked by the merged piece's score, highest first
// (what Hugging Face's converters do). The two can differ only on a tie: two pending
// pairs of equal score but different merges (SPM takes the leftmost, BPE the one
// listed first). With distinct piece scores (sentencepiece's BPE training gives piece
// i the score -i) that takes two different splits of one piece pending at once;
// tests/data/spm_gguf checks ~100k ids against sentencepiece without meeting one.
// Merge targets are the normal, user-defined and unused pieces (sentencepiece's; not
// unknown, control or byte tokens). Unknown, control and user-defined tokens are
// added tokens matched in the text first (llama.cpp with parse_special), and every
// text segment after one gets the "▁" prefix again, as llama.cpp does.
Result<std::string> spm_tokenizer_json(const GgufHeader& h, const std::vector<std::string_view>& tokens,
                                       const std::vector<int64_t>& types) {
  const std::string& where = h.where;
  Result<std::vector<double>> scores = h.get_float_array("tokenizer.ggml.scores");
  if (!scores) return scores.error();
  if (scores->size() != tokens.size())
    return Error{where + ": tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                 " entries but there are " + std::to_string(tokens.size()) + " tokens"};
  Result<bool> add_bos = h.get_bool("tokenizer.ggml.add_bos_token", true);
  if (!add_bos) return add_bos.error();
  Result<bool> add_eos = h.get_bool("tokenizer.ggml.add_eos_token", false);
  if (!add_eos) return add_eos.error();
  Result<bool> add_space_prefix = h.get_bool("tokenizer.ggml.add_space_prefix", true);
  if (!add_space_prefix) return add_space_prefix.error();
  auto type_of = [&](size_t i) { return types.empty() ? kTypeNormal : types[i]; };

  // The vocabulary (an empty token is left out; a duplicate keeps its first id).
  json vocab = json::object();
  json added = json::array();
  std::unordered_map<std::string_view, size_t> id_of;
  std::vector<size_t> lengths;  // the pieces' distinct byte lengths, ascending
  std::optional<size_t> first_unk;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view tok = tokens[i];
    if (tok.empty()) continue;
    if (!id_of.emplace(tok, i).second) continue;
    vocab[std::string(tok)] = i;
    lengths.push_back(tok.size());
    const int64_t type = type_of(i);
    if (type == kTypeUnknown && !first_unk) first_unk = i;
    if (type == kTypeUnknown || type == kTypeControl || type == kTypeUserDefined)
      added.push_back(added_token(i, std::string(tok), type != kTypeUserDefined));
  }
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());

  json unk = nullptr;
  if (h.contains("tokenizer.ggml.unknown_token_id")) {
    Result<int64_t> id = h.get_int("tokenizer.ggml.unknown_token_id");
    if (!id) return id.error();
    if (*id < 0 || static_cast<uint64_t>(*id) >= tokens.size() || tokens[static_cast<size_t>(*id)].empty())
      return Error{where + ": tokenizer.ggml.unknown_token_id " + std::to_string(*id) + " is not a token id"};
    unk = std::string(tokens[static_cast<size_t>(*id)]);
  } else if (first_unk) {
    unk = std::string(tokens[*first_unk]);
  }

  // The merges: every split of a mergeable piece at a character boundary into two
  // pieces, by the piece's score (NaN lowest), then id, then the longer left part.
  struct Merge {
    double score;
    size_t id, left;  // the merged piece, the byte length of its left part
  };
  std::vector<Merge> merges;
  for (const auto& [tok, i] : id_of) {
    const int64_t type = type_of(i);
    if (type == kTypeUnknown || type == kTypeControl || type == kTypeByte) continue;
    const double score = std::isnan((*scores)[i]) ? -HUGE_VAL : (*scores)[i];
    for (size_t k : lengths) {
      if (k >= tok.size()) break;
      if ((static_cast<unsigned char>(tok[k]) & 0xC0) == 0x80) continue;  // inside a character
      if (id_of.count(tok.substr(0, k)) && id_of.count(tok.substr(k))) merges.push_back({score, i, k});
    }
  }
  std::sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.id != b.id) return a.id < b.id;
    return a.left > b.left;
  });
  json merge_list = json::array();
  for (const Merge& m : merges) {
    const std::string_view tok = tokens[m.id];
    merge_list.push_back({std::string(tok.substr(0, m.left)), std::string(tok.substr(m.left))});
  }

  const json replace_space = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
  json normalizer = replace_space;
  if (*add_space_prefix)
    normalizer = {{"type", "Sequence"},
                  {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, replace_space}}};
  json decoders = {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                   {{"type", "ByteFallback"}},
                   {{"type", "Fuse"}}};
  if (*add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  Result<json> post = special_template(h, tokens, *add_bos, *add_eos);
  if (!post) return post.error();

  json doc = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", normalizer},
      {"pre_tokenizer", nullptr},
      {"post_processor", *post},
      {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", unk}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merge_list}}},
  };
  return dump_tokenizer(h, doc);
}

}  // namespace

Result<std::string> gguf_tokenizer_json(const GgufHeader& h) {
  const std::string& where = h.where;
  Result<std::string> model = h.get_string("tokenizer.ggml.model");
  if (!model) return model.error();
  if (*model != "gpt2" && *model != "llama")
    return Error{where + ": tokenizer.ggml.model '" + *model +
                 "' is not supported (only 'gpt2', byte-level BPE, and 'llama', SentencePiece)"};
  Result<std::vector<std::string_view>> tokens = h.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) return tokens.error();
  std::vector<int64_t> types;
  if (h.contains("tokenizer.ggml.token_type")) {
    Result<std::vector<int64_t>> t = h.get_int_array("tokenizer.ggml.token_type");
    if (!t) return t.error();
    if (t->size() != tokens->size())
      return Error{where + ": tokenizer.ggml.token_type has " + std::to_string(t->size()) + " entries but there are " +
                   std::to_string(tokens->size()) + " tokens"};
    types = std::move(*t);
  }
  if (*model == "llama") return spm_tokenizer_json(h, *tokens, types);

  Result<std::vector<std::string_view>> merges = h.get_string_array("tokenizer.ggml.merges");
  if (!merges) return merges.error();
  Result<std::string> pre = h.get_string("tokenizer.ggml.pre", "default");
  if (!pre) return pre.error();

  // The pre-tokenizer, and the llama3 type's defaults (llama.cpp: BOS added, whole
  // words found in the vocabulary before merging).
  json pre_tokenizer;
  bool llama3 = false;
  if (*pre == "qwen2" || *pre == "deepseek-r1-qwen") {
    pre_tokenizer = {{"type", "Sequence"}, {"pretokenizers", {split(kQwen2Regex), byte_level(false)}}};
  } else if (*pre == "llama-bpe" || *pre == "llama3" || *pre == "llama-v3" || *pre == "smaug-bpe") {
    pre_tokenizer = {{"type", "Sequence"}, {"pretokenizers", {split(kLlama3Regex), byte_level(false)}}};
    llama3 = true;
  } else if (*pre == "gpt-2" || *pre == "phi-2" || *pre == "olmo" || *pre == "mpt") {
    pre_tokenizer = byte_level(true);  // GPT-2's own regex
  } else if (*pre == "default") {
    json seq = json::array();
    for (const std::string& r : kDefaultRegexes) seq.push_back(split(r));
    seq.push_back(byte_level(false));
    pre_tokenizer = {{"type", "Sequence"}, {"pretokenizers", seq}};
  } else {
    return Error{where + ": tokenizer.ggml.pre '" + *pre +
                 "' is not supported (qwen2, deepseek-r1-qwen, llama-bpe, llama3, llama-v3, smaug-bpe, gpt-2, "
                 "phi-2, olmo, mpt, default)"};
  }
  Result<bool> add_bos = h.get_bool("tokenizer.ggml.add_bos_token", llama3);
  if (!add_bos) return add_bos.error();
  Result<bool> add_eos = h.get_bool("tokenizer.ggml.add_eos_token", false);
  if (!add_eos) return add_eos.error();

  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string tok((*tokens)[i]);
    if (tok.empty()) return Error{where + ": tokenizer.ggml.tokens[" + std::to_string(i) + "] is empty"};
    if (!vocab.contains(tok)) vocab[tok] = i;  // a duplicate keeps its first id
    // 3 = control, 4 = user-defined: matched in the text before BPE.
    const int64_t type = types.empty() ? 1 : types[i];
    if (type == kTypeControl || type == kTypeUserDefined) added.push_back(added_token(i, tok, type == kTypeControl));
  }
  json merge_list = json::array();
  for (std::string_view m : *merges) merge_list.push_back(std::string(m));

  Result<json> post = special_template(h, *tokens, *add_bos, *add_eos);
  if (!post) return post.error();
  if (post->is_null()) *post = byte_level(false);

  json doc = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer},
      {"post_processor", *post},
      {"decoder", byte_level(false)},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", llama3},
        {"vocab", vocab}, {"merges", merge_list}}},
  };
  return dump_tokenizer(h, doc);
}

// ---- writing ----

GgufWriteValue GgufWriteValue::u32(uint32_t v) {
  return {GgufValueType::kUint32, GgufValueType::kUint32, {v}, {}, {}, {}};
}
GgufWriteValue GgufWriteValue::u64(uint64_t v) {
  return {GgufValueType::kUint64, GgufValueType::kUint64, {v}, {}, {}, {}};
}
GgufWriteValue GgufWriteValue::i32(int32_t v) {
  return {GgufValueType::kInt32, GgufValueType::kInt32, {}, {v}, {}, {}};
}
GgufWriteValue GgufWriteValue::f32(float v) {
  return {GgufValueType::kFloat32, GgufValueType::kFloat32, {}, {}, {v}, {}};
}
GgufWriteValue GgufWriteValue::f64(double v) {
  return {GgufValueType::kFloat64, GgufValueType::kFloat64, {}, {}, {v}, {}};
}
GgufWriteValue GgufWriteValue::boolean(bool v) {
  return {GgufValueType::kBool, GgufValueType::kBool, {v ? 1u : 0u}, {}, {}, {}};
}
GgufWriteValue GgufWriteValue::string(std::string v) {
  return {GgufValueType::kString, GgufValueType::kString, {}, {}, {}, {std::move(v)}};
}
GgufWriteValue GgufWriteValue::string_array(std::vector<std::string> v) {
  return {GgufValueType::kArray, GgufValueType::kString, {}, {}, {}, std::move(v)};
}
GgufWriteValue GgufWriteValue::i32_array(std::vector<int32_t> v) {
  return {GgufValueType::kArray, GgufValueType::kInt32, {}, {v.begin(), v.end()}, {}, {}};
}
GgufWriteValue GgufWriteValue::f32_array(std::vector<float> v) {
  return {GgufValueType::kArray, GgufValueType::kFloat32, {}, {}, {v.begin(), v.end()}, {}};
}

namespace {

void put_le(std::string& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out += static_cast<char>(v >> (8 * i));
}
void put_string(std::string& out, std::string_view s) {
  put_le(out, s.size(), 8);
  out += s;
}

// Element i of a value of (element) type t.
void put_element(std::string& out, const GgufWriteValue& v, GgufValueType t, size_t i) {
  auto at = [&](const auto& vec) {
    return i < vec.size() ? vec[i] : typename std::decay_t<decltype(vec)>::value_type{};
  };
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kBool: put_le(out, at(v.uints), 1); break;
    case GgufValueType::kUint16: put_le(out, at(v.uints), 2); break;
    case GgufValueType::kUint32: put_le(out, at(v.uints), 4); break;
    case GgufValueType::kUint64: put_le(out, at(v.uints), 8); break;
    case GgufValueType::kInt8: put_le(out, static_cast<uint64_t>(at(v.ints)), 1); break;
    case GgufValueType::kInt16: put_le(out, static_cast<uint64_t>(at(v.ints)), 2); break;
    case GgufValueType::kInt32: put_le(out, static_cast<uint64_t>(at(v.ints)), 4); break;
    case GgufValueType::kInt64: put_le(out, static_cast<uint64_t>(at(v.ints)), 8); break;
    case GgufValueType::kFloat32: put_le(out, std::bit_cast<uint32_t>(static_cast<float>(at(v.floats))), 4); break;
    case GgufValueType::kFloat64: put_le(out, std::bit_cast<uint64_t>(at(v.floats)), 8); break;
    case GgufValueType::kString: put_string(out, at(v.strings)); break;
    case GgufValueType::kArray: break;  // not written
  }
}

size_t element_count(const GgufWriteValue& v) {
  switch (v.element_type) {
    case GgufValueType::kString: return v.strings.size();
    case GgufValueType::kFloat32: case GgufValueType::kFloat64: return v.floats.size();
    case GgufValueType::kInt8: case GgufValueType::kInt16: case GgufValueType::kInt32: case GgufValueType::kInt64:
      return v.ints.size();
    default: return v.uints.size();
  }
}

}  // namespace

std::string gguf_file_bytes(const GgufWriteMetadata& metadata, const std::vector<GgufWriteTensor>& tensors) {
  uint64_t alignment = kGgufDefaultAlignment;
  for (const auto& [key, v] : metadata)
    if (key == "general.alignment" && v.type == GgufValueType::kUint32 && !v.uints.empty() && v.uints[0] != 0)
      alignment = v.uints[0];
  auto align = [&](uint64_t x) { return (x + alignment - 1) / alignment * alignment; };

  std::string out;
  put_le(out, kGgufMagic, 4);
  put_le(out, 3, 4);
  put_le(out, tensors.size(), 8);
  put_le(out, metadata.size(), 8);
  for (const auto& [key, v] : metadata) {
    put_string(out, key);
    put_le(out, static_cast<uint32_t>(v.type), 4);
    if (v.type == GgufValueType::kArray) {
      put_le(out, static_cast<uint32_t>(v.element_type), 4);
      const size_t n = element_count(v);
      put_le(out, n, 8);
      for (size_t i = 0; i < n; ++i) put_element(out, v, v.element_type, i);
    } else {
      put_element(out, v, v.type, 0);
    }
  }
  std::vector<uint64_t> offsets;
  uint64_t next = 0;
  for (const GgufWriteTensor& t : tensors) {
    const uint64_t off = t.offset.value_or(align(next));
    offsets.push_back(off);
    next = off + t.bytes.size();
    put_string(out, t.name);
    put_le(out, t.ne.size(), 4);
    for (int64_t d : t.ne) put_le(out, static_cast<uint64_t>(d), 8);
    put_le(out, t.type, 4);
    put_le(out, off, 8);
  }
  const uint64_t data_start = align(out.size());
  out.resize(data_start, '\0');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t at = data_start + offsets[i];
    if (out.size() < at + tensors[i].bytes.size()) out.resize(at + tensors[i].bytes.size(), '\0');
    if (!tensors[i].bytes.empty()) std::memcpy(out.data() + at, tensors[i].bytes.data(), tensors[i].bytes.size());
  }
  return out;
}

Status write_gguf(const std::string& path, const GgufWriteMetadata& metadata,
                  const std::vector<GgufWriteTensor>& tensors) {
  const std::string bytes = gguf_file_bytes(metadata, tensors);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error{path + ": cannot open for writing: " + std::strerror(errno)};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Error{path + ": write failed"};
  return Status::Ok();
}

}  // namespace gb::engine

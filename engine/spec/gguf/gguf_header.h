// GGUF files (llama.cpp's model format), the header: a strict parser of the header,
// metadata and tensor directory, and the ggml type table. What the metadata says of
// the model is engine/spec/gguf/gguf_config.h; the memory-mapped file, its tensors as a
// WeightSource and the writer are in engine/weights/ (gguf_file.h, gguf_weights.h,
// gguf_writer.h); the embedded vocabulary is engine/tokenizer/gguf_vocab.h.
//
// Layout (versions 2 and 3, little-endian; every integer is little-endian):
//   u32 magic "GGUF" (the bytes 47 47 55 46), u32 version,
//   u64 tensor_count, u64 metadata_kv_count,
//   metadata_kv_count x { string key, u32 value_type, value },
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset },
//   zero padding up to a multiple of the alignment, then the data section.
// A string is { u64 length, length bytes of UTF-8, no terminator }. Value types:
// 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (one byte, 0 or 1),
// 8 string, 9 array { u32 element_type, u64 count, count elements }, 10 u64,
// 11 i64, 12 f64. The alignment is the u32 `general.alignment` (a power of two),
// 32 when absent. A tensor's offset is relative to the data section and a multiple
// of the alignment. ne[0] is the innermost (contiguous) dimension: a matrix with
// ne = [in, out] is the row-major [out, in] matrix, so shapes here are ne reversed.
// Quantized ggml types store ne[0] / block_size blocks of type_size bytes per row.
//
// The parser refuses, with an error "FILE: ..." that says what is wrong and where
// (the byte offset, the key or the tensor): a file too short for what it declares
// (truncation anywhere), a bad magic, versions other than 2 and 3 (and big-endian
// files), counts and lengths that could not fit in the rest of the file (checked
// before anything is allocated), unknown value or ggml types, arrays of arrays, a
// bool that is not 0 or 1, empty or duplicate keys, `general.alignment` that is not
// a u32 power of two, tensor names that are empty, longer than 63 bytes or
// duplicated, n_dims outside 1..4, negative dimensions, a row length that is not a
// multiple of the type's block size, sizes that overflow 63 bits, and offsets that
// are misaligned, out of the data section, or overlap another tensor.
//
// Nothing is copied out of the file: keys, strings and tensor names are views into
// the parsed bytes (the mapping of a GgufFile), valid as long as those bytes are.
#pragma once

#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/spec/dtype.h"

namespace gb::engine {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint64_t kGgufDefaultAlignment = 32;
inline constexpr size_t kGgufMaxTensorName = 63;  // llama.cpp's GGML_MAX_NAME - 1
inline constexpr uint32_t kGgufMaxDims = 4;

// Metadata value types (the numbers are the file's).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "u32", "string", "array", ... ("type N" for numbers outside the enum).
std::string gguf_value_type_name(GgufValueType t);

// ggml tensor types (the numbers are the file's; gaps are types ggml removed).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

// Storage of one ggml type: rows of ne[0] elements are ne[0] / block_size blocks of
// type_size bytes each (block_size 1 for the plain element types).
struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;  // llama.cpp's spelling: "F16", "Q4_0", "Q4_K", "IQ2_XXS", ...
  uint32_t block_size;
  uint32_t type_size;
  bool quantized;
};

// nullptr for a number that is not a (supported) ggml type.
const GgmlTypeTraits* ggml_type_traits(uint32_t type);
// "Q4_0", or "type N" for unknown numbers.
std::string ggml_type_name(uint32_t type);
// The DType of F32/F16/BF16/F64/I8..I64 tensors; nullopt for block-quantized types.
std::optional<DType> ggml_type_dtype(GgmlType type);

// One metadata value: a scalar, a string or an array of one element type. The
// getters return nullopt when the value is not of the asked kind; integer getters
// accept every integer type whose value fits, float getters f32 and f64.
class GgufValue {
 public:
  GgufValueType type() const { return type_; }
  bool is_array() const { return type_ == GgufValueType::kArray; }
  // Arrays: the element type and count. Scalars: their own type and 1.
  GgufValueType element_type() const { return is_array() ? element_type_ : type_; }
  uint64_t size() const { return count_; }
  // "u32", "string", "array of string", ...
  std::string type_description() const;

  std::optional<int64_t> as_int() const;  // any integer type (u64 only up to INT64_MAX)
  std::optional<uint64_t> as_uint() const;  // any non-negative integer
  // f32 is widened through its shortest decimal form, so 1e-5f reads as 1e-5.
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;

  // Element i (< size()) of an array, by the same rules.
  std::optional<int64_t> int_at(uint64_t i) const;
  std::optional<double> float_at(uint64_t i) const;
  std::optional<std::string_view> string_at(uint64_t i) const;

  // The file's encoding of the scalar or of the whole (numeric) array.
  const uint8_t* raw() const { return raw_; }

 private:
  friend class GgufParser;
  std::optional<int64_t> int_of(GgufValueType t, const uint8_t* p) const;
  std::optional<double> float_of(GgufValueType t, const uint8_t* p) const;
  GgufValueType type_ = GgufValueType::kUint8;
  GgufValueType element_type_ = GgufValueType::kUint8;
  uint64_t count_ = 1;
  const uint8_t* raw_ = nullptr;           // scalars and numeric arrays
  std::vector<std::string_view> strings_;  // a string, or each string of an array
};

struct GgufTensorInfo {
  std::string_view name;
  uint32_t type = 0;                // a GgmlType number (always one ggml_type_traits knows)
  std::vector<int64_t> ne;          // GGUF order: ne[0] innermost
  std::vector<int64_t> shape;       // row-major: ne reversed
  uint64_t offset = 0;              // into the data section
  uint64_t nbytes = 0;
  const GgmlTypeTraits& traits() const { return *ggml_type_traits(type); }
  int64_t numel() const { return shape_numel(shape); }
};

// A parsed file: the version, metadata (in file order, and by key) and the tensor
// directory. Lookup helpers return errors "FILE: metadata key 'K' ..." that name the
// file, the key and the expected and actual types.
class GgufHeader {
 public:
  std::string where;  // the file, starting every error message
  uint32_t version = 0;
  uint64_t alignment = kGgufDefaultAlignment;
  uint64_t data_start = 0;  // file offset of the data section (aligned)
  uint64_t data_size = 0;   // bytes from data_start to the end of the file
  std::vector<std::pair<std::string_view, GgufValue>> metadata;  // in file order
  std::vector<GgufTensorInfo> tensors;                          // in file order

  const GgufValue* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  // Required values: an error when the key is missing or of another type.
  Result<std::string> get_string(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  // Optional values: `fallback` when missing, an error when of another type.
  Result<std::string> get_string(std::string_view key, std::string fallback) const;
  Result<int64_t> get_int(std::string_view key, int64_t fallback) const;
  Result<double> get_float(std::string_view key, double fallback) const;
  Result<bool> get_bool(std::string_view key, bool fallback) const;
  // Arrays (required): an error when missing, not an array, or of another element type.
  Result<std::vector<std::string_view>> get_string_array(std::string_view key) const;
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;
  Result<std::vector<double>> get_float_array(std::string_view key) const;

  // nullptr when the file has no tensor of that name.
  const GgufTensorInfo* tensor(std::string_view name) const;

 private:
  friend class GgufParser;
  std::map<std::string_view, size_t, std::less<>> key_index_;     // -> metadata index
  std::map<std::string_view, size_t, std::less<>> tensor_index_;  // -> tensors index
  Result<const GgufValue*> typed(std::string_view key, const char* expected) const;
};

// Parses and validates a whole GGUF file held in file[0, size). `where` (the file's
// path) starts every error message. Never reads outside [file, file + size); any
// input gives a header or an error. The header's strings point into `file`.
Result<GgufHeader> parse_gguf_header(const uint8_t* file, size_t size, const std::string& where);

// A name or key quoted for messages: printable ASCII kept, other bytes escaped as
// \xNN, names over 200 bytes cut with "...".
std::string gguf_quote(std::string_view s);

}  // namespace gb::engine

// Writing GGUF files (engine/spec/gguf/gguf_header.h describes the layout): for tests and
// tools that build conformance files, broken ones included.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "engine/spec/gguf/gguf_header.h"

namespace gb::engine {

// A metadata value to write.
struct GgufWriteValue {
  GgufValueType type = GgufValueType::kUint32;
  GgufValueType element_type = GgufValueType::kUint32;  // arrays
  // Scalars use the first element of the vector matching the type; arrays all of it.
  std::vector<uint64_t> uints;  // u8..u64 and bool
  std::vector<int64_t> ints;    // i8..i64
  std::vector<double> floats;   // f32, f64
  std::vector<std::string> strings;

  static GgufWriteValue u32(uint32_t v);
  static GgufWriteValue u64(uint64_t v);
  static GgufWriteValue i32(int32_t v);
  static GgufWriteValue f32(float v);
  static GgufWriteValue f64(double v);
  static GgufWriteValue boolean(bool v);
  static GgufWriteValue string(std::string v);
  static GgufWriteValue string_array(std::vector<std::string> v);
  static GgufWriteValue i32_array(std::vector<int32_t> v);
  static GgufWriteValue f32_array(std::vector<float> v);
};

struct GgufWriteTensor {
  std::string name;
  uint32_t type = static_cast<uint32_t>(GgmlType::kF32);
  std::vector<int64_t> ne;  // GGUF order (ne[0] innermost)
  std::vector<uint8_t> bytes;
  // The offset written in the directory; by default the next multiple of the
  // alignment after the previous tensor's bytes (set it to build broken files).
  std::optional<uint64_t> offset;
};

using GgufWriteMetadata = std::vector<std::pair<std::string, GgufWriteValue>>;

// The bytes of a GGUF v3 file: the metadata in the order given, the tensor
// directory, then each tensor's bytes at its offset in the data section, which
// starts at the next multiple of the alignment (general.alignment when the
// metadata has it as a u32, else 32). Does not validate: tests build broken files
// with it.
std::string gguf_file_bytes(const GgufWriteMetadata& metadata, const std::vector<GgufWriteTensor>& tensors);
// Writes gguf_file_bytes to `path`.
Status write_gguf(const std::string& path, const GgufWriteMetadata& metadata,
                  const std::vector<GgufWriteTensor>& tensors);


}  // namespace gb::engine

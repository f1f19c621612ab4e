// Safetensors files: a strict header parser, a memory-mapped reader and a writer.
//
// Layout: an 8-byte little-endian u64 N, N bytes of JSON
//   {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]}, ...,
//    "__metadata__": {"key": "value", ...}}
// then the data buffer; offsets are relative to the buffer's start.
//
// The parser rejects, with an error "FILE: ..." that names the tensor where there
// is one: a file shorter than 8 bytes, a header length beyond the file (or above
// 100 MiB), a header that is not a JSON object (or has a duplicate key), an entry
// that is not {dtype, shape, data_offsets}, an unknown dtype, negative or
// non-integer dimensions, offsets with BEGIN > END or END beyond the buffer,
// overlapping tensors, gaps between tensors or bytes left over at the end of the
// buffer, and a byte length that is not numel * dtype size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/mapped_file.h"
#include "engine/weights/tensor_view.h"

namespace gb::engine {

// Headers larger than this are refused (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data buffer
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;  // in data-offset order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data buffer: 8 + N
  uint64_t data_size = 0;   // bytes in the data buffer
};

// Parses and validates the header of a whole safetensors file held in
// file[0, size). `where` (the file's path) starts every error message. Never reads
// outside [file, file + size); any input gives a header or an error.
Result<SafetensorsHeader> parse_safetensors_header(const uint8_t* file, size_t size,
                                                   const std::string& where);

// A safetensors file, memory-mapped read-only; views point into the mapping and
// live as long as this object.
class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<SafetensorsEntry>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  // nullptr when the file has no tensor of that name.
  const SafetensorsEntry* find(std::string_view name) const;
  TensorView view(const SafetensorsEntry& e) const;
  size_t file_size() const { return map_.size(); }
  // Drops the mapping's resident pages (MappedFile::drop_pages); views stay valid.
  void drop_pages() const { map_.drop_pages(); }

 private:
  SafetensorsFile() = default;
  std::string path_;
  MappedFile map_;
  SafetensorsHeader header_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> header_.tensors index
};

// One tensor to write: its name and a view of its bytes (tensor.nbytes() of them).
struct SafetensorsWriteEntry {
  std::string name;
  TensorView tensor;
};

// Writes a safetensors file: the tensors in the order given, contiguous, the header
// padded with spaces to a multiple of 8 bytes (so F32 data is 8-aligned when the
// file is mapped). Refuses empty or duplicate names and "__metadata__".
Status write_safetensors(const std::string& path, const std::vector<SafetensorsWriteEntry>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

// The header text write_safetensors writes (JSON, unpadded): for tests and tools
// that build files by hand.
std::string safetensors_header_json(const std::vector<SafetensorsWriteEntry>& tensors,
                                    const std::map<std::string, std::string>& metadata = {});

}  // namespace gb::engine

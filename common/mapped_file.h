// A whole file memory-mapped read-only (MAP_PRIVATE), for the model file readers
// (safetensors, GGUF). Move-only; unmaps on destruction. An empty file maps to a
// valid one-byte buffer of size 0, so parsers never see a null pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace gb {

class MappedFile {
 public:
  // Errors name the path and the system's reason (missing, not a regular file, ...).
  static Result<MappedFile> open(const std::string& path);
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const;
  size_t size() const { return size_; }
  // Drops the pages read so far from this process's resident memory
  // (MADV_DONTNEED); the next read of them comes from the file again. Views stay
  // valid.
  void drop_pages() const;

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
};

}  // namespace gb

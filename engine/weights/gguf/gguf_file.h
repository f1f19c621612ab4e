// A GGUF file, memory-mapped read-only: its parsed header (engine/spec/gguf/gguf_header.h)
// and views of its tensors. engine/weights/gguf/gguf_weights.h hands them out as a
// WeightSource.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"
#include "engine/spec/gguf/gguf_header.h"
#include "engine/spec/model_config.h"
#include "engine/weights/tensor_view.h"

namespace gb::engine {

// A GGUF file, memory-mapped read-only; the header and views point into the mapping
// and live as long as this object.
class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  const GgufHeader& header() const { return header_; }
  const std::vector<GgufTensorInfo>& tensors() const { return header_.tensors; }
  const GgufTensorInfo* tensor(std::string_view name) const { return header_.tensor(name); }
  // The tensor's bytes (info.nbytes of them) in the mapping.
  const uint8_t* data(const GgufTensorInfo& info) const;
  // The whole file (file_size() bytes).
  const uint8_t* bytes() const { return map_.data(); }
  // A view of an F32/F16/BF16/F64/I8..I64 tensor with the row-major shape; an error
  // naming the tensor for block-quantized types.
  Result<TensorView> view(const GgufTensorInfo& info) const;
  size_t file_size() const { return map_.size(); }
  // Drops the mapping's resident pages (MappedFile::drop_pages); views stay valid.
  void drop_pages() const { map_.drop_pages(); }

 private:
  GgufFile() = default;
  std::string path_;
  MappedFile map_;
  GgufHeader header_;
};

// The ModelConfig the file's metadata describes (engine/spec/gguf/gguf_config.h).
Result<ModelConfig> gguf_model_config(const GgufFile& file);

}  // namespace gb::engine

// The memory-mapped GGUF file (engine/weights/gguf/gguf_file.h).
#include "engine/weights/gguf/gguf_file.h"

#include <optional>

#include "engine/spec/gguf/gguf_config.h"

namespace gb::engine {

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
    return Error{path_ + ": tensor " + gguf_quote(info.name) + " is " + ggml_type_name(info.type) +
                 ", a block-quantized type with no element view"};
  TensorView v;
  v.dtype = *dt;
  v.shape = info.shape;
  v.data = data(info);
  return v;
}


Result<ModelConfig> gguf_model_config(const GgufFile& f) { return gguf_model_config(f.header(), f.bytes()); }

}  // namespace gb::engine

// libFuzzer target over the safetensors header parser (engine/weights/hf/safetensors.h): any
// input is parsed as a whole safetensors file. The parser must return a header or an
// error, never crash or read out of bounds (ASan/UBSan watch that), and an accepted
// header must describe tensors that tile the data buffer inside the input.
#include <cstdint>
#include <cstdlib>

#include "engine/weights/hf/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto h = gb::engine::parse_safetensors_header(data, size, "fuzz");
  if (!h.ok()) {
    if (h.message().rfind("fuzz: ", 0) != 0) std::abort();  // errors name the file
    return 0;
  }
  uint64_t expected = 0;
  for (const auto& t : h->tensors) {
    if (t.begin != expected || t.end < t.begin || h->data_start + t.end > size) std::abort();
    if (t.end - t.begin != static_cast<uint64_t>(gb::engine::shape_numel(t.shape)) * gb::engine::dtype_size(t.dtype))
      std::abort();
    expected = t.end;
  }
  if (expected != h->data_size || h->data_start + h->data_size != size) std::abort();
  return 0;
}

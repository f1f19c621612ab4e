// libFuzzer target over the GGUF parser (engine/spec/gguf/gguf_header.h): any input is parsed as a
// whole GGUF file. The parser must return a header or an error, never crash or read
// out of bounds (ASan/UBSan watch that); errors must start with the file name; an
// accepted header must describe aligned, non-overlapping tensors inside the data
// section, with unique names and consistent sizes. Accepted headers also go through
// every metadata getter, the model config and the tokenizer.json synthesis, which
// must likewise answer with a value or an error naming the file.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "engine/spec/gguf/gguf_config.h"
#include "engine/spec/gguf/gguf_header.h"
#include "engine/tokenizer/gguf_vocab.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

template <class R>
void check_error_names_file(const R& r) {
  if (!r.ok()) check(r.message().rfind("fuzz: ", 0) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gb::engine;
  auto h = parse_gguf_header(data, size, "fuzz");
  if (!h.ok()) {
    check(h.message().rfind("fuzz: ", 0) == 0);
    return 0;
  }
  check(h->version == 2 || h->version == 3);
  check(h->alignment > 0 && (h->alignment & (h->alignment - 1)) == 0);
  check(h->data_start % h->alignment == 0);
  check(h->data_start > size ? h->data_size == 0 : h->data_start + h->data_size == size);

  std::set<std::string_view> names;
  std::vector<const GgufTensorInfo*> order;
  for (const GgufTensorInfo& t : h->tensors) {
    check(!t.name.empty() && t.name.size() <= kGgufMaxTensorName && names.insert(t.name).second);
    check(h->tensor(t.name) == &t);
    const GgmlTypeTraits* tt = ggml_type_traits(t.type);
    check(tt != nullptr);
    check(!t.ne.empty() && t.ne.size() <= kGgufMaxDims && t.shape.size() == t.ne.size());
    check(t.ne[0] % tt->block_size == 0);
    uint64_t nbytes = static_cast<uint64_t>(t.ne[0]) / tt->block_size * tt->type_size;
    for (size_t d = 1; d < t.ne.size(); ++d) nbytes *= static_cast<uint64_t>(t.ne[d]);
    check(nbytes == t.nbytes);
    check(t.offset % h->alignment == 0 && t.offset <= h->data_size && t.nbytes <= h->data_size - t.offset);
    if (t.nbytes > 0) order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i) check(order[i - 1]->offset + order[i - 1]->nbytes <= order[i]->offset);

  for (const auto& [key, v] : h->metadata) {
    check(!key.empty() && h->find(key) == &v);
    (void)v.as_int();
    (void)v.as_uint();
    (void)v.as_float();
    (void)v.as_bool();
    (void)v.as_string();
    (void)v.type_description();
    for (uint64_t i = 0; i < v.size() && i < 64; ++i) {
      (void)v.int_at(i);
      (void)v.float_at(i);
      (void)v.string_at(i);
    }
    check_error_names_file(h->get_int(key));
    check_error_names_file(h->get_float(key));
    check_error_names_file(h->get_string(key));
    check_error_names_file(h->get_bool(key));
    check_error_names_file(h->get_int_array(key));
    check_error_names_file(h->get_float_array(key));
    check_error_names_file(h->get_string_array(key));
  }
  if (size > 0) check_error_names_file(gguf_model_config(*h, data));
  check_error_names_file(gguf_tokenizer_json(*h));
  return 0;
}

// libFuzzer target over tokenizer.json (engine/tokenizer/tokenizer.h): any input is
// loaded with Tokenizer::from_json_text; an accepted tokenizer encodes a few fixed
// texts and decodes what it encoded. Loading must answer with a tokenizer or an
// error naming the file, and nothing may crash, throw or read out of bounds.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/tokenizer/tokenizer.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = gb::engine::Tokenizer::from_json_text(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!t.ok()) {
    check(t.message().rfind("fuzz", 0) == 0);
    return 0;
  }
  for (std::string_view text : {std::string_view("Hello, world!"), std::string_view(" \xE4\xB8\xAD\xE6\x96\x87 12 \n\t"),
                                std::string_view("")}) {
    std::vector<int32_t> ids = t->encode(text, true);
    for (int32_t id : ids) check(id >= 0);
    (void)t->decode(ids, false);
    (void)t->decode(ids, true);
  }
  return 0;
}

// libFuzzer target over config.json: any input is parsed as outside JSON
// (common/json_parse.h) and read as a Hugging Face config (model_config_from_hf in
// engine/spec/model_config.h), then its parameter tensors are listed. Each step
// must answer with a value or an error naming the file, never crash, throw or read
// out of bounds; an accepted config has positive sizes.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/json_parse.h"
#include "engine/spec/model_config.h"
#include "engine/spec/model_tensors.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string where = "fuzz/config.json";
  gb::Result<nlohmann::json> j = gb::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), where);
  if (!j.ok()) {
    check(j.message().rfind(where + ": ", 0) == 0);
    return 0;
  }
  gb::Result<gb::engine::ModelConfig> m = gb::engine::model_config_from_hf(*j, where);
  if (!m.ok()) {
    check(m.message().find(where) != std::string::npos);
    return 0;
  }
  check(m->hidden_size > 0 && m->num_layers > 0 && m->vocab_size > 0);
  return 0;
}

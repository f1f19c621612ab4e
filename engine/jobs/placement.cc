// Placement estimates (engine/jobs/placement.h).
#include "engine/jobs/placement.h"

#include <cstdint>

#include "common/host_memory.h"
#include "engine/spec/model_config.h"
#include "engine/spec/model_tensors.h"

namespace gb::engine {
namespace {

int64_t int_param(const Json& p, const char* name, int64_t fallback) {
  auto it = p.find(name);
  return it == p.end() ? fallback : it->get<int64_t>();
}

}  // namespace

Requirement engine_job_requirement(const Json& params) {
  Requirement r;
  r.device = "cpu";
  Result<ModelConfig> c = resolve_model(params.at("model").get<std::string>());
  if (!c) return r;
  const double weights = static_cast<double>(parameter_count(*c)) * 4.0;  // f32
  const int64_t ctx = int_param(params, "context", 512) + int_param(params, "gen_tokens", 0) +
                      int_param(params, "prompt_tokens", 0);
  const int64_t batch = int_param(params, "batch_size", 1);
  // K and V of every layer, f32.
  const double kv_per_token = 2.0 * static_cast<double>(c->num_layers * c->num_kv_heads * c->head_dim) * 4.0;
  r.memory_bytes = static_cast<int64_t>(weights + kv_per_token * static_cast<double>(ctx * batch));
  return r;
}

std::optional<std::string> host_memory_shortfall(const Requirement& r, const std::string& what,
                                                 std::optional<int64_t> limit_bytes) {
  if (r.memory_bytes <= 0 || r.device == "cuda") return std::nullopt;
  Result<HostMemory> m = host_memory_available(limit_bytes);
  if (!m || r.memory_bytes <= m->available_bytes) return std::nullopt;
  return what + " needs at least " + std::to_string(r.memory_bytes) + " bytes (" + format_bytes(r.memory_bytes) +
         ": f32 weights and an f32 KV cache) but " + std::to_string(m->available_bytes) + " bytes (" +
         format_bytes(static_cast<double>(m->available_bytes)) + ") are available (" + m->source +
         "); nothing was loaded";
}

}  // namespace gb::engine

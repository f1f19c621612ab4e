// Placement estimates (engine/jobs/placement.h).
#include "engine/jobs/placement.h"

#include <cstdint>
#include <cstdlib>
#include <string>

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

Requirement quant_error_requirement(const Json& params) {
  Requirement r;  // any device: the job is host arithmetic
  auto it = params.find("shape");
  if (it == params.end() || !it->is_string()) return r;
  const std::string v = it->get<std::string>();
  const size_t x = v.find('x');
  if (x == std::string::npos) return r;
  const double rows = std::atof(v.substr(0, x).c_str()), cols = std::atof(v.substr(x + 1).c_str());
  // X and W in f32 and f64, Wq in f32, W - Wq in f64 (W square: synthetic inputs).
  r.memory_bytes = static_cast<int64_t>(rows * cols * 12 + cols * cols * 24);
  return r;
}

}  // namespace gb::engine

// Placement estimates (engine/jobs/placement.h).
#include "engine/jobs/placement.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/host_memory.h"
#include "engine/spec/formats.h"
#include "engine/spec/model_config.h"
#include "engine/spec/model_tensors.h"

namespace gb::engine {
namespace {

int64_t int_param(const Json& p, const char* name, int64_t fallback) {
  auto it = p.find(name);
  return it == p.end() ? fallback : it->get<int64_t>();
}

}  // namespace

std::string job_backend(const Json& params) {
  auto it = params.find("backend");
  return it != params.end() && it->is_string() ? it->get<std::string>() : "cpu";
}

double placement_weight_bits(const Json& params) {
  auto it = params.find("weight_format");
  if (it == params.end() || !it->is_string() || it->get<std::string>().empty() ||
      it->get<std::string>() == kAsStoredName)
    return 32;  // as stored: the file's dtype is not known before it is read; the widest
  Result<WeightFormat> f = parse_weight_format(it->get<std::string>());
  if (!f) return 32;
  return f->fake ? 16 : f->effective_bits;  // fake:FMT is held in bf16
}

double placement_kv_bits(const Json& params) {
  auto it = params.find("kv_format");
  if (it == params.end() || !it->is_string()) return 32;  // the engine's default cache is f32
  Result<KvFormat> f = parse_kv_format(it->get<std::string>());
  return f ? f->effective_bits : 32;
}

Requirement engine_job_requirement(const Json& params) {
  Requirement r;
  r.device = job_backend(params);
  Result<ModelConfig> c = resolve_model(params.at("model").get<std::string>());
  if (!c) return r;
  const double weights = static_cast<double>(parameter_count(*c)) * placement_weight_bits(params) / 8.0;
  int64_t ctx = int_param(params, "context", 512) + int_param(params, "gen_tokens", 0) +
                int_param(params, "prompt_tokens", 0);
  if (auto kv = params.find("kv_format"); kv != params.end() && kv->is_string()) {
    Result<KvFormat> f = parse_kv_format(kv->get<std::string>());
    if (f && f->streaming()) ctx = std::min(ctx, f->sink_tokens + f->window_tokens);
  }
  const int64_t batch = int_param(params, "batch_size", 1);
  // K and V of every layer at the KV format's bits.
  const double kv_per_token =
      2.0 * static_cast<double>(c->num_layers * c->num_kv_heads * c->head_dim) * placement_kv_bits(params) / 8.0;
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

Requirement context_search_requirement(const Json& params) {
  Requirement r;
  r.device = job_backend(params);
  Result<ModelConfig> c = resolve_model(params.at("model").get<std::string>());
  if (!c) return r;
  const double weights = static_cast<double>(parameter_count(*c)) * placement_weight_bits(params) / 8.0;
  auto b = params.find("memory_budget_gib");
  const double budget = b != params.end() && b->is_number() ? b->get<double>() * 1024.0 * 1024.0 * 1024.0 : 0;
  r.memory_bytes = static_cast<int64_t>(weights + budget);
  return r;
}

std::optional<std::string> host_memory_shortfall(const Requirement& r, const std::string& what,
                                                 std::optional<int64_t> limit_bytes) {
  if (r.memory_bytes <= 0 || r.device == "cuda") return std::nullopt;
  Result<HostMemory> m = host_memory_available(limit_bytes);
  if (!m || r.memory_bytes <= m->available_bytes) return std::nullopt;
  return what + " needs at least " + std::to_string(r.memory_bytes) + " bytes (" + format_bytes(r.memory_bytes) +
         ": the weights at their format's bits and the KV cache) but " + std::to_string(m->available_bytes) + " bytes (" +
         format_bytes(static_cast<double>(m->available_bytes)) + ") are available (" + m->source +
         "); nothing was loaded";
}

}  // namespace gb::engine

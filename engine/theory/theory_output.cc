// The theory-only kinds' outputs (theory_output.h): reference 003's roofline for
// one configuration and device (roofline.h) as metrics and the decode-latency
// series.
#include "engine/theory/theory_output.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "engine/spec/device_spec.h"
#include "engine/theory/roofline.h"

namespace gb::engine {
namespace {

Metric knee_metric(std::string name, const std::optional<int64_t>& knee) {
  if (!knee) return text_metric(std::move(name), "none", "tokens");
  return value_metric(std::move(name), static_cast<double>(*knee), "tokens");
}

}  // namespace

Result<JobOutput> roofline_output(const Json& params) {
  Result<RooflineSetup> setup = roofline_setup_from_params(params);
  if (!setup) return setup.error();
  const Roofline r(std::move(*setup));
  const ParamCounts& p = r.params();

  JobOutput out;
  auto& m = out.metrics;
  m.push_back(value_metric("total_params", static_cast<double>(p.total), "params"));
  m.push_back(value_metric("activated_params", static_cast<double>(p.activated), "params"));
  m.push_back(value_metric("decoder_params", static_cast<double>(p.decoder), "params"));
  m.push_back(value_metric("lm_head_params", static_cast<double>(p.lm_head), "params"));
  m.push_back(value_metric("embedding_params", static_cast<double>(p.embedding), "params"));
  m.push_back(value_metric("n_groups", r.n_groups(), ""));
  m.push_back(value_metric("kv_elems_per_token", static_cast<double>(r.kv_elems_per_token()), "elems"));
  m.push_back(value_metric("kv_bytes_per_token", r.kv_bytes_per_token(), "B"));
  m.push_back(value_metric("weight_bits", r.setup().weight_bits, "bit"));
  m.push_back(value_metric("kv_bits", r.setup().kv_bits, "bit"));
  m.push_back(value_metric("weight_bytes", r.weight_bytes(), "B"));
  if (r.setup().kv_capacity > 0)
    m.push_back(value_metric("kv_capacity_tokens", static_cast<double>(r.setup().kv_capacity), "tokens"));

  const ContextLimit limit = r.max_context();
  if (limit.kind == ContextLimit::Kind::kTokens)
    m.push_back(value_metric("max_context", static_cast<double>(limit.tokens), "tokens"));
  else
    m.push_back(text_metric("max_context", limit.text(), "tokens"));

  const Knees rough = r.knees(PrefillModel::kRough), exact = r.knees(PrefillModel::kExact);
  m.push_back(knee_metric("prefill_rough_knee1", rough.first));
  m.push_back(knee_metric("prefill_rough_knee2", rough.second));
  m.push_back(knee_metric("prefill_exact_knee1", exact.first));
  m.push_back(knee_metric("prefill_exact_knee2", exact.second));

  m.push_back(value_metric("decode_B_ms", r.decode_B_ms(), "ms"));
  m.push_back(value_metric("decode_W_tokens_per_ms", r.decode_W_tokens_per_ms(), "tokens/ms"));

  int64_t context = 0;
  if (auto it = params.find("context"); it != params.end()) {
    context = it->get<int64_t>();
    m.push_back(value_metric("decode_latency_ms", r.decode_latency_ms(context), "ms"));
  }
  if (auto it = params.find("prompt_tokens"); it != params.end()) {
    const double n = static_cast<double>(it->get<int64_t>());
    m.push_back(value_metric("prefill_rough_ms", r.prefill(PrefillModel::kRough, n).ms(), "ms"));
    m.push_back(value_metric("prefill_exact_ms", r.prefill(PrefillModel::kExact, n).ms(), "ms"));
  }

  // Decode latency against context, 1 .. max(context, 10000); the theory curve,
  // drawn also beyond max_context. It is (n - 1) / W + B, flat past a streaming
  // cache's capacity: its breakpoints (the ends and that knee) are the whole curve,
  // so they are what is stored (a line through them is exact; 20,000 roofline
  // jobs store 60,000 points, not two million).
  Series s{"decode_latency", "tokens", "ms", {}};
  const int64_t x_max = std::max<int64_t>(context, 10000);
  const int64_t knee = r.setup().kv_capacity;
  for (int64_t x : {int64_t{1}, knee, x_max}) {
    if (x < 1 || x > x_max || (!s.points.empty() && s.points.back().x >= static_cast<double>(x))) continue;
    s.points.push_back({static_cast<double>(x), r.decode_latency_ms(x)});
  }
  out.series.push_back(std::move(s));
  out.device = device_to_json(r.setup().device);
  return out;
}

Result<JobOutput> theory_output(std::string_view kind, const Json& params) {
  if (kind == "roofline") return roofline_output(params);
  return Error{"'" + std::string(kind) + "' is not a theory-only job kind"};
}

}  // namespace gb::engine

// Reference 003's roofline theory (engine/theory/roofline.h). Formulas follow 003's Python
// code blocks with its names in comments: Lp, Hp, Ep, Ap, Tp, KVp, n_groups.
#include "engine/theory/roofline.h"

#include <algorithm>
#include <cmath>

#include "engine/spec/formats.h"

namespace gb::engine {
namespace {

using nlohmann::json;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Optional typed parameter reads; `what` is the parameter name.
Result<std::optional<int64_t>> opt_integer(const json& p, const char* what) {
  auto it = p.find(what);
  if (it == p.end()) return std::optional<int64_t>();
  if (!it->is_number() || it->get<double>() != std::trunc(it->get<double>()))
    return Error{std::string(what) + ": expected an integer, got " + it->dump()};
  return std::optional<int64_t>(it->get<int64_t>());
}

Result<std::optional<double>> opt_number(const json& p, const char* what) {
  auto it = p.find(what);
  if (it == p.end()) return std::optional<double>();
  if (!it->is_number()) return Error{std::string(what) + ": expected a number, got " + it->dump()};
  return std::optional<double>(it->get<double>());
}

Result<std::string> req_string(const json& p, const char* what) {
  auto it = p.find(what);
  if (it == p.end()) return Error{std::string("missing parameter ") + what};
  if (!it->is_string()) return Error{std::string(what) + ": expected a string, got " + it->dump()};
  return it->get<std::string>();
}

// Real roots of a2 x^2 + a1 x + a0 (a2 may be 0), ascending; a double root counts as
// no crossing.
std::vector<double> real_roots(double a2, double a1, double a0) {
  if (a2 == 0) {
    if (a1 == 0) return {};
    return {-a0 / a1};
  }
  const double disc = a1 * a1 - 4 * a2 * a0;
  if (disc <= 0) return {};
  // Stable form: q = -(a1 + sign(a1) sqrt(disc)) / 2, roots q/a2 and a0/q.
  const double q = -0.5 * (a1 + std::copysign(std::sqrt(disc), a1));
  std::vector<double> r = {q / a2, a0 / q};
  std::sort(r.begin(), r.end());
  return r;
}

}  // namespace

ParamCounts count_params(const ModelConfig& m) {
  const int64_t h = m.hidden_size;
  const int64_t q_out = m.num_heads * m.head_dim;
  const int64_t kv_out = m.num_kv_heads * m.head_dim;
  const int64_t inter = m.intermediate_size;
  // q, k, v, o projections (003: (h+1)*h for q, (h+1)*h // n_groups for k and v, h*h for o).
  int64_t attention = h * q_out + 2 * h * kv_out + q_out * h;
  if (m.qkv_bias) attention += q_out + 2 * kv_out;
  if (m.o_bias) attention += h;
  // gate/up/down (003: 3*h*I) or fc_in/fc_out.
  int64_t mlp = (m.gated_mlp ? 3 : 2) * h * inter;
  if (m.mlp_bias) mlp += (m.gated_mlp ? 2 * inter : inter) + h;

  ParamCounts p;
  p.decoder = m.num_layers * (attention + mlp);
  p.lm_head = m.vocab_size * h;
  p.embedding = (m.tie_embeddings ? 0 : m.vocab_size * h) +
                (m.learned_positions ? m.max_position_embeddings * h : 0);
  p.activated = p.decoder + p.lm_head;
  p.total = p.activated + p.embedding;
  return p;
}

int64_t kv_elems_per_token(const ModelConfig& m) { return m.num_layers * 2 * m.num_kv_heads * m.head_dim; }

double n_groups(const ModelConfig& m) {
  return static_cast<double>(m.num_heads) / static_cast<double>(m.num_kv_heads);
}

std::string ContextLimit::text() const {
  switch (kind) {
    case Kind::kOom: return "oom";
    case Kind::kUnbounded: return "unbounded";
    case Kind::kTokens: return std::to_string(tokens);
  }
  return "?";
}

Result<RooflineSetup> roofline_setup_from_params(const json& params) {
  if (!params.is_object()) return Error{"roofline parameters must be an object"};
  RooflineSetup s;

  Result<std::string> model_ref = req_string(params, "model");
  if (!model_ref) return model_ref.error();
  Result<ModelConfig> model = resolve_model(*model_ref);
  if (!model) return model.error();
  s.model = std::move(*model);

  auto device_it = params.find("device");
  if (device_it == params.end()) return Error{"missing parameter device"};
  Result<DeviceSpec> device = resolve_device(*device_it);
  if (!device) return device.error();
  s.device = std::move(*device);

  Result<std::string> wname = req_string(params, "weight_format");
  if (!wname) return wname.error();
  Result<WeightFormat> wf = parse_weight_format(*wname);
  if (!wf) return wf.error();
  Result<std::string> kname = req_string(params, "kv_format");
  if (!kname) return kname.error();
  Result<KvFormat> kv = parse_kv_format(*kname);
  if (!kv) return kv.error();

  bool count_scales = false;
  if (auto it = params.find("count_group_scales"); it != params.end()) {
    if (!it->is_boolean()) return Error{"count_group_scales: expected true or false, got " + it->dump()};
    count_scales = it->get<bool>();
  }
  Result<std::optional<double>> bits = opt_number(params, "bits");
  if (!bits) return bits.error();
  s.weight_bits = bits->value_or(count_scales ? wf->effective_bits : wf->nominal_bits);
  if (!(s.weight_bits > 0 && s.weight_bits <= 32)) return Error{"bits: expected a number in (0, 32]"};
  // With scales counted, the KV bits of this model's heads exactly (kernels/codecs/kv_quant.h).
  s.kv_bits = count_scales ? kv_effective_bits(*kv, s.model.head_dim) : kv->nominal_bits;
  s.kv_capacity = kv->streaming() ? kv->sink_tokens + kv->window_tokens : 0;

  Result<std::optional<int64_t>> batch = opt_integer(params, "batch_size");
  if (!batch) return batch.error();
  s.batch_size = batch->value_or(1);
  if (s.batch_size < 1) return Error{"batch_size: expected an integer >= 1"};

  if (auto it = params.find("memory_model"); it != params.end()) {
    if (*it == "003")
      s.memory_model = MemoryModel::k003;
    else if (*it == "total")
      s.memory_model = MemoryModel::kTotal;
    else
      return Error{"memory_model: expected \"003\" or \"total\", got " + it->dump()};
  }
  Result<std::optional<double>> reserve = opt_number(params, "reserve_gib");
  if (!reserve) return reserve.error();
  s.reserve_bytes = reserve->value_or(0) * kGiB;
  if (s.reserve_bytes < 0) return Error{"reserve_gib: expected a number >= 0"};
  return s;
}

Roofline::Roofline(RooflineSetup setup)
    : s_(std::move(setup)), p_(count_params(s_.model)), kv_elems_(engine::kv_elems_per_token(s_.model)) {
  GB_CHECK(s_.batch_size >= 1);
  GB_CHECK(s_.device.bandwidth_bytes_per_s > 0 && s_.device.flops_per_s > 0);
}

double Roofline::n_groups() const { return engine::n_groups(s_.model); }

double Roofline::kv_bytes_per_token() const { return static_cast<double>(kv_elems_) * s_.kv_bits / 8; }

double Roofline::weight_bytes() const { return static_cast<double>(p_.activated) * s_.weight_bits / 8; }

ContextLimit Roofline::max_context() const {
  // 003 kv_cache_len: (memory_size - parameters * w_size / 8) / (kv_cache_parameters * a_size / 8)
  const double weights = s_.memory_model == MemoryModel::k003
                             ? weight_bytes()
                             : static_cast<double>(p_.total) * s_.weight_bits / 8;
  const double free_bytes = s_.device.memory_bytes - weights - s_.reserve_bytes;
  const double per_token = static_cast<double>(s_.batch_size) * kv_bytes_per_token();
  ContextLimit c;
  if (s_.kv_capacity > 0 && free_bytes >= per_token * static_cast<double>(s_.kv_capacity)) {
    c.kind = ContextLimit::Kind::kUnbounded;
    return c;
  }
  const double tokens = std::floor(free_bytes / per_token);
  if (tokens < 1) return c;
  c.kind = ContextLimit::Kind::kTokens;
  c.tokens = static_cast<int64_t>(tokens);
  return c;
}

// 003 prefill_first_token_latency_roughly / _exactly, per sequence times batch_size
// except for the weights, which are read once:
//   read    = (Ap * w_size + b * 0.5 n(n+1) KVp * a_size) / bandwidth
//   rough   = b * (Ap * n + 0.5 n(n+1) KVp * n_groups) * 2 / computing_power
//   exact   = b * (Lp * n + 0.5 n(n+1) KVp * n_groups + Hp) * 2 / computing_power
// KVp * n_groups = layers * 2 * heads * head_dim: every query head reads every key.
PrefillLatency Roofline::prefill(PrefillModel model, double n) const {
  const double b = static_cast<double>(s_.batch_size);
  const double bw = s_.device.bandwidth_bytes_per_s, fl = s_.device.flops_per_s;
  const double kv_sum = 0.5 * n * (n + 1);
  const double kv_flop_elems = static_cast<double>(kv_elems_) * n_groups();
  PrefillLatency l;
  l.read_ms = (weight_bytes() + b * kv_sum * kv_bytes_per_token()) / bw * 1000;
  const double flops = model == PrefillModel::kRough
                           ? b * (static_cast<double>(p_.activated) * n + kv_sum * kv_flop_elems) * 2
                           : b * (static_cast<double>(p_.decoder) * n + kv_sum * kv_flop_elems +
                                  static_cast<double>(p_.lm_head)) * 2;
  l.compute_ms = flops / fl * 1000;
  return l;
}

Knees Roofline::knees(PrefillModel model) const {
  // compute(n) - read(n) = a2 n^2 + a1 n + a0, everything times computing_power / 2.
  const double b = static_cast<double>(s_.batch_size);
  const double ratio = s_.device.flops_per_s / s_.device.bandwidth_bytes_per_s / 2;  // FLOP per byte / 2
  const double kv_flop_elems = static_cast<double>(kv_elems_) * n_groups();
  const double kv_read = 0.5 * b * kv_bytes_per_token() * ratio;
  const double linear = static_cast<double>(model == PrefillModel::kRough ? p_.activated : p_.decoder);
  const double a2 = 0.5 * b * kv_flop_elems - kv_read;
  const double a1 = b * (linear + 0.5 * kv_flop_elems) - kv_read;
  const double a0 = (model == PrefillModel::kExact ? b * static_cast<double>(p_.lm_head) : 0) -
                    weight_bytes() * ratio;
  Knees k;
  for (double r : real_roots(a2, a1, a0)) {
    if (!(r > 0)) continue;
    const double slope = 2 * a2 * r + a1;
    if (slope > 0 && !k.first) k.first = static_cast<int64_t>(std::floor(r));
    if (slope < 0 && !k.second) k.second = static_cast<int64_t>(std::floor(r));
  }
  return k;
}

double Roofline::decode_B_ms() const { return weight_bytes() / s_.device.bandwidth_bytes_per_s * 1000; }

double Roofline::decode_W_tokens_per_ms() const {
  return s_.device.bandwidth_bytes_per_s * 1e-3 / (static_cast<double>(s_.batch_size) * kv_bytes_per_token());
}

double Roofline::decode_latency_ms(int64_t n) const {
  const int64_t cached = s_.kv_capacity > 0 ? std::min(n, s_.kv_capacity) : n;
  return static_cast<double>(cached - 1) / decode_W_tokens_per_ms() + decode_B_ms();
}

}  // namespace gb::engine

// The job-kind registry (engine/job_kinds.h): every job parameter with its domain,
// and every job kind with the parameters it takes and the function that runs it.
#include "engine/job_kinds.h"

#include <algorithm>
#include <cmath>

#include "engine/device_spec.h"
#include "engine/engine_jobs.h"
#include "engine/formats.h"
#include "engine/model_config.h"
#include "engine/roofline.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace gb::engine {
namespace {

const std::vector<ParamSpec>& make_params() {
  static const std::vector<ParamSpec> params = {
      {"model", ParamType::kString,
       "model preset (qwen1.5-7b, ...), synthetic:PRESET[@SEED] or hf:DIR (a Hugging Face checkpoint)"},
      {"weight_format", ParamType::kString, "weight format: f16, int8-channel, int4-g128, nf4-b64, q4_k, ..."},
      {"kv_format", ParamType::kString, "KV cache format: f16, int8, ..., optionally +sink{S}+win{W}"},
      {"device", ParamType::kStringOrObject,
       "device preset (rtx4090, a100-80g, h100-sxm, h200) or {name, memory_gib, bandwidth_gib_s, tflops}"},
      {"batch_size", ParamType::kInteger, "sequences processed together (>= 1)"},
      {"context", ParamType::kInteger, "context length in tokens at which decode latency is reported (>= 1)"},
      {"prompt_tokens", ParamType::kInteger, "prompt length in tokens (>= 1)"},
      {"gen_tokens", ParamType::kInteger, "tokens to generate (>= 1)"},
      {"bits", ParamType::kNumber, "bits per weight, overriding the weight format's (0 < bits <= 32)"},
      {"count_group_scales", ParamType::kBool,
       "use effective bits (scales, zero points) instead of nominal bits"},
      {"memory_model", ParamType::kString,
       "\"003\": memory minus activated weights (reference 003); \"total\": minus all weights"},
      {"reserve_gib", ParamType::kNumber, "device memory kept free, GiB (>= 0)"},
      {"dataset", ParamType::kString, "evaluation dataset name"},
      {"seed", ParamType::kInteger, "random seed (>= 0)"},
      {"compute", ParamType::kString, "compute precision: f32, f16 or bf16"},
      {"seconds", ParamType::kNumber, "sleep job: seconds to sleep (0 to 86400)"},
      {"ppl_mode", ParamType::kString,
       "perplexity: \"llama.cpp\" (context-sized chunks, second half scored) or \"sliding\" (HF strided window)"},
      {"stride", ParamType::kInteger, "perplexity, sliding mode: tokens between window starts (>= 1)"},
      {"chunks", ParamType::kInteger, "perplexity: evaluate at most this many chunks or windows (>= 1)"},
      {"threads", ParamType::kInteger, "CPU threads for the engine (>= 1; default all)"},
      {"tokenizer", ParamType::kString, "a tokenizer.json to use instead of the model's own"},
  };
  return params;
}

bool is_integer(const Json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15;
}

// Only hf: references touch the file system; a reference that does not resolve is a
// domain error.
std::optional<std::string> check_model(const Json& v) {
  Result<ModelConfig> m = resolve_model(v.get<std::string>());
  if (!m) return m.message();
  return std::nullopt;
}

Metric value_metric(std::string name, double value, std::string unit) {
  return Metric{std::move(name), value, std::move(unit), ""};
}

Metric text_metric(std::string name, std::string text, std::string unit) {
  return Metric{std::move(name), std::nullopt, std::move(unit), std::move(text)};
}

Metric knee_metric(std::string name, const std::optional<int64_t>& knee) {
  if (!knee) return text_metric(std::move(name), "none", "tokens");
  return value_metric(std::move(name), static_cast<double>(*knee), "tokens");
}

Result<JobOutput> run_roofline(const Json& params, const ProgressFn& progress) {
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

  // Decode latency against context, 1 .. max(context, 10000) in 100 steps; the
  // theory curve, drawn also beyond max_context.
  Series s{"decode_latency", "tokens", "ms", {}};
  const int64_t x_max = std::max<int64_t>(context, 10000);
  constexpr int kSteps = 100;
  for (int i = 0; i <= kSteps; ++i) {
    const int64_t x = 1 + std::llround(static_cast<double>(i) * static_cast<double>(x_max - 1) / kSteps);
    if (!s.points.empty() && s.points.back().x == static_cast<double>(x)) continue;
    s.points.push_back({static_cast<double>(x), r.decode_latency_ms(x)});
  }
  out.series.push_back(std::move(s));
  out.device = device_to_json(r.setup().device);
  if (progress) progress(1.0, "roofline computed");
  return out;
}

// The `sleep` kind: sleeps, reporting progress, and reports how long it slept. For
// tests, benchmarks, and operators checking a deployment end to end.
Result<JobOutput> run_sleep(const Json& params, const ProgressFn& progress) {
  const double seconds = params.at("seconds").get<double>();
  const auto t0 = std::chrono::steady_clock::now();
  const auto end = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) break;
    const double done = std::chrono::duration<double>(now - t0).count();
    if (progress) progress(seconds > 0 ? done / seconds : 1.0, "slept " + std::to_string(done) + " s");
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        end - now, std::chrono::milliseconds(100)));
  }
  const double slept = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) progress(1.0, "done");
  JobOutput out;
  out.metrics.push_back(value_metric("slept_s", slept, "s"));
  return out;
}

const std::vector<JobKind>& make_kinds() {
  static const std::vector<JobKind> kinds = {
      {"roofline",
       "reference 003's theory: parameter counts, KV bytes per token, longest context, prefill knees, "
       "decode W and B",
       {"model", "weight_format", "kv_format", "device"},
       {"batch_size", "context", "prompt_tokens", "bits", "count_group_scales", "memory_model", "reserve_gib"},
       /*theory_only=*/true,
       run_roofline,
       /*requirement=*/{}},  // theory: any device, no memory
      {"sleep", "sleeps for `seconds` and reports the time it slept", {"seconds"}, {}, /*theory_only=*/false,
       run_sleep,
       /*requirement=*/{}},  // any device, no memory
      {"ppl",
       "perplexity over a text dataset (text:FILE or jsonl:FILE:FIELD), llama.cpp chunks or HF sliding window",
       {"model", "dataset"},
       {"weight_format", "kv_format", "context", "ppl_mode", "stride", "chunks", "batch_size", "threads", "tokenizer"},
       /*theory_only=*/false,
       run_ppl_job,
       engine_job_requirement},
      {"memory", "weight bytes, KV bytes per token and peak resident memory after a prefill of `context` tokens",
       {"model"},
       {"weight_format", "kv_format", "context", "batch_size", "threads"},
       /*theory_only=*/false,
       run_memory_job,
       engine_job_requirement},
      {"speed", "prefill time, decode time per token and throughput of a batch (CPU figures on the CPU backend)",
       {"model"},
       {"weight_format", "kv_format", "prompt_tokens", "gen_tokens", "batch_size", "seed", "threads"},
       /*theory_only=*/false,
       run_speed_job,
       engine_job_requirement},
  };
  return kinds;
}

}  // namespace

const std::vector<ParamSpec>& job_params() { return make_params(); }

const ParamSpec* find_param(std::string_view name) {
  for (const auto& p : job_params())
    if (p.name == name) return &p;
  return nullptr;
}

std::optional<std::string> check_param(std::string_view name, const Json& value) {
  const ParamSpec* spec = find_param(name);
  if (spec == nullptr) return "unknown parameter '" + std::string(name) + "'";

  switch (spec->type) {
    case ParamType::kString:
      if (!value.is_string()) return "expected a string, got " + value.dump();
      break;
    case ParamType::kInteger:
      if (!is_integer(value)) return "expected an integer, got " + value.dump();
      break;
    case ParamType::kNumber:
      if (!value.is_number()) return "expected a number, got " + value.dump();
      break;
    case ParamType::kBool:
      if (!value.is_boolean()) return "expected true or false, got " + value.dump();
      break;
    case ParamType::kStringOrObject:
      if (!value.is_string() && !value.is_object()) return "expected a string or an object, got " + value.dump();
      break;
  }

  if (name == "model") return check_model(value);
  if (name == "weight_format") {
    Result<WeightFormat> f = parse_weight_format(value.get<std::string>());
    if (!f) return f.message();
  } else if (name == "kv_format") {
    Result<KvFormat> f = parse_kv_format(value.get<std::string>());
    if (!f) return f.message();
  } else if (name == "device") {
    Result<DeviceSpec> d = resolve_device(value);
    if (!d) return d.message();
  } else if (name == "batch_size" || name == "context" || name == "prompt_tokens" || name == "gen_tokens" ||
             name == "stride" || name == "chunks" || name == "threads") {
    if (value.get<double>() < 1) return "expected an integer >= 1, got " + value.dump();
  } else if (name == "seed") {
    if (value.get<double>() < 0) return "expected an integer >= 0, got " + value.dump();
  } else if (name == "bits") {
    const double b = value.get<double>();
    if (!(b > 0 && b <= 32)) return "expected a number of bits in (0, 32], got " + value.dump();
  } else if (name == "reserve_gib") {
    const double g = value.get<double>();
    if (!(g >= 0) || !std::isfinite(g)) return "expected a number of GiB >= 0, got " + value.dump();
  } else if (name == "memory_model") {
    if (value != "003" && value != "total") return "expected \"003\" or \"total\", got " + value.dump();
  } else if (name == "compute") {
    if (value != "f32" && value != "f16" && value != "bf16")
      return "expected \"f32\", \"f16\" or \"bf16\", got " + value.dump();
  } else if (name == "seconds") {
    const double t = value.get<double>();
    if (!(t >= 0 && t <= 86400)) return "expected seconds from 0 to 86400, got " + value.dump();
  } else if (name == "ppl_mode") {
    if (value != "llama.cpp" && value != "sliding") return "expected \"llama.cpp\" or \"sliding\", got " + value.dump();
  } else if (name == "tokenizer") {
    if (value.get<std::string>().empty()) return "expected a tokenizer.json path, got \"\"";
  } else if (name == "dataset") {
    if (value.get<std::string>().empty()) return "expected a dataset name, got \"\"";
  }
  return std::nullopt;
}

const std::vector<JobKind>& job_kinds() { return make_kinds(); }

const JobKind* find_job_kind(std::string_view name) {
  for (const auto& k : job_kinds())
    if (k.name == name) return &k;
  return nullptr;
}

Status check_job(std::string_view kind, const Json& params) {
  const JobKind* k = find_job_kind(kind);
  if (k == nullptr) {
    std::string known;
    for (const auto& j : job_kinds()) known += (known.empty() ? "" : ", ") + j.name;
    return Error{"unknown job kind '" + std::string(kind) + "' (known: " + known + ")"};
  }
  if (!params.is_object()) return Error{"job parameters must be an object, got " + params.dump()};
  for (const auto& r : k->required)
    if (!params.contains(r)) return Error{"job kind '" + k->name + "' needs parameter '" + r + "'"};
  for (auto it = params.begin(); it != params.end(); ++it) {
    if (find_param(it.key()) == nullptr) return Error{"unknown parameter '" + it.key() + "'"};
    if (auto problem = check_param(it.key(), it.value())) return Error{it.key() + ": " + *problem};
  }
  return Status::Ok();
}

bool valid_requirement_device(std::string_view device) {
  return device == "any" || device == "cpu" || device == "cuda";
}

Requirement job_requirement(const JobKind& kind, const Json& params) {
  if (!kind.requirement) return Requirement{};
  return kind.requirement(params);
}

Json project_params(const JobKind& kind, const Json& point) {
  Json out = Json::object();
  for (const auto* names : {&kind.required, &kind.optional})
    for (const auto& n : *names)
      if (auto it = point.find(n); it != point.end()) out[n] = *it;
  return out;
}

}  // namespace gb::engine

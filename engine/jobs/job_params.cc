// Job parameters and their domains (engine/jobs/job_params.h).
#include "engine/jobs/job_params.h"

#include <cmath>
#include <filesystem>

#include "common/status.h"
#include "engine/spec/device_spec.h"
#include "engine/spec/formats.h"
#include "engine/spec/model_config.h"

namespace gb::engine {
namespace {

const std::vector<ParamSpec>& make_params() {
  static const std::vector<ParamSpec> params = {
      {"model", ParamType::kString,
       "model preset (qwen1.5-7b, ...), synthetic:PRESET[@SEED] or hf:DIR (a Hugging Face checkpoint)"},
      {"weight_format", ParamType::kString, "weight format: f16, int8-channel, int4-g128, nf4-b64, q4_k, ..."},
      {"kv_format", ParamType::kString,
       "KV cache format: f32, f16, bf16, int8, fp8, int4, int4-g32, int8-calib, optionally +sink{S}+win{W}"},
      {"kv_calibration", ParamType::kString,
       "int8-calib KV caches: the calibration file (JSON, engine/kv/kv_calibration.h); in a grid also "
       "\"job:kv_calibrate\", the calibration of the grid's kv_calibrate measure at the same point"},
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
      {"dataset", ParamType::kString,
       "dataset by path: text:FILE, wikitext:FILE, pg19:DIR, jsonl:FILE:FIELD (ppl); mmlu:DIR (mc_accuracy); "
       "jsonl:FILE:PROMPT,ANSWER (gen_accuracy)"},
      {"seed", ParamType::kInteger, "random seed (>= 0)"},
      {"compute", ParamType::kString,
       "the linear layers' compute dtype (bitsandbytes' bnb_4bit_compute_dtype): \"f32\" (default), \"bf16\" or "
       "\"f16\": inputs, dequantized weights and outputs rounded to it, sums in f32 (cpu backend only)"},
      {"seconds", ParamType::kNumber, "sleep job: seconds to sleep (0 to 86400)"},
      {"ppl_mode", ParamType::kString,
       "perplexity: \"llama.cpp\" (context-sized chunks, second half scored) or \"sliding\" (HF strided window)"},
      {"stride", ParamType::kInteger, "perplexity, sliding mode: tokens between window starts (>= 1)"},
      {"chunks", ParamType::kInteger, "perplexity: evaluate at most this many chunks or windows (>= 1)"},
      {"threads", ParamType::kInteger, "CPU threads for the engine (>= 1; default all)"},
      {"tokenizer", ParamType::kString, "a tokenizer.json to use instead of the model's own"},
      {"shape", ParamType::kString, "quant_error: RxC, X [R, C] and W [C, C] (or X's shape against a model's tensor)"},
      {"tensor", ParamType::kString, "quant_error: a weight matrix of the model, by its Hugging Face name"},
      {"warmup_steps", ParamType::kInteger,
       "speed: untimed decode steps (after an untimed prefill) before the timed runs (>= 0; default 1)"},
      {"timed_runs", ParamType::kInteger,
       "speed: timed runs of prefill + gen_tokens decode steps; figures are over all of them (>= 1; default 1)"},
      {"kv_cache", ParamType::kString,
       "\"full\" (default): decode reads the cached keys and values; \"none\": every new token recomputes the "
       "whole sequence (reference 000's naive decoding)"},
      {"op_breakdown", ParamType::kBool,
       "speed: also time the decode step's ops by category (attention, linear, norms, the rest)"},
      {"cuda_graphs", ParamType::kBool,
       "speed, decode_curve on the cuda backend: decode steps recorded once per shape as CUDA graphs and launched "
       "(default true); false: every op of every step enqueued one by one"},
      {"memory_budget_gib", ParamType::kNumber,
       "context_search: the memory the engine's allocations may take on the CPU, GiB (> 0)"},
      {"kv_allocation", ParamType::kString,
       "context_search: \"static\" (the whole context's cache up front, default), \"dynamic\" (one buffer "
       "grown by doubling, the old one live while it is copied) or \"paged\" (grown kv_page_tokens slots at a "
       "time, nothing copied)"},
      {"kv_page_tokens", ParamType::kInteger,
       "context_search with kv_allocation \"paged\": slots per KV page (a power of two, 1 to 2^30; default 256)"},
      {"prefill_chunk", ParamType::kInteger, "context_search: prefill tokens per forward step (>= 1; default 256)"},
      {"search_limit", ParamType::kInteger, "context_search: the longest context tried (>= 1; default 1048576)"},
      {"mc_mode", ParamType::kString,
       "mc_accuracy: \"all\" (default), \"letter\" (log-likelihood of \" A\"..\" D\" after \"Answer:\"), \"generate\" "
       "(greedy, first non-space character) or \"choice_text\" (each choice's log-likelihood over its bytes)"},
      {"mc_prompt", ParamType::kString,
       "mc_accuracy, choice_text scoring: \"mmlu\" (default: the MMLU header, shots, \"QUESTION\\nAnswer:\" then \" "
       "CHOICE\") or \"continuation\" (no header; the question continued by \" CHOICE\")"},
      {"mc_split", ParamType::kString, "mc_accuracy: the split asked, \"test\" (default) or \"val\""},
      {"shots", ParamType::kInteger, "mc_accuracy: examples from each subject's dev split before a question (>= 0; default 5)"},
      {"limit", ParamType::kInteger,
       "mc_accuracy: at most this many questions per subject; gen_accuracy: the first this many prompts (>= 1)"},
      {"subjects", ParamType::kString, "mc_accuracy: comma-separated subjects to ask (default every subject)"},
      {"max_new_tokens", ParamType::kInteger,
       "gen_accuracy and mc_accuracy's generate mode: the most tokens generated per prompt (>= 1)"},
      {"answer_match", ParamType::kString,
       "gen_accuracy: \"exact\" (default: the first line, normalised, equals the answer) or \"number\" (gsm8k: the "
       "final number of the generation equals the answer's)"},
      {"calib_samples", ParamType::kInteger,
       "kv_calibrate: samples of at most `context` tokens to calibrate on (>= 1; default 128, as reference 002)"},
      {"calib_keys", ParamType::kString,
       "kv_calibrate: \"rotated\" (default: keys after RoPE, as a full int8-calib cache stores them) or "
       "\"unrotated\" (before RoPE, as a streaming cache stores them)"},
      {"llm_int8_threshold", ParamType::kNumber,
       "int8-llm (LLM.int8()): an input column is an outlier, multiplied in float, when some |x| in it is at "
       "least this (> 0; default 6.0, bitsandbytes' llm_int8_threshold)"},
      {"smooth_alpha", ParamType::kNumber,
       "the +smooth (SmoothQuant) formats: migration strength alpha in s = max|X|^alpha / max|W|^(1 - alpha) "
       "(0 to 1; default 0.5)"},
      {"smooth_dataset", ParamType::kString,
       "the +smooth formats: the calibration text (text:FILE, wikitext:FILE, ...; default the job's `dataset`, "
       "else seeded random tokens), read as given"},
      {"smooth_samples", ParamType::kInteger,
       "the +smooth formats: calibration sequences of up to 512 tokens (>= 1; default 8)"},
      {"backend", ParamType::kString,
       "engine backend the measured kinds run on: \"cpu\" (default) or \"cuda\"; decides placement (not the "
       "roofline's datasheet `device`)"},
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
  // A relative path means the grid file's folder and ${VAR} the machine that runs the
  // job: neither can be read here (coordinator/grid/grid_inputs.h checks the first where
  // the grid is loaded, gridbench-job the second), so only the reference's syntax is.
  const std::string ref = v.get<std::string>();
  Result<ModelRef> r = parse_model_ref(ref);
  if (r.ok() && (r->kind == ModelRef::Kind::kHf || r->kind == ModelRef::Kind::kGguf)) {
    const std::string file = r->kind == ModelRef::Kind::kHf ? r->hf_dir : r->gguf_file;
    if (ref.find("${") != std::string::npos || std::filesystem::path(file).is_relative()) return std::nullopt;
  }
  Result<ModelConfig> m = resolve_model(ref);
  if (!m) return m.message();
  return std::nullopt;
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
             name == "stride" || name == "chunks" || name == "threads" || name == "timed_runs" || name == "prefill_chunk" ||
             name == "search_limit" || name == "calib_samples") {
    if (value.get<double>() < 1) return "expected an integer >= 1, got " + value.dump();
  } else if (name == "llm_int8_threshold") {
    const double t = value.get<double>();
    if (!(t > 0) || !std::isfinite(t)) return "expected a threshold > 0, got " + value.dump();
  } else if (name == "smooth_alpha") {
    const double a = value.get<double>();
    if (!(a >= 0 && a <= 1)) return "expected alpha from 0 to 1, got " + value.dump();
  } else if (name == "smooth_samples") {
    if (value.get<double>() < 1) return "expected an integer >= 1, got " + value.dump();
  } else if (name == "smooth_dataset") {
    if (value.get<std::string>().empty()) return "expected a dataset name, got \"\"";
  } else if (name == "seed" || name == "warmup_steps") {
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
    if (Result<ComputeDtype> d = parse_compute_dtype(value.get<std::string>()); !d) return d.message();
  } else if (name == "seconds") {
    const double t = value.get<double>();
    if (!(t >= 0 && t <= 86400)) return "expected seconds from 0 to 86400, got " + value.dump();
  } else if (name == "ppl_mode") {
    if (value != "llama.cpp" && value != "sliding") return "expected \"llama.cpp\" or \"sliding\", got " + value.dump();
  } else if (name == "shape") {
    const std::string v = value.get<std::string>();
    const size_t x = v.find('x');
    auto positive = [](const std::string& t) {
      return !t.empty() && t.size() < 10 && t.find_first_not_of("0123456789") == std::string::npos && std::stoll(t) >= 1;
    };
    if (x == std::string::npos || !positive(v.substr(0, x)) || !positive(v.substr(x + 1)))
      return "expected RxC with R, C >= 1, e.g. \"16x512\", got " + value.dump();
  } else if (name == "tensor") {
    if (value.get<std::string>().empty()) return "expected a tensor name, got \"\"";
  } else if (name == "kv_calibration") {
    if (value.get<std::string>().empty()) return "expected a calibration file path, got \"\"";
  } else if (name == "memory_budget_gib") {
    const double g = value.get<double>();
    if (!(g > 0) || !std::isfinite(g)) return "expected a number of GiB > 0, got " + value.dump();
  } else if (name == "kv_allocation") {
    if (value != "static" && value != "dynamic" && value != "paged")
      return "expected \"static\", \"dynamic\" or \"paged\", got " + value.dump();
  } else if (name == "kv_page_tokens") {
    const int64_t t = value.get<int64_t>();
    if (t < 1 || t > (int64_t{1} << 30) || (t & (t - 1)) != 0)
      return "expected a power of two from 1 to 1073741824, got " + value.dump();
  } else if (name == "kv_cache") {
    if (value != "full" && value != "none") return "expected \"full\" or \"none\", got " + value.dump();
  } else if (name == "calib_keys") {
    if (value != "rotated" && value != "unrotated") return "expected \"rotated\" or \"unrotated\", got " + value.dump();
  } else if (name == "backend") {
    if (value != "cpu" && value != "cuda") return "expected \"cpu\" or \"cuda\", got " + value.dump();
  } else if (name == "mc_mode") {
    if (value != "all" && value != "letter" && value != "generate" && value != "choice_text")
      return "expected \"all\", \"letter\", \"generate\" or \"choice_text\", got " + value.dump();
  } else if (name == "mc_prompt") {
    if (value != "mmlu" && value != "continuation") return "expected \"mmlu\" or \"continuation\", got " + value.dump();
  } else if (name == "mc_split") {
    if (value != "test" && value != "val") return "expected \"test\" or \"val\", got " + value.dump();
  } else if (name == "shots") {
    if (value.get<double>() < 0 || value.get<double>() > 64) return "expected an integer from 0 to 64, got " + value.dump();
  } else if (name == "limit" || name == "max_new_tokens") {
    if (value.get<double>() < 1) return "expected an integer >= 1, got " + value.dump();
  } else if (name == "subjects") {
    const std::string v = value.get<std::string>();
    if (v.empty() || v.front() == ',' || v.back() == ',' || v.find(",,") != std::string::npos)
      return "expected comma-separated subject names, e.g. \"astronomy,virology\", got " + value.dump();
  } else if (name == "answer_match") {
    if (value != "exact" && value != "number") return "expected \"exact\" or \"number\", got " + value.dump();
  } else if (name == "tokenizer") {
    if (value.get<std::string>().empty()) return "expected a tokenizer.json path, got \"\"";
  } else if (name == "dataset") {
    if (value.get<std::string>().empty()) return "expected a dataset name, got \"\"";
  }
  return std::nullopt;
}

}  // namespace gb::engine

// The job-kind registry (engine/jobs/job_kinds.h): every job kind with the
// parameters it takes and what it needs of a machine.
#include "engine/jobs/job_kinds.h"

#include "engine/jobs/dataset.h"
#include "engine/jobs/placement.h"

namespace gb::engine {
namespace {

const std::vector<JobKind>& make_kinds() {
  static const std::vector<JobKind> kinds = {
      {"roofline",
       "reference 003's theory: parameter counts, KV bytes per token, longest context, prefill knees, "
       "decode W and B",
       {"model", "weight_format", "kv_format", "device"},
       {"batch_size", "context", "prompt_tokens", "bits", "count_group_scales", "memory_model", "reserve_gib"},
       /*theory_only=*/true,
       /*requirement=*/{},  // theory: any device, no memory
       {"total_params", "activated_params", "decoder_params", "lm_head_params", "embedding_params", "n_groups",
        "kv_elems_per_token", "kv_bytes_per_token", "weight_bits", "kv_bits", "weight_bytes", "kv_capacity_tokens",
        "max_context", "prefill_rough_knee1", "prefill_rough_knee2", "prefill_exact_knee1", "prefill_exact_knee2",
        "decode_B_ms", "decode_W_tokens_per_ms", "decode_latency_ms", "prefill_rough_ms", "prefill_exact_ms"}},
      {"sleep", "sleeps for `seconds` and reports the time it slept", {"seconds"}, {}, /*theory_only=*/false,
       /*requirement=*/{},  // any device, no memory
       {"slept_s"}},
      {"ppl",
       "perplexity over a text dataset (text:FILE, wikitext:FILE, pg19:DIR or jsonl:FILE:FIELD), llama.cpp chunks or "
       "HF sliding window",
       {"model", "dataset"},
       {"backend", "weight_format", "kv_format", "kv_calibration", "context", "ppl_mode", "stride", "chunks", "batch_size", "threads",
        "tokenizer", "llm_int8_threshold", "smooth_alpha", "smooth_dataset", "smooth_samples", "compute"},
       /*theory_only=*/false,
       engine_job_requirement,
       {"ppl", "ppl_stderr", "nll_mean", "tokens_scored", "dataset_tokens", "windows", "eval_s"}},
      {"memory", "weight bytes, KV bytes per token and peak resident memory after a prefill of `context` tokens",
       {"model"},
       {"backend", "weight_format", "kv_format", "kv_calibration", "context", "batch_size", "threads", "llm_int8_threshold", "smooth_alpha", "smooth_dataset", "smooth_samples",
        "compute"},
       /*theory_only=*/false,
       engine_job_requirement,
       {"weight_bytes", "stored_weight_bytes", "loaded_weight_bytes", "kv_bytes_per_token", "kv_bytes",
        "kv_allocated_bytes", "model_rss_bytes", "peak_rss_bytes", "run_peak_rss_bytes"}},
      {"speed", "prefill time, time to first token, decode time per token (mean, spread, p50/p90/p99) and throughput of a batch, on the job's backend, with or without a KV cache",
       {"model"},
       {"backend", "weight_format", "kv_format", "kv_calibration", "kv_cache", "prompt_tokens", "gen_tokens", "batch_size", "seed",
        "threads", "warmup_steps", "timed_runs", "op_breakdown", "cuda_graphs", "llm_int8_threshold", "smooth_alpha",
        "smooth_dataset", "smooth_samples", "compute"},
       /*theory_only=*/false,
       engine_job_requirement,
       {"prefill_ms", "prefill_min_ms", "prefill_max_ms", "prefill_tokens_per_s", "prefill_samples_per_s", "ttft_ms", "tpot_ms",
        "step_stddev_ms", "step_min_ms", "step_max_ms", "step_p50_ms", "step_p90_ms", "step_p99_ms",
        "seq_tokens_per_s", "decode_tokens_per_s", "decode_weight_gb_s", "timed_steps", "graph_steps", "load_ms",
        "decode_attn_ms", "decode_linear_ms", "decode_norm_ms", "decode_other_ms", "decode_attn_calls",
        "decode_linear_calls", "decode_norm_calls", "generate_s", "loaded_weight_bytes", "model_rss_bytes",
        "peak_rss_bytes", "run_peak_rss_bytes"},
       /*timed=*/true},
      {"quant_error",
       "a weight format's matmul error ||X Wq^T - X W^T||_F / ||X W^T||_F in f64 (reference 004's 4.4): seeded "
       "N(0,1) X [R, C] and W [C, C] of `shape` RxC, or a model's `tensor` as W",
       {"weight_format"},
       {"shape", "model", "tensor", "seed", "threads", "llm_int8_threshold", "smooth_alpha"},
       /*theory_only=*/false,
       quant_error_requirement,
       {"rel_error", "weight_rel_error"}},
      {"decode_curve",
       "the latency of every decode step up to gen_tokens, its fit latency = (n - 1) / W + B, and reference 003's "
       "roofline of the machine at its measured copy bandwidth (theory/actual)",
       {"model"},
       {"backend", "weight_format", "kv_format", "prompt_tokens", "gen_tokens", "batch_size", "seed", "threads",
        "warmup_steps", "cuda_graphs", "compute"},
       /*theory_only=*/false,
       engine_job_requirement,
       {"fit_B_ms", "fit_W_tokens_per_ms", "fit_r2", "measured_bandwidth_gb_s", "theory_B_ms",
        "theory_W_tokens_per_ms", "B_theory_over_actual", "W_theory_over_actual", "mean_step_ms",
        "latency_theory_over_actual", "steps"},
       /*timed=*/true},
      {"context_search",
       "the longest context whose prefill runs within memory_budget_gib (on the CPU), with a static, dynamic or "
       "paged KV allocation, by doubling then bisection",
       {"model"},
       {"backend", "weight_format", "kv_format", "memory_budget_gib", "kv_allocation", "kv_page_tokens", "batch_size",
        "prefill_chunk", "search_limit", "threads"},
       /*theory_only=*/false,
       context_search_requirement,
       {"measured_max_context", "memory_budget_bytes", "search_limited", "fixed_bytes", "peak_bytes_at_max",
        "kv_bytes_per_token", "probes"},
       /*timed=*/true},
      {"mc_accuracy",
       "multiple-choice accuracy on an MMLU CSV directory (mmlu:DIR), k-shot prompts from the dev split as the "
       "original MMLU harness writes them, scored by the answer letter's log-likelihood, by greedy generation and "
       "by each choice's length-normalised log-likelihood; per subject and overall, with standard errors",
       {"model", "dataset"},
       {"backend", "weight_format", "kv_format", "kv_calibration", "mc_mode", "mc_prompt", "mc_split", "shots", "limit",
        "subjects", "max_new_tokens", "threads", "tokenizer", "compute"},
       /*theory_only=*/false,
       engine_job_requirement,
       {"acc_letter", "acc_letter_stderr", "acc_generate", "acc_generate_stderr", "acc_choice_text",
        "acc_choice_text_stderr", "acc_choice_sum", "acc_choice_sum_stderr", "questions", "subjects",
        "truncated_prompts", "eval_s"},
       /*timed=*/false,
       /*keyed_metrics=*/true},  // the accuracies and questions per subject: acc_letter:SUBJECT, ...
      {"gen_accuracy",
       "exact-match accuracy of greedy generations on prompts with answers (jsonl:FILE:PROMPT,ANSWER), the "
       "normalised first line or (answer_match: number) gsm8k's final number; with its standard error",
       {"model", "dataset"},
       {"backend", "weight_format", "kv_format", "kv_calibration", "max_new_tokens", "answer_match", "limit", "threads",
        "tokenizer", "compute"},
       /*theory_only=*/false,
       engine_job_requirement,
       {"accuracy", "accuracy_stderr", "prompts", "no_answer", "generated_tokens", "eval_s"}},
      {"kv_calibrate",
       "reference 002's offline int8 KV calibration: the min and max of every layer's and KV head's keys (rotated "
       "or unrotated, calib_keys) and values over calib_samples samples of `context` tokens of a text dataset, "
       "written as the calibration file int8-calib reads (kv_calibration)",
       {"model", "dataset"},
       {"backend", "weight_format", "context", "calib_samples", "calib_keys", "threads", "tokenizer"},
       /*theory_only=*/false,
       engine_job_requirement,
       {"samples", "tokens", "num_layers", "num_kv_heads", "k_absmax", "v_absmax", "calibration_file", "eval_s"}},
  };
  return kinds;
}

}  // namespace

const std::vector<JobKind>& job_kinds() { return make_kinds(); }

const JobKind* find_job_kind(std::string_view name) {
  for (const auto& k : job_kinds())
    if (k.name == name) return &k;
  return nullptr;
}

bool kind_reports(const JobKind& kind, std::string_view metric) {
  for (const auto& m : kind.metrics)
    if (m == metric) return true;
  if (const size_t colon = metric.find(':'); kind.keyed_metrics && colon != std::string_view::npos && colon > 0 &&
                                             colon + 1 < metric.size()) {
    const std::string_view name = metric.substr(0, colon);
    for (const auto& m : kind.metrics)
      if (m == name) return true;
  }
  return false;
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
  if (auto d = params.find("dataset"); d != params.end())
    if (Result<DatasetSpec> spec = parse_dataset_spec(d->get<std::string>()); spec.ok())
      if (auto problem = dataset_kind_mismatch(k->name, *spec)) return Error{"dataset: " + *problem};
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

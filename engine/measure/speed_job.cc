// The `speed` kind: prefill time (and time to first token), decode time per output
// token and throughput of a batch, after untimed warm-up steps, over one or more
// timed runs, with the spread and percentiles of the decode step times. With
// `kv_cache: none` nothing is cached between steps: every new token recomputes the
// whole sequence (reference 000's "naive" decoding). With `op_breakdown: true` the
// decode steps' ops are timed by category (attention, linear, norms, the rest:
// reference 001's "Avg Attn"); the timing wraps each op, so that mode's figures
// include its small overhead. The memory columns of reference 000 come with it: the
// loaded weights, the resident memory with the model alone, the job's peak and the
// peak of the runs alone (after loading: 000's "memory during inference").
#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/measure/backends/op_timer_backend.h"
#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"
#include "engine/measure/stats/sample_stats.h"
#include "engine/model/sampler.h"

namespace gb::engine {
namespace {

struct PassTimes {
  double prefill_ms = 0;  // the prompt's forward pass
  double ttft_ms = 0;     // prefill plus choosing every sequence's first token
  std::vector<double> step_ms;  // each decode step (every sequence one token)
  OpTotals decode_ops;          // with a timer: the ops of the decode steps, summed
};

// One pass: every sequence of the batch from an empty cache through its prompt,
// then `gen` greedy decode steps. Without a cache (`recompute`), each step resets
// the cache and feeds the whole sequence so far.
Result<PassTimes> run_pass(Model& model, KvCache& cache, const std::vector<std::vector<int32_t>>& prompts,
                           int64_t gen, bool recompute, OpTimerBackend* timer,
                           const std::function<void(int64_t)>& on_step) {
  const int64_t batch = static_cast<int64_t>(prompts.size());
  std::vector<std::vector<int32_t>> seqs = prompts;
  for (int64_t b = 0; b < batch; ++b) cache.reset(static_cast<int>(b));
  std::vector<SequenceStep> steps;
  for (int64_t b = 0; b < batch; ++b) steps.push_back({static_cast<int>(b), seqs[static_cast<size_t>(b)]});
  PassTimes t;
  auto t0 = Clock::now();
  if (Status s = model.forward_kept(steps, cache, LogitsMode::kLast); !s.ok()) return s.error();
  t.prefill_ms = ms_since(t0);
  // Greedy, reduced in the backend: only the ids come back.
  std::vector<int32_t> next(static_cast<size_t>(batch));
  if (Status s = model.argmax(next); !s.ok()) return s.error();
  t.ttft_ms = ms_since(t0);
  for (int64_t i = 0; i < gen; ++i) {
    steps.clear();
    for (int64_t b = 0; b < batch; ++b) {
      auto& seq = seqs[static_cast<size_t>(b)];
      seq.push_back(next[static_cast<size_t>(b)]);
      if (recompute) cache.reset(static_cast<int>(b));
      steps.push_back({static_cast<int>(b), recompute ? std::span<const int32_t>(seq)
                                                      : std::span<const int32_t>(&seq.back(), 1)});
    }
    if (timer) timer->reset();
    t0 = Clock::now();
    if (Status s = model.forward_kept(steps, cache, LogitsMode::kLast); !s.ok()) return s.error();
    if (Status s = model.argmax(next); !s.ok()) return s.error();
    t.step_ms.push_back(ms_since(t0));
    if (timer)
      for (int k = 0; k < kOpCategories; ++k) {
        t.decode_ops.ms[k] += timer->totals().ms[k];
        t.decode_ops.calls[k] += timer->totals().calls[k];
      }
    if (on_step) on_step(i);
  }
  return t;
}

}  // namespace

Result<JobOutput> run_speed_job(const Json& params, const ProgressFn& progress) {
  // The op breakdown times every op of the decode steps (OpTimerBackend).
  const bool breakdown = params.value("op_breakdown", false);
  OpTimerBackend* timer = nullptr;
  BackendWrapper wrap;
  if (breakdown)
    wrap = [&timer](Backend& inner) {
      auto t = std::make_unique<OpTimerBackend>(inner);
      timer = t.get();
      return std::unique_ptr<Backend>(std::move(t));
    };
  Result<EngineSession> e = open_engine_session(params, wrap);
  if (!e) return e.error();
  const double model_rss = current_rss_bytes();  // the loaded model, before any cache or activation
  reset_run_peak_rss();
  const ModelConfig& c = e->model->config();
  const int64_t prompt_len = int_param(params, "prompt_tokens", 128);
  const int64_t gen = int_param(params, "gen_tokens", 32);
  const int64_t batch = int_param(params, "batch_size", 1);
  const int64_t warmup = int_param(params, "warmup_steps", 1);
  const int64_t runs = int_param(params, "timed_runs", 1);
  const bool recompute = str_param(params, "kv_cache", "full") == "none";
  KvCacheOptions kv = e->kv;
  if (recompute && kv.window_tokens > 0)
    return Error{"kv_cache none recomputes the whole sequence: it takes no streaming kv_format ('" + e->kv_format +
                 "')"};
  Result<std::unique_ptr<KvCache>> cache = e->model->make_cache(kv, static_cast<int>(batch));
  if (!cache) return cache.error();
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < batch; ++b)
    prompts.push_back(random_tokens(prompt_len, c.vocab_size, static_cast<uint64_t>(int_param(params, "seed", 0) + b)));

  // Warm-up: a prefill and `warmup` decode steps, untimed (caches, page faults,
  // the thread pool's first wake-up).
  if (warmup > 0) {
    Result<PassTimes> w = run_pass(*e->model, **cache, prompts, warmup, recompute, nullptr, nullptr);
    if (!w) return w.error();
  }
  std::vector<double> prefill, ttft, steps, whole;
  OpTotals ops;
  std::vector<double> curve_sum(static_cast<size_t>(gen), 0.0);
  const int64_t launches_before = e->model->recorded_steps().launches();
  for (int64_t r = 0; r < runs; ++r) {
    auto on_step = [&](int64_t i) {
      if (progress)
        progress(static_cast<double>(r * gen + i + 1) / static_cast<double>(runs * std::max<int64_t>(gen, 1)),
                 "run " + std::to_string(r + 1) + "/" + std::to_string(runs) + ", decode " + std::to_string(i + 1) +
                     "/" + std::to_string(gen));
    };
    Result<PassTimes> t = run_pass(*e->model, **cache, prompts, gen, recompute, timer, on_step);
    if (!t) return t.error();
    prefill.push_back(t->prefill_ms);
    ttft.push_back(t->ttft_ms);
    double sum = t->ttft_ms;
    for (double ms : t->step_ms) sum += ms;
    whole.push_back(sum);
    for (size_t i = 0; i < t->step_ms.size(); ++i) curve_sum[i] += t->step_ms[i];
    steps.insert(steps.end(), t->step_ms.begin(), t->step_ms.end());
    for (int k = 0; k < kOpCategories; ++k) {
      ops.ms[k] += t->decode_ops.ms[k];
      ops.calls[k] += t->decode_ops.calls[k];
    }
  }
  const SampleStats pre = sample_stats(prefill), first = sample_stats(ttft), step = sample_stats(steps);
  const double tpot = step.mean;

  log_recording_failure(*e);
  JobOutput out;
  auto& m = out.metrics;
  m.push_back(value_metric("prefill_ms", pre.mean, "ms"));
  m.push_back(value_metric("prefill_min_ms", pre.min, "ms"));
  m.push_back(value_metric("prefill_max_ms", pre.max, "ms"));
  m.push_back(value_metric("prefill_tokens_per_s", static_cast<double>(batch * prompt_len) / (pre.mean / 1000.0),
                           "tokens/s"));
  // Whole prompts per second (reference 004's "Prefill (samples/s)").
  m.push_back(value_metric("prefill_samples_per_s", static_cast<double>(batch) / (pre.mean / 1000.0), "samples/s"));
  m.push_back(value_metric("ttft_ms", first.mean, "ms"));
  if (step.n > 0) {
    m.push_back(value_metric("tpot_ms", tpot, "ms"));
    m.push_back(value_metric("step_stddev_ms", step.stddev, "ms"));
    m.push_back(value_metric("step_min_ms", step.min, "ms"));
    m.push_back(value_metric("step_max_ms", step.max, "ms"));
    m.push_back(value_metric("step_p50_ms", step.p50, "ms"));
    m.push_back(value_metric("step_p90_ms", step.p90, "ms"));
    m.push_back(value_metric("step_p99_ms", step.p99, "ms"));
  }
  if (tpot > 0) {
    // One sequence's tokens per second, and the batch's (the throughput).
    m.push_back(value_metric("seq_tokens_per_s", 1000.0 / tpot, "tokens/s"));
    m.push_back(value_metric("decode_tokens_per_s", static_cast<double>(batch) * 1000.0 / tpot, "tokens/s"));
    // Weights streamed per decode step over the step time: the bandwidth the decode
    // achieved (a lower bound on what the memory system delivers).
    m.push_back(value_metric("decode_weight_gb_s",
                             static_cast<double>(e->model->weight_bytes()) / (tpot / 1000.0) / 1e9, "GB/s"));
  }
  m.push_back(value_metric("timed_steps", static_cast<double>(step.n), "steps"));
  // Of them, the steps launched from a recorded CUDA graph (Model::recorded_steps).
  m.push_back(value_metric(
      "graph_steps", static_cast<double>(e->model->recorded_steps().launches() - launches_before), "steps"));
  // One run, prompt to last token (reference 000's "inference time"), and the
  // memory of reference 000's table.
  m.push_back(value_metric("generate_s", sample_stats(whole).mean / 1000.0, "s"));
  m.push_back(value_metric("loaded_weight_bytes", static_cast<double>(e->model->weight_bytes()), "B"));
  m.push_back(value_metric("model_rss_bytes", model_rss, "B"));
  m.push_back(value_metric("peak_rss_bytes", peak_rss_bytes(), "B"));
  m.push_back(value_metric("run_peak_rss_bytes", run_peak_rss_bytes(), "B"));
  if (breakdown && step.n > 0) {
    // Per decode step: each category's time and calls; "other" is the rest of the
    // step (the other ops and the host's work), so the four sum to tpot_ms.
    const double n = static_cast<double>(step.n);
    const double attn = ops.ms[0] / n, linear = ops.ms[1] / n, norm = ops.ms[2] / n;
    m.push_back(value_metric("decode_attn_ms", attn, "ms"));
    m.push_back(value_metric("decode_linear_ms", linear, "ms"));
    m.push_back(value_metric("decode_norm_ms", norm, "ms"));
    m.push_back(value_metric("decode_other_ms", tpot - attn - linear - norm, "ms"));
    m.push_back(value_metric("decode_attn_calls", static_cast<double>(ops.calls[0]) / n, "calls"));
    m.push_back(value_metric("decode_linear_calls", static_cast<double>(ops.calls[1]) / n, "calls"));
    m.push_back(value_metric("decode_norm_calls", static_cast<double>(ops.calls[2]) / n, "calls"));
  }
  m.push_back(value_metric("load_ms", e->load_ms, "ms"));
  // Each step's time at its context (prompt + tokens so far), the mean over runs.
  Series curve{"decode_step_ms", "tokens", "ms", {}};
  for (int64_t i = 0; i < gen; ++i)
    curve.points.push_back(
        {static_cast<double>(prompt_len + i + 1), curve_sum[static_cast<size_t>(i)] / static_cast<double>(runs)});
  out.series.push_back(std::move(curve));
  out.device = session_device_json(*e);
  return out;
}

}  // namespace gb::engine

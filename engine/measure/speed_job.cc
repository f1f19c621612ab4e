// The `speed` kind: prefill time, decode time per token and throughput of a batch.
#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"
#include "engine/model/sampler.h"

namespace gb::engine {

Result<JobOutput> run_speed_job(const Json& params, const ProgressFn& progress) {
  Result<EngineSession> e = open_engine_session(params);
  if (!e) return e.error();
  const ModelConfig& c = e->model->config();
  const int64_t prompt_len = int_param(params, "prompt_tokens", 128);
  const int64_t gen = int_param(params, "gen_tokens", 32);
  const int64_t batch = int_param(params, "batch_size", 1);
  Result<std::unique_ptr<KvCache>> cache = e->model->make_cache(e->kv, static_cast<int>(batch));
  if (!cache) return cache.error();
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < batch; ++b)
    prompts.push_back(random_tokens(prompt_len, c.vocab_size, static_cast<uint64_t>(int_param(params, "seed", 0) + b)));
  std::vector<SequenceStep> steps;
  for (int64_t b = 0; b < batch; ++b) steps.push_back({static_cast<int>(b), prompts[static_cast<size_t>(b)]});
  std::vector<float> logits;
  auto t0 = Clock::now();
  if (Status s = e->model->forward(steps, **cache, LogitsMode::kLast, &logits); !s.ok()) return s.error();
  const double prefill_ms = ms_since(t0);
  if (progress) progress(0.1, "prefill done");

  // Greedy decode, every sequence one token per step.
  Series curve{"decode_step_ms", "tokens", "ms", {}};
  std::vector<int32_t> next(static_cast<size_t>(batch));
  double decode_ms = 0;
  for (int64_t i = 0; i < gen; ++i) {
    steps.clear();
    for (int64_t b = 0; b < batch; ++b) {
      next[static_cast<size_t>(b)] =
          argmax(std::span<const float>(logits).subspan(static_cast<size_t>(b * c.vocab_size),
                                                            static_cast<size_t>(c.vocab_size)));
      steps.push_back({static_cast<int>(b), std::span<const int32_t>(&next[static_cast<size_t>(b)], 1)});
    }
    t0 = Clock::now();
    if (Status s = e->model->forward(steps, **cache, LogitsMode::kLast, &logits); !s.ok()) return s.error();
    const double ms = ms_since(t0);
    decode_ms += ms;
    curve.points.push_back({static_cast<double>(prompt_len + i + 1), ms});
    if (progress) progress(0.1 + 0.9 * static_cast<double>(i + 1) / static_cast<double>(gen), "decoding");
  }
  const double tpot = gen > 0 ? decode_ms / static_cast<double>(gen) : 0;

  JobOutput out;
  out.metrics.push_back(value_metric("cpu_prefill_ms", prefill_ms, "ms"));
  out.metrics.push_back(value_metric("cpu_prefill_tokens_per_s",
                              static_cast<double>(batch * prompt_len) / (prefill_ms / 1000.0), "tokens/s"));
  out.metrics.push_back(value_metric("cpu_tpot_ms", tpot, "ms"));
  if (tpot > 0)
    out.metrics.push_back(value_metric("cpu_decode_tokens_per_s", static_cast<double>(batch) * 1000.0 / tpot, "tokens/s"));
  // Weights streamed per decode step over the step time: the bandwidth the decode
  // achieved (a lower bound on what the memory system delivers).
  if (tpot > 0)
    out.metrics.push_back(value_metric("cpu_decode_weight_gb_s",
                                static_cast<double>(e->model->weight_bytes()) / (tpot / 1000.0) / 1e9, "GB/s"));
  out.metrics.push_back(value_metric("cpu_load_ms", e->load_ms, "ms"));
  out.series.push_back(std::move(curve));
  out.device = session_device_json(*e);
  return out;
}

}  // namespace gb::engine

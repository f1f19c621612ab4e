// The `memory` kind: weight bytes (as stored and as loaded), KV bytes per token, the
// process's resident memory with the model loaded (the model alone) and its peak
// after a prefill of `context` tokens (the job).
#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"

namespace gb::engine {

Result<JobOutput> run_memory_job(const Json& params, const ProgressFn& progress) {
  Result<EngineSession> e = open_engine_session(params);
  if (!e) return e.error();
  const double model_rss = current_rss_bytes();  // the loaded model, before any cache or activation
  reset_run_peak_rss();
  const ModelConfig& c = e->model->config();
  const int64_t ctx = int_param(params, "context", 512);
  const int64_t batch = int_param(params, "batch_size", 1);
  KvCacheOptions kv = e->kv;
  if (!kv.window_tokens) kv.capacity = ctx;  // static: exactly what the context needs
  Result<std::unique_ptr<KvCache>> cache = e->model->make_cache(kv, static_cast<int>(batch));
  if (!cache) return cache.error();
  const std::vector<int32_t> prompt = random_tokens(ctx, c.vocab_size, 1);
  std::vector<SequenceStep> steps;
  for (int64_t b = 0; b < batch; ++b) steps.push_back({static_cast<int>(b), prompt});
  std::vector<float> logits;
  if (Status s = e->model->forward(steps, **cache, LogitsMode::kLast, &logits); !s.ok()) return s.error();
  if (progress) progress(1.0, "prefilled " + std::to_string(ctx) + " tokens");

  // The format's bits per weight (scales included), or what the file stores.
  Result<LoadOptions> load = load_options(e->weight_format);
  const double weight_bytes = load && load->format
                                  ? format_weight_bytes(c, load->format->effective_bits)
                                  : static_cast<double>(e->weights->parameter_bytes());
  JobOutput out;
  out.metrics.push_back(value_metric("weight_bytes", weight_bytes, "B"));
  out.metrics.push_back(value_metric("stored_weight_bytes", static_cast<double>(e->weights->parameter_bytes()), "B"));
  out.metrics.push_back(value_metric("loaded_weight_bytes", static_cast<double>(e->model->weight_bytes()), "B"));
  out.metrics.push_back(value_metric("kv_bytes_per_token",
                              static_cast<double>(KvCache::bytes_per_token(c, kv.element)), "B"));
  out.metrics.push_back(value_metric("kv_bytes", static_cast<double>((*cache)->used_bytes()), "B"));
  out.metrics.push_back(value_metric("kv_allocated_bytes", static_cast<double>((*cache)->allocated_bytes()), "B"));
  out.metrics.push_back(value_metric("model_rss_bytes", model_rss, "B"));
  out.metrics.push_back(value_metric("peak_rss_bytes", peak_rss_bytes(), "B"));
  // The peak since the model was loaded: the cache and the prefill on top of it.
  out.metrics.push_back(value_metric("run_peak_rss_bytes", run_peak_rss_bytes(), "B"));
  out.device = session_device_json(*e);
  return out;
}

}  // namespace gb::engine

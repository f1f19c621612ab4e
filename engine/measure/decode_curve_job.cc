// The `decode_curve` kind: the latency of every decode step from the prompt up to
// gen_tokens more tokens (reference 003 goes to 10k), as a series; the
// least-squares fit latency = (n - 1) / W + B (engine/measure/stats/decode_fit.h);
// and, beside both, 003's roofline of the device it ran on at the copy bandwidth
// measured there, with theory/actual ratios of B and W. Not here: batch speed
// figures and percentiles (the `speed` kind).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"
#include "engine/measure/stats/decode_fit.h"
#include "engine/model/sampler.h"
#include "engine/spec/model_tensors.h"
#include "engine/theory/roofline.h"
#include "kernels/device_info.h"

namespace gb::engine {

Result<JobOutput> run_decode_curve_job(const Json& params, const ProgressFn& progress) {
  Result<EngineSession> e = open_engine_session(params);
  if (!e) return e.error();
  const ModelConfig& c = e->model->config();
  const int64_t prompt_len = int_param(params, "prompt_tokens", 1);
  const int64_t gen = int_param(params, "gen_tokens", 256);
  const int64_t batch = int_param(params, "batch_size", 1);
  const int64_t warmup = int_param(params, "warmup_steps", 1);
  KvCacheOptions kv = e->kv;
  if (!kv.window_tokens) kv.capacity = prompt_len + std::max(gen, warmup);  // static: no growth inside the curve
  Result<std::unique_ptr<KvCache>> cache = e->model->make_cache(kv, static_cast<int>(batch));
  if (!cache) return cache.error();

  std::vector<std::vector<int32_t>> seqs;
  for (int64_t b = 0; b < batch; ++b)
    seqs.push_back(random_tokens(prompt_len, c.vocab_size, static_cast<uint64_t>(int_param(params, "seed", 0) + b)));
  std::vector<int32_t> next(static_cast<size_t>(batch));
  // Prefill every sequence, then `steps` decode steps; on_step(i, ms) after each.
  auto pass = [&](int64_t steps, const std::function<void(int64_t, double)>& on_step) -> Status {
    std::vector<SequenceStep> batch_steps;
    for (int64_t b = 0; b < batch; ++b) {
      (*cache)->reset(static_cast<int>(b));
      batch_steps.push_back({static_cast<int>(b), std::span<const int32_t>(seqs[static_cast<size_t>(b)])});
    }
    if (Status s = e->model->forward_kept(batch_steps, **cache, LogitsMode::kLast); !s.ok()) return s;
    for (int64_t i = 0; i < steps; ++i) {
      // Greedy, reduced in the backend: only the ids come back.
      if (Status s = e->model->argmax(next); !s.ok()) return s;
      batch_steps.clear();
      for (int64_t b = 0; b < batch; ++b)
        batch_steps.push_back({static_cast<int>(b), std::span<const int32_t>(&next[static_cast<size_t>(b)], 1)});
      const auto t0 = Clock::now();
      if (Status s = e->model->forward_kept(batch_steps, **cache, LogitsMode::kLast); !s.ok()) return s;
      if (on_step) on_step(i, ms_since(t0));
    }
    return Status::Ok();
  };
  if (warmup > 0)
    if (Status s = pass(warmup, nullptr); !s.ok()) return s.error();

  Series curve{"decode_latency", "tokens", "ms", {}};
  const int64_t every = std::max<int64_t>(gen / 100, 1);
  if (Status s = pass(gen,
                      [&](int64_t i, double ms) {
                        // The step that writes token prompt + i + 1 attends that many.
                        curve.points.push_back({static_cast<double>(prompt_len + i + 1), ms});
                        if (progress && (i + 1) % every == 0)
                          progress(static_cast<double>(i + 1) / static_cast<double>(gen),
                                   "decode " + std::to_string(i + 1) + "/" + std::to_string(gen));
                      });
      !s.ok())
    return s.error();
  const DecodeFit fit = fit_decode_latency(curve.points);

  // 003's roofline of this machine: its measured copy bandwidth, the weights and the
  // cache at the bits the engine holds them in.
  const double bandwidth = measured_copy_bandwidth(*e);
  const Json device = session_device_json(*e);
  RooflineSetup setup;
  setup.model = c;
  setup.device = DeviceSpec{device.value("name", "cpu"), device.value("memory_bytes", kernels::host_cpu().memory_bytes),
                            bandwidth, 1.0, "measured copy bandwidth"};
  setup.weight_bits = static_cast<double>(e->model->weight_bytes()) * 8.0 /
                      static_cast<double>(std::max<int64_t>(parameter_count(c), 1));
  setup.kv_bits = static_cast<double>(kv_element_size(kv.element)) * 8.0;
  setup.batch_size = batch;
  setup.kv_capacity = kv.window_tokens > 0 ? kv.sink_tokens + kv.window_tokens : 0;
  const Roofline theory(setup);

  log_recording_failure(*e);
  JobOutput out;
  auto& m = out.metrics;
  m.push_back(value_metric("fit_B_ms", fit.B_ms, "ms"));
  // A slope <= 0 (no cost per cached token measured above the noise): no W, "none".
  if (fit.W_tokens_per_ms > 0)
    m.push_back(value_metric("fit_W_tokens_per_ms", fit.W_tokens_per_ms, "tokens/ms"));
  else
    m.push_back(text_metric("fit_W_tokens_per_ms", "none", "tokens/ms"));
  m.push_back(value_metric("fit_r2", fit.r2, ""));
  m.push_back(value_metric("measured_bandwidth_gb_s", bandwidth / 1e9, "GB/s"));
  m.push_back(value_metric("theory_B_ms", theory.decode_B_ms(), "ms"));
  m.push_back(value_metric("theory_W_tokens_per_ms", theory.decode_W_tokens_per_ms(), "tokens/ms"));
  if (fit.B_ms > 0)
    m.push_back(value_metric("B_theory_over_actual", theory.decode_B_ms() / fit.B_ms, ""));
  else
    m.push_back(text_metric("B_theory_over_actual", "none", ""));
  if (fit.W_tokens_per_ms > 0)
    m.push_back(value_metric("W_theory_over_actual", theory.decode_W_tokens_per_ms() / fit.W_tokens_per_ms, ""));
  else
    m.push_back(text_metric("W_theory_over_actual", "none", ""));
  double sum = 0, theory_sum = 0;
  for (const SeriesPoint& p : curve.points) {
    sum += p.y;
    theory_sum += theory.decode_latency_ms(static_cast<int64_t>(p.x));
  }
  if (!curve.points.empty()) {
    m.push_back(value_metric("mean_step_ms", sum / static_cast<double>(curve.points.size()), "ms"));
    m.push_back(value_metric("latency_theory_over_actual", theory_sum / sum, ""));
  }
  m.push_back(value_metric("steps", static_cast<double>(curve.points.size()), "steps"));
  // The fit and the theory at the measured points' contexts.
  Series fitted{"decode_latency_fit", "tokens", "ms", {}}, roof{"decode_latency_theory", "tokens", "ms", {}};
  for (const SeriesPoint& p : curve.points) {
    fitted.points.push_back({p.x, (p.x - 1) * fit.slope_ms_per_token + fit.B_ms});
    roof.points.push_back({p.x, theory.decode_latency_ms(static_cast<int64_t>(p.x))});
  }
  out.series.push_back(std::move(curve));
  out.series.push_back(std::move(fitted));
  out.series.push_back(std::move(roof));
  out.device = session_device_json(*e);
  out.device["copy_bandwidth_bytes_per_s"] = bandwidth;
  return out;
}

}  // namespace gb::engine

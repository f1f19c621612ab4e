// The `context_search` kind: the longest context whose prefill runs within a
// memory budget, found by running it (reference 003 section 6.3.9), not by an
// up-front estimate. On the CPU the budget is the `memory_budget_gib` parameter,
// enforced by counting the engine's allocations (engine/measure/backends/budget_backend.h),
// so the kernel's OOM killer never judges. The KV cache is allocated statically
// (capacity = the context, up front), dynamically (grown by doubling, the old
// buffer live while it is copied: how 003 6.3.10's dynamic cache behaves) or in
// pages (kv_page_tokens slots at a time, nothing copied), the prefill runs in chunks of prefill_chunk
// tokens per sequence, and the search doubles the context until a prefill fails,
// then bisects to the exact token. Its metric `measured_max_context` stands beside
// the roofline's `max_context`. Not here: the roofline's arithmetic.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/measure/backends/budget_backend.h"
#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"

namespace gb::engine {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

struct Probe {
  bool fits = false;
  uint64_t peak_bytes = 0;  // the engine's peak allocation during the probe
};

}  // namespace

Result<JobOutput> run_context_search_job(const Json& params, const ProgressFn& progress) {
  Result<EngineSession> e = open_engine_session(params);
  if (!e) return e.error();
  const ModelConfig& c = e->model->config();
  if (!params.contains("memory_budget_gib"))
    return Error{"context_search on the cpu backend needs memory_budget_gib (the budget the search must fit in)"};
  const double budget_gib = params.at("memory_budget_gib").get<double>();
  const uint64_t budget = static_cast<uint64_t>(std::floor(budget_gib * kGiB));
  const int64_t batch = int_param(params, "batch_size", 1);
  const int64_t chunk = int_param(params, "prefill_chunk", 256);
  const std::string allocation = str_param(params, "kv_allocation", "static");
  const int64_t page_tokens = int_param(params, "kv_page_tokens", 256);
  if (params.contains("kv_page_tokens") && allocation != "paged")
    return Error{"context_search: kv_page_tokens sizes the pages of kv_allocation \"paged\", not \"" + allocation +
                 "\""};
  int64_t limit = int_param(params, "search_limit", int64_t{1} << 20);
  if (c.learned_positions && c.max_position_embeddings > 0) limit = std::min(limit, c.max_position_embeddings);
  KvCacheOptions kv = e->kv;
  if (kv.window_tokens > 0)
    return Error{"context_search: a streaming kv_format ('" + e->kv_format + "') never grows; give a full cache"};

  // The model again, on a backend that counts against the budget.
  Result<LoadOptions> load = load_options(e->weight_format);
  if (!load) return load.error();
  BudgetBackend budgeted(*e->backend, budget);
  JobOutput out;
  auto& m = out.metrics;
  m.push_back(value_metric("memory_budget_bytes", static_cast<double>(budget), "B"));
  out.device = session_device_json(*e);
  Result<std::unique_ptr<Model>> model = Model::load(*e->weights, budgeted, *load);
  if (!model) {
    if (!budgeted.refused()) return model.error();
    m.push_back(text_metric("measured_max_context", "oom", "tokens"));
    return out;
  }
  e->model.reset();  // the session's own copy: not counted, but not needed either

  const std::vector<int32_t> tokens = random_tokens(std::min<int64_t>(limit, chunk), c.vocab_size, 7);
  // Prefills `ctx` tokens into every sequence of a fresh cache, chunk by chunk.
  auto probe = [&](int64_t ctx) -> Result<Probe> {
    budgeted.reset_peak();
    KvCacheOptions o = kv;
    o.capacity = allocation == "static" ? ctx : 0;
    o.growth = allocation == "dynamic" ? KvGrowth::kDoubling : KvGrowth::kPaged;
    o.page_tokens = page_tokens;
    Result<std::unique_ptr<KvCache>> cache = (*model)->make_cache(o, static_cast<int>(batch));
    Probe p;
    if (!cache) {
      if (!budgeted.refused()) return cache.error();
      p.peak_bytes = budgeted.peak_bytes();
      return p;
    }
    for (int64_t done = 0; done < ctx;) {
      const int64_t n = std::min(chunk, ctx - done);
      std::vector<SequenceStep> steps;
      for (int64_t b = 0; b < batch; ++b)
        steps.push_back({static_cast<int>(b), std::span<const int32_t>(tokens.data(), static_cast<size_t>(n))});
      if (Status s = (*model)->forward_kept(steps, **cache, LogitsMode::kLast); !s.ok()) {
        if (!budgeted.refused()) return s.error();
        p.peak_bytes = budgeted.peak_bytes();
        return p;
      }
      done += n;
    }
    p.fits = true;
    p.peak_bytes = budgeted.peak_bytes();
    return p;
  };

  // Activations grow to the largest step: one chunk first, so that every probe
  // after it starts from the same memory (weights + one chunk's activations).
  Result<Probe> first = probe(std::min(chunk, limit));
  if (!first) return first.error();
  const double fixed = static_cast<double>(budgeted.live_bytes());
  int probes = 1;
  int64_t lo = 0, hi = 0;  // lo runs (0: none known), hi fails (0: none known)
  uint64_t lo_peak = 0;
  if (first->fits) {
    lo = std::min(chunk, limit);
    lo_peak = first->peak_bytes;
  } else {
    hi = std::min(chunk, limit);
  }
  // Doubling until a context fails or the limit runs.
  while (hi == 0 && lo < limit) {
    const int64_t ctx = std::min(lo * 2, limit);
    Result<Probe> p = probe(ctx);
    if (!p) return p.error();
    ++probes;
    if (p->fits) {
      lo = ctx;
      lo_peak = p->peak_bytes;
    } else {
      hi = ctx;
    }
    if (progress) progress(0.5 * static_cast<double>(probes) / 40.0, "doubling: " + std::to_string(ctx) + " tokens");
  }
  // Bisection: lo runs, hi does not.
  while (hi != 0 && hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    Result<Probe> p = probe(mid);
    if (!p) return p.error();
    ++probes;
    if (p->fits) {
      lo = mid;
      lo_peak = p->peak_bytes;
    } else {
      hi = mid;
    }
    if (progress)
      progress(std::min(0.99, 0.5 + 0.5 * static_cast<double>(probes) / 40.0),
               "bisecting: " + std::to_string(lo) + ".." + std::to_string(hi) + " tokens");
  }

  if (lo == 0)
    m.push_back(text_metric("measured_max_context", "oom", "tokens"));
  else
    m.push_back(value_metric("measured_max_context", static_cast<double>(lo), "tokens"));
  m.push_back(value_metric("search_limited", hi == 0 ? 1 : 0, ""));
  m.push_back(value_metric("fixed_bytes", fixed, "B"));
  if (lo > 0) m.push_back(value_metric("peak_bytes_at_max", static_cast<double>(lo_peak), "B"));
  m.push_back(value_metric("kv_bytes_per_token", static_cast<double>(KvCache::bytes_per_token(c, kv.element)), "B"));
  m.push_back(value_metric("probes", probes, ""));
  out.device["memory_budget_bytes"] = budget;
  return out;
}

}  // namespace gb::engine

// Synthetic stored results for the dashboard's tests: a grid of two models x two
// weight formats x two KV formats x three batch sizes, measured (memory, speed,
// ppl) and theory (roofline) jobs, with every value a formula of the parameters so
// that the tests can check what is drawn. Not a measurement of anything.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "coordinator/grid/grid.h"
#include "coordinator/store/job_store.h"
#include "dashboard/plots/plot_data.h"

namespace gb::dash::testing {

using coord::Json;

struct Synthetic {
  coord::Grid grid;
  std::vector<coord::ResultRow> results;
  SeriesByJob series;
  std::vector<coord::StoredJob> jobs;
};

inline const std::vector<std::string>& models() {
  static const std::vector<std::string> m = {"m-small", "m-large"};
  return m;
}
inline double model_scale(const std::string& m) { return m == "m-small" ? 1.0 : 4.0; }
inline double weight_bits(const std::string& wf) { return wf == "f16" ? 16.0 : 4.5; }
inline double kv_bytes(const std::string& kv) { return kv == "f16" ? 2.0 : 1.0; }

// The theory's KV cache bytes, and the measurement: 10% above it.
inline double kv_cache_theory(const std::string& m, const std::string& kv, int batch) {
  return model_scale(m) * kv_bytes(kv) * batch * 1e6;
}
inline double kv_cache_measured(const std::string& m, const std::string& kv, int batch) {
  return 1.1 * kv_cache_theory(m, kv, batch);
}
inline double w_theory(const std::string& m, const std::string& wf) { return 1000 / model_scale(m) * 16 / weight_bits(wf); }
inline double w_measured(const std::string& m, const std::string& wf) { return 0.8 * w_theory(m, wf); }
inline double ppl_of(const std::string& m, const std::string& wf, const std::string& kv) {
  return 10 / model_scale(m) + (wf == "f16" ? 0 : 0.3) + (kv == "f16" ? 0 : 0.05);
}

inline coord::ResultRow result(const std::string& hash, const std::string& kind, const Json& params,
                               const std::string& metric, std::optional<double> value, const std::string& unit,
                               const std::string& text = "") {
  coord::ResultRow r;
  r.hash = hash;
  r.kind = kind;
  r.params = params;
  r.metric = metric;
  r.value = value;
  r.unit = unit;
  r.text = text;
  r.device = kind == "roofline" ? Json{{"name", "rtx4090"}} : Json{{"name", "Test CPU"}, {"kind", "cpu"}};
  r.engine_version = "0.1.0";
  return r;
}

inline Synthetic make_synthetic() {
  Synthetic s;
  coord::Grid& g = s.grid;
  g.name = "synthetic";
  g.source = "tests/synthetic.json";
  g.axis_names = {"model", "weight_format", "kv_format", "batch_size"};
  g.measures = {"roofline", "memory", "speed", "ppl"};
  g.spec = nlohmann::ordered_json{{"name", "synthetic"}, {"description", "synthetic results"}};
  int n = 0;
  auto add_job = [&](const std::string& kind, const Json& params) {
    coord::GridJob j;
    j.hash = kind.substr(0, 3) + std::to_string(n++);
    j.kind = kind;
    j.params = params;
    g.jobs.push_back(j);
    coord::StoredJob sj;
    sj.hash = j.hash;
    sj.kind = kind;
    sj.params = params;
    sj.state = coord::JobState::kSucceeded;
    sj.attempts = 1;
    s.jobs.push_back(sj);
    return j.hash;
  };
  for (const auto& m : models()) {
    for (const std::string wf : {"f16", "int4-g128"}) {
      for (const std::string kv : {"f16", "int8"}) {
        for (int b : {1, 4, 16}) {
          Json p = {{"model", m}, {"weight_format", wf}, {"kv_format", kv}, {"batch_size", b}};
          g.points.push_back(p);
          Json rp = p;
          rp["device"] = "rtx4090";
          std::string h = add_job("roofline", rp);
          s.results.push_back(result(h, "roofline", rp, "kv_cache_bytes", kv_cache_theory(m, kv, b), "B"));
          s.results.push_back(result(h, "roofline", rp, "weight_bits", weight_bits(wf), "bit"));
          s.results.push_back(result(h, "roofline", rp, "decode_W_tokens_per_ms", w_theory(m, wf), "tokens/ms"));
          engine::Series lat{"decode_latency", "tokens", "ms", {}};
          for (int x = 0; x <= 10; ++x) lat.points.push_back({x * 100.0, model_scale(m) * (1 + x * 0.1 * b)});
          s.series[h].push_back(lat);

          h = add_job("memory", p);
          s.results.push_back(result(h, "memory", p, "kv_cache_bytes", kv_cache_measured(m, kv, b), "B"));
          if (b == 1) {
            Json sp = {{"model", m}, {"weight_format", wf}, {"kv_format", kv}, {"batch_size", 1}};
            h = add_job("speed", sp);
            s.results.push_back(result(h, "speed", sp, "decode_W_measured", w_measured(m, wf), "tokens/ms"));
            engine::Series step{"decode_step_ms", "tokens", "ms", {}};
            for (int x = 0; x <= 10; ++x) step.points.push_back({x * 100.0, 1.2 * model_scale(m) * (1 + x * 0.1)});
            s.series[h].push_back(step);
          }
        }
        Json pp = {{"model", m}, {"weight_format", wf}, {"kv_format", kv}, {"dataset", "text:x.txt"}};
        std::string h = add_job("ppl", pp);
        s.results.push_back(result(h, "ppl", pp, "ppl", ppl_of(m, wf, kv), ""));
      }
    }
  }
  return s;
}

}  // namespace gb::dash::testing

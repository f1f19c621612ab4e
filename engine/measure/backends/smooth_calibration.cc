// SmoothQuant's calibration pass (engine/measure/backends/smooth_calibration.h).
#include "engine/measure/backends/smooth_calibration.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/measure/backends/forwarding_backend.h"

namespace gb::engine {
namespace {

// Records, for each linear layer it has been told of, the column absmax of its inputs.
class AbsmaxRecorder final : public ForwardingBackend {
 public:
  explicit AbsmaxRecorder(Backend& inner) : ForwardingBackend(inner) {}

  void watch(const LinearWeights* w) { absmax_[w].assign(static_cast<size_t>(w->in()), 0.0f); }
  const std::vector<float>& absmax(const LinearWeights* w) { return absmax_[w]; }

  void linear(const float* x, int64_t rows, const LinearWeights& w, float* y) override {
    if (auto it = absmax_.find(&w); it != absmax_.end()) {
      std::vector<float>& a = it->second;
      const int64_t in = static_cast<int64_t>(a.size());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < in; ++j) a[static_cast<size_t>(j)] = std::max(a[static_cast<size_t>(j)], std::fabs(x[r * in + j]));
    }
    ForwardingBackend::linear(x, rows, w, y);
  }

 private:
  std::map<const LinearWeights*, std::vector<float>> absmax_;
};

}  // namespace

Result<ActivationAbsmax> calibrate_activation_absmax(WeightSource& weights, Backend& backend,
                                                     const std::vector<std::vector<int32_t>>& samples) {
  if (samples.empty()) return Error{"SmoothQuant calibration: no samples"};
  AbsmaxRecorder rec(backend);
  Result<std::unique_ptr<Model>> m = Model::load(weights, rec);
  if (!m) return m.error();
  const std::vector<const LinearWeights*> linears = (*m)->layer_linears();
  for (const LinearWeights* w : linears) rec.watch(w);
  for (const std::vector<int32_t>& s : samples) {
    if (s.empty()) continue;
    KvCacheOptions kv;
    kv.capacity = static_cast<int64_t>(s.size());
    Result<std::unique_ptr<KvCache>> cache = (*m)->make_cache(kv, 1);
    if (!cache) return cache.error();
    const SequenceStep step{0, s};
    std::vector<float> logits;
    if (Status st = (*m)->forward({&step, 1}, **cache, LogitsMode::kLast, &logits); !st.ok())
      return Error{"SmoothQuant calibration: " + st.message()};
  }
  ActivationAbsmax out;
  out.layers.resize(linears.size() / 4);
  for (size_t i = 0; i < linears.size(); ++i) out.layers[i / 4][i % 4] = rec.absmax(linears[i]);
  return out;
}

}  // namespace gb::engine

// The `kv_calibrate` kind: reference 002's offline int8 KV calibration. The model
// runs over calib_samples samples of a text dataset (002: 128 C4 samples) with an
// f32 cache, and the range of every layer's and KV head's stored keys and values
// is recorded: keys after RoPE (calib_keys "rotated", what a full int8-calib cache
// stores) or before it ("unrotated", a streaming cache). The result is the
// calibration file engine/kv/kv_calibration.h reads (JobOutput::files: gridbench-job
// writes it beside RESULT.json and reports its path as `calibration_file`), and the
// same ranges as series, so that the store keeps them. Not the cache that uses
// them (engine/kv/kv_cache.cc).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "engine/jobs/dataset.h"
#include "engine/measure/engine_session.h"
#include "engine/measure/evals/eval_session.h"
#include "engine/measure/measures.h"
#include "engine/kv/kv_calibration.h"
#include "engine/tokenizer/tokenizer.h"

namespace gb::engine {
namespace {

constexpr const char* kCalibrationFileName = "kv_calibration.json";

// The samples: each document's tokens cut into consecutive pieces of at most
// `context` tokens (pieces of one token dropped), the first `count` of them in
// dataset order. A dataset of one document (text:) gives consecutive windows.
std::vector<std::vector<int32_t>> calibration_samples(const std::vector<Document>& docs, const Tokenizer& tok,
                                                      int64_t context, int64_t count) {
  std::vector<std::vector<int32_t>> out;
  for (const Document& d : docs) {
    const std::vector<int32_t> ids = tok.encode(d.text, false);
    for (size_t b = 0; b + 1 < ids.size() && static_cast<int64_t>(out.size()) < count; b += static_cast<size_t>(context))
      out.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(b),
                       ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), b + static_cast<size_t>(context))));
    if (static_cast<int64_t>(out.size()) >= count) break;
  }
  return out;
}

Series range_series(const char* name, const std::vector<float>& v) {
  Series s{name, "layer x kv_heads + head", "", {}};
  for (size_t i = 0; i < v.size(); ++i) s.points.push_back({static_cast<double>(i), static_cast<double>(v[i])});
  return s;
}

}  // namespace

Result<JobOutput> run_kv_calibrate_job(const Json& params, const ProgressFn& progress) {
  Result<EngineSession> e = open_engine_session(params);
  if (!e) return e.error();
  const ModelConfig& c = e->model->config();
  const std::string dataset = params.at("dataset").get<std::string>();
  Result<DatasetSpec> spec = parse_dataset_spec(dataset);
  if (!spec) return spec.error();
  Result<std::vector<Document>> docs = load_documents(*spec);
  if (!docs) return docs.error();

  std::optional<Tokenizer> own;
  Result<const Tokenizer*> job_tok = eval_tokenizer(params, *e, own);
  if (!job_tok) return job_tok.error();
  const Tokenizer* tok = *job_tok;

  const int64_t ctx = int_param(params, "context", 512);
  const int64_t wanted = int_param(params, "calib_samples", 128);
  const std::string keys = str_param(params, "calib_keys", "rotated");
  const std::vector<std::vector<int32_t>> samples = calibration_samples(*docs, *tok, ctx, wanted);
  if (samples.empty())
    return Error{"dataset " + dataset + " has no sample of two tokens or more to calibrate on"};

  // An f32 cache of the target's policy: full (keys stored rotated) or streaming
  // with a window that holds a whole sample (unrotated, nothing evicted, so every
  // token sits at its own position and the forward pass is the full one).
  KvCacheOptions kv;
  kv.element = KvElement::kF32;
  if (keys == "unrotated") kv.window_tokens = ctx;
  Result<std::unique_ptr<KvCache>> cache = e->model->make_cache(kv, 1);
  if (!cache) return cache.error();

  const int64_t L = c.num_layers, H = c.num_kv_heads, D = c.head_dim;
  const size_t n = static_cast<size_t>(L * H);
  KvCalibration cal;
  cal.model = params.at("model").get<std::string>();
  cal.keys = keys;
  cal.num_layers = L;
  cal.num_kv_heads = H;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  cal.k_min.assign(n, kInf);
  cal.v_min.assign(n, kInf);
  cal.k_max.assign(n, -kInf);
  cal.v_max.assign(n, -kInf);

  int64_t tokens = 0;
  std::vector<float> logits;
  const auto t0 = Clock::now();
  for (size_t i = 0; i < samples.size(); ++i) {
    (*cache)->reset(0);
    const SequenceStep step{0, samples[i]};
    if (Status s = e->model->forward({&step, 1}, **cache, LogitsMode::kLast, &logits); !s.ok()) return s.error();
    tokens += static_cast<int64_t>(samples[i].size());
    for (int64_t l = 0; l < L; ++l)
      for (int which = 0; which < 2; ++which) {
        Result<std::vector<float>> plane = (*cache)->read_plane_f32(0, l, which);
        if (!plane) return plane.error();
        std::vector<float>& mn = which == 0 ? cal.k_min : cal.v_min;
        std::vector<float>& mx = which == 0 ? cal.k_max : cal.v_max;
        for (size_t r = 0; r < plane->size(); r += static_cast<size_t>(H * D))
          for (int64_t h = 0; h < H; ++h) {
            const size_t at = static_cast<size_t>(l * H + h);
            for (int64_t d = 0; d < D; ++d) {
              const float x = (*plane)[r + static_cast<size_t>(h * D + d)];
              mn[at] = std::min(mn[at], x);
              mx[at] = std::max(mx[at], x);
            }
          }
      }
    if (progress)
      progress(static_cast<double>(i + 1) / static_cast<double>(samples.size()),
               std::to_string(i + 1) + "/" + std::to_string(samples.size()) + " samples");
  }
  const double eval_ms = ms_since(t0);
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(cal.k_min[i]) || !std::isfinite(cal.k_max[i]) || !std::isfinite(cal.v_min[i]) ||
        !std::isfinite(cal.v_max[i]))
      return Error{"kv_calibrate: layer " + std::to_string(i / static_cast<size_t>(H)) + " head " +
                   std::to_string(i % static_cast<size_t>(H)) + " has a key or value that is not finite"};

  auto absmax = [](const std::vector<float>& a, const std::vector<float>& b) {
    float m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max({m, std::fabs(a[i]), std::fabs(b[i])});
    return static_cast<double>(m);
  };
  JobOutput out;
  out.metrics.push_back(value_metric("samples", static_cast<double>(samples.size()), ""));
  out.metrics.push_back(value_metric("tokens", static_cast<double>(tokens), "tokens"));
  out.metrics.push_back(value_metric("num_layers", static_cast<double>(L), ""));
  out.metrics.push_back(value_metric("num_kv_heads", static_cast<double>(H), ""));
  out.metrics.push_back(value_metric("k_absmax", absmax(cal.k_min, cal.k_max), ""));
  out.metrics.push_back(value_metric("v_absmax", absmax(cal.v_min, cal.v_max), ""));
  out.metrics.push_back(value_metric("eval_s", eval_ms / 1000.0, "s"));
  out.series = {range_series("k_min", cal.k_min), range_series("k_max", cal.k_max), range_series("v_min", cal.v_min),
                range_series("v_max", cal.v_max)};
  // The file's name here; gridbench-job writes it and puts its absolute path there.
  out.metrics.push_back(text_metric("calibration_file", kCalibrationFileName, "file"));
  out.files.push_back({"calibration_file", kCalibrationFileName, kv_calibration_json(cal).dump(1) + "\n"});
  out.device = session_device_json(*e);
  return out;
}

}  // namespace gb::engine

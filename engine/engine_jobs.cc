#include "engine/engine_jobs.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "engine/dataset.h"
#include "engine/formats.h"
#include "engine/hf_checkpoint.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/weights.h"
#include "kernels/device_info.h"

namespace gb::engine {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

Metric value(std::string name, double v, std::string unit) { return Metric{std::move(name), v, std::move(unit), ""}; }

int64_t int_param(const Json& p, const char* name, int64_t fallback) {
  auto it = p.find(name);
  return it == p.end() ? fallback : it->get<int64_t>();
}
std::string str_param(const Json& p, const char* name, const std::string& fallback) {
  auto it = p.find(name);
  return it == p.end() ? fallback : it->get<std::string>();
}

// A loaded model with its backend, ready to run.
struct Engine {
  std::unique_ptr<WeightSource> weights;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  KvCacheOptions kv;
  std::string weight_format = "f32";
  std::string kv_format = "f32";
  int threads = 0;
  double load_ms = 0;
};

Result<Engine> open_engine(const Json& params) {
  Engine e;
  e.threads = static_cast<int>(int_param(params, "threads", 0));
  e.weight_format = str_param(params, "weight_format", "f32");
  Result<LoadOptions> load = load_options(e.weight_format);
  if (!load) return load.error();
  e.kv_format = str_param(params, "kv_format", "f32");
  Result<KvCacheOptions> kv = kv_cache_options(e.kv_format);
  if (!kv) return kv.error();
  e.kv = *kv;
  const auto t0 = Clock::now();
  Result<std::unique_ptr<WeightSource>> w = open_weights(params.at("model").get<std::string>());
  if (!w) return w.error();
  e.weights = std::move(*w);
  e.backend = make_cpu_backend(e.threads);
  Result<std::unique_ptr<Model>> m = Model::load(*e.weights, *e.backend, *load);
  if (!m) return m.error();
  e.model = std::move(*m);
  e.load_ms = ms_since(t0);
  return e;
}

Json cpu_device_json(const Engine& e) {
  const kernels::DeviceInfo cpu = kernels::host_cpu();
  return Json{{"backend", "cpu"},
              {"kind", "cpu"},
              {"name", cpu.name},
              {"memory_bytes", cpu.memory_bytes},
              {"cores", cpu.cores},
              {"threads", e.threads > 0 ? e.threads : static_cast<int>(std::thread::hardware_concurrency())}};
}

double peak_rss_bytes() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;  // Linux reports KiB
}

// Seeded random prompt tokens (speed and memory measure time and bytes, which
// do not depend on which tokens they are).
std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(g() % static_cast<uint64_t>(vocab));
  return t;
}

// Bytes of the parameters in a weight format of `bits` per weight.
double format_weight_bytes(const ModelConfig& c, double bits) {
  double n = 0;
  for (const ExpectedTensor& t : expected_hf_tensors(c)) n += static_cast<double>(shape_numel(t.shape));
  return n * bits / 8.0;
}

}  // namespace

double token_nll(std::span<const float> logits, int32_t target) {
  double mx = -INFINITY;
  for (float v : logits) mx = std::max(mx, double{v});
  double sum = 0;
  for (float v : logits) sum += std::exp(double{v} - mx);
  return std::log(sum) + mx - double{logits[static_cast<size_t>(target)]};
}

double PplStats::ppl() const { return std::exp(mean_nll()); }

double PplStats::ppl_stderr() const {
  if (count < 2) return 0;
  const double mean = mean_nll();
  const double var = sum2 / static_cast<double>(count) - mean * mean;
  return var > 0 ? ppl() * std::sqrt(var / static_cast<double>(count - 1)) : 0;
}

std::vector<PplWindow> llama_cpp_windows(int64_t n_tokens, int64_t ctx) {
  std::vector<PplWindow> w;
  for (int64_t begin = 0; begin + ctx <= n_tokens; begin += ctx) w.push_back({begin, ctx, ctx / 2, ctx - 1});
  return w;
}

std::vector<PplWindow> sliding_windows(int64_t n_tokens, int64_t ctx, int64_t stride) {
  std::vector<PplWindow> w;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n_tokens; begin += stride) {
    const int64_t end = std::min(begin + ctx, n_tokens);
    const int64_t len = end - begin, trg = end - prev_end;
    // Labels [len - trg, len) are scored; label t is predicted at position t - 1,
    // and label 0 has no prediction.
    w.push_back({begin, len, std::max<int64_t>(len - trg, 1) - 1, len - 1});
    prev_end = end;
    if (end == n_tokens) break;
  }
  return w;
}

Result<JobOutput> run_ppl_job(const Json& params, const ProgressFn& progress) {
  Result<Engine> e = open_engine(params);
  if (!e) return e.error();
  const ModelConfig& c = e->model->config();
  const std::string dataset = params.at("dataset").get<std::string>();
  Result<std::string> text = load_text_dataset(dataset);
  if (!text) return text.error();

  const Tokenizer* tok = e->weights->tokenizer();
  std::optional<Tokenizer> own;
  if (auto it = params.find("tokenizer"); it != params.end()) {
    Result<Tokenizer> t = Tokenizer::from_file(it->get<std::string>());
    if (!t) return t.error();
    own = std::move(*t);
    tok = &*own;
  }
  if (tok == nullptr)
    return Error{"model '" + e->weights->describe() +
                 "' comes without a tokenizer: give one with the `tokenizer` parameter (a tokenizer.json)"};
  if (tok->vocab_size() > c.vocab_size)
    return Error{"tokenizer " + tok->source() + " has " + std::to_string(tok->vocab_size()) +
                 " tokens, more than the model's vocabulary of " + std::to_string(c.vocab_size)};
  const std::vector<int32_t> ids = tok->encode(*text, false);
  const int64_t n = static_cast<int64_t>(ids.size());

  const int64_t ctx = int_param(params, "context", 512);
  const std::string mode = str_param(params, "ppl_mode", "llama.cpp");
  std::vector<PplWindow> windows;
  if (mode == "llama.cpp") {
    windows = llama_cpp_windows(n, ctx);
  } else if (mode == "sliding") {
    windows = sliding_windows(n, ctx, int_param(params, "stride", std::max<int64_t>(ctx / 2, 1)));
  } else {
    return Error{"ppl_mode '" + mode + "': expected \"llama.cpp\" or \"sliding\""};
  }
  if (auto it = params.find("chunks"); it != params.end() && static_cast<int64_t>(windows.size()) > it->get<int64_t>())
    windows.resize(static_cast<size_t>(it->get<int64_t>()));
  if (windows.empty())
    return Error{"dataset " + dataset + " has " + std::to_string(n) + " tokens, fewer than one context of " +
                 std::to_string(ctx)};
  // llama.cpp puts BOS first in every chunk when the model's tokenizer adds one:
  // the token that encoding with special tokens puts before the text.
  std::optional<int32_t> bos;
  if (mode == "llama.cpp") {
    const std::vector<int32_t> with = tok->encode("a", true), without = tok->encode("a", false);
    if (with.size() > without.size() && !with.empty() &&
        std::equal(without.begin(), without.end(), with.begin() + 1))
      bos = with.front();
  }

  const int64_t batch = int_param(params, "batch_size", 1);
  Result<std::unique_ptr<KvCache>> cache = e->model->make_cache(e->kv, static_cast<int>(batch));
  if (!cache) return cache.error();
  PplStats stats;
  const int64_t V = c.vocab_size;
  const auto t0 = Clock::now();
  std::vector<std::vector<int32_t>> inputs(static_cast<size_t>(batch));
  std::vector<float> logits;
  for (size_t w0 = 0; w0 < windows.size(); w0 += static_cast<size_t>(batch)) {
    const size_t w1 = std::min(windows.size(), w0 + static_cast<size_t>(batch));
    std::vector<SequenceStep> steps;
    for (size_t w = w0; w < w1; ++w) {
      const int seq = static_cast<int>(w - w0);
      (*cache)->reset(seq);
      auto& in = inputs[static_cast<size_t>(seq)];
      in.assign(ids.begin() + windows[w].begin, ids.begin() + windows[w].begin + windows[w].length);
      if (bos) in[0] = *bos;
      steps.push_back({seq, in});
    }
    if (Status s = e->model->forward(steps, **cache, LogitsMode::kAll, &logits); !s.ok()) return s.error();
    int64_t row = 0;
    for (size_t w = w0; w < w1; ++w) {
      const PplWindow& win = windows[w];
      for (int64_t j = win.first_scored; j < win.end_scored; ++j)
        stats.add(token_nll(std::span<const float>(logits).subspan(static_cast<size_t>((row + j) * V),
                                                                   static_cast<size_t>(V)),
                            ids[static_cast<size_t>(win.begin + j + 1)]));
      row += win.length;
    }
    if (progress)
      progress(static_cast<double>(w1) / static_cast<double>(windows.size()),
               std::to_string(w1) + "/" + std::to_string(windows.size()) + " windows, ppl " +
                   std::to_string(stats.ppl()));
  }
  const double eval_ms = ms_since(t0);

  JobOutput out;
  out.metrics.push_back(value("ppl", stats.ppl(), ""));
  out.metrics.push_back(value("ppl_stderr", stats.ppl_stderr(), ""));
  out.metrics.push_back(value("nll_mean", stats.mean_nll(), "nats"));
  out.metrics.push_back(value("tokens_scored", static_cast<double>(stats.count), "tokens"));
  out.metrics.push_back(value("dataset_tokens", static_cast<double>(n), "tokens"));
  out.metrics.push_back(value("windows", static_cast<double>(windows.size()), ""));
  out.metrics.push_back(value("cpu_eval_s", eval_ms / 1000.0, "s"));
  out.device = cpu_device_json(*e);
  return out;
}

Result<JobOutput> run_memory_job(const Json& params, const ProgressFn& progress) {
  Result<Engine> e = open_engine(params);
  if (!e) return e.error();
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

  const double bits = e->weight_format == "f32" ? 32 : 16;
  JobOutput out;
  out.metrics.push_back(value("weight_bytes", format_weight_bytes(c, bits), "B"));
  out.metrics.push_back(value("stored_weight_bytes", static_cast<double>(e->weights->parameter_bytes()), "B"));
  out.metrics.push_back(value("loaded_weight_bytes", static_cast<double>(e->model->weight_bytes()), "B"));
  out.metrics.push_back(value("kv_bytes_per_token",
                              static_cast<double>(KvCache::bytes_per_token(c, kv.element)), "B"));
  out.metrics.push_back(value("kv_bytes", static_cast<double>((*cache)->used_bytes()), "B"));
  out.metrics.push_back(value("kv_allocated_bytes", static_cast<double>((*cache)->allocated_bytes()), "B"));
  out.metrics.push_back(value("cpu_peak_rss_bytes", peak_rss_bytes(), "B"));
  out.device = cpu_device_json(*e);
  return out;
}

Result<JobOutput> run_speed_job(const Json& params, const ProgressFn& progress) {
  Result<Engine> e = open_engine(params);
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
  out.metrics.push_back(value("cpu_prefill_ms", prefill_ms, "ms"));
  out.metrics.push_back(value("cpu_prefill_tokens_per_s",
                              static_cast<double>(batch * prompt_len) / (prefill_ms / 1000.0), "tokens/s"));
  out.metrics.push_back(value("cpu_tpot_ms", tpot, "ms"));
  if (tpot > 0)
    out.metrics.push_back(value("cpu_decode_tokens_per_s", static_cast<double>(batch) * 1000.0 / tpot, "tokens/s"));
  // Weights streamed per decode step over the step time: the bandwidth the decode
  // achieved (a lower bound on what the memory system delivers).
  if (tpot > 0)
    out.metrics.push_back(value("cpu_decode_weight_gb_s",
                                static_cast<double>(e->model->weight_bytes()) / (tpot / 1000.0) / 1e9, "GB/s"));
  out.metrics.push_back(value("cpu_load_ms", e->load_ms, "ms"));
  out.series.push_back(std::move(curve));
  out.device = cpu_device_json(*e);
  return out;
}

Requirement engine_job_requirement(const Json& params) {
  Requirement r;
  r.device = "cpu";
  Result<ModelConfig> c = resolve_model(params.at("model").get<std::string>());
  if (!c) return r;
  const double weights = format_weight_bytes(*c, 32);
  const int64_t ctx = int_param(params, "context", 512) + int_param(params, "gen_tokens", 0) +
                      int_param(params, "prompt_tokens", 0);
  const int64_t batch = int_param(params, "batch_size", 1);
  const double kv = static_cast<double>(KvCache::bytes_per_token(*c, KvElement::kF32)) * static_cast<double>(ctx * batch);
  r.memory_bytes = static_cast<int64_t>(weights + kv);
  return r;
}

}  // namespace gb::engine

// The `ppl` kind: perplexity of a model over a text dataset, llama.cpp's way (n_ctx
// chunks, second half of each scored) or Hugging Face's sliding window.
#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/measure/engine_session.h"
#include "engine/measure/evals/eval_session.h"
#include "engine/measure/measures.h"
#include "engine/jobs/dataset.h"
#include "engine/measure/perplexity.h"
#include "engine/tokenizer/tokenizer.h"

namespace gb::engine {

Result<JobOutput> run_ppl_job(const Json& params, const ProgressFn& progress) {
  Result<EngineSession> e = open_engine_session(params);
  if (!e) return e.error();
  const std::string dataset = params.at("dataset").get<std::string>();
  Result<std::string> text = load_text_dataset(dataset);
  if (!text) return text.error();

  std::optional<Tokenizer> own;
  Result<const Tokenizer*> job_tok = eval_tokenizer(params, *e, own);
  if (!job_tok) return job_tok.error();
  const Tokenizer* tok = *job_tok;
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
  const auto t0 = Clock::now();
  std::vector<std::vector<int32_t>> inputs(static_cast<size_t>(batch));
  std::vector<int32_t> targets;
  std::vector<double> lp;
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
    // The scored rows' log-probabilities, reduced in the backend: only they come back
    // (-lp is token_nll's value on the CPU backend, bit for bit).
    if (Status s = e->model->forward_kept(steps, **cache, LogitsMode::kAll); !s.ok()) return s.error();
    targets.assign(static_cast<size_t>(e->model->kept_rows()), -1);
    int64_t row = 0;
    for (size_t w = w0; w < w1; ++w) {
      const PplWindow& win = windows[w];
      for (int64_t j = win.first_scored; j < win.end_scored; ++j)
        targets[static_cast<size_t>(row + j)] = ids[static_cast<size_t>(win.begin + j + 1)];
      row += win.length;
    }
    lp.resize(targets.size());
    if (Status s = e->model->target_log_probs(targets, lp); !s.ok()) return s.error();
    row = 0;
    for (size_t w = w0; w < w1; ++w) {
      const PplWindow& win = windows[w];
      for (int64_t j = win.first_scored; j < win.end_scored; ++j) stats.add(-lp[static_cast<size_t>(row + j)]);
      row += win.length;
    }
    if (progress)
      progress(static_cast<double>(w1) / static_cast<double>(windows.size()),
               std::to_string(w1) + "/" + std::to_string(windows.size()) + " windows, ppl " +
                   std::to_string(stats.ppl()));
  }
  const double eval_ms = ms_since(t0);

  JobOutput out;
  out.metrics.push_back(value_metric("ppl", stats.ppl(), ""));
  out.metrics.push_back(value_metric("ppl_stderr", stats.ppl_stderr(), ""));
  out.metrics.push_back(value_metric("nll_mean", stats.mean_nll(), "nats"));
  out.metrics.push_back(value_metric("tokens_scored", static_cast<double>(stats.count), "tokens"));
  out.metrics.push_back(value_metric("dataset_tokens", static_cast<double>(n), "tokens"));
  out.metrics.push_back(value_metric("windows", static_cast<double>(windows.size()), ""));
  out.metrics.push_back(value_metric("eval_s", eval_ms / 1000.0, "s"));
  out.device = session_device_json(*e);
  return out;
}

}  // namespace gb::engine

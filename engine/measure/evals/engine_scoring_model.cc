// The engine as a ScoringModel, with its prefix reuse (engine/measure/evals/engine_scoring_model.h).
#include "engine/measure/evals/engine_scoring_model.h"

#include <algorithm>
#include <cmath>

namespace gb::engine {
namespace {

// log softmax(logits)[token], in double (as the references compute it).
double token_logprob(std::span<const float> logits, int32_t token) {
  double mx = logits[0];
  for (float v : logits) mx = std::max(mx, static_cast<double>(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  return static_cast<double>(logits[static_cast<size_t>(token)]) - mx - std::log(sum);
}

int32_t argmax_token(std::span<const float> logits) {
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;  // the lowest id on ties, as torch.argmax
  return static_cast<int32_t>(best);
}

}  // namespace

EngineScoringModel::EngineScoringModel(Model& model, const Tokenizer* tokenizer, KvCache& cache)
    : model_(model), tok_(tokenizer), cache_(cache), vocab_(model.config().vocab_size) {
  eos_ = model.config().eos_token_id;
  if (eos_ < 0 && tokenizer != nullptr && tokenizer->eos_id()) eos_ = *tokenizer->eos_id();
  cache_.reset(0);
}

Status EngineScoringModel::forward(std::span<const int32_t> tokens, LogitsMode mode) {
  const SequenceStep step{0, tokens};
  forwarded_ += static_cast<int64_t>(tokens.size());
  return model_.forward(std::span<const SequenceStep>(&step, 1), cache_, mode, &logits_);
}

Result<std::span<const float>> EngineScoringModel::run_to(const std::vector<int32_t>& ids) {
  if (ids.empty()) return Error{"an empty context (no tokens)"};
  size_t common = 0;
  while (common < ids.size() && common < ids_.size() && ids[common] == ids_[common]) ++common;
  if (common == ids.size() && ids.size() == ids_.size() && last_valid_) return std::span<const float>(last_);
  // Keep at most all but the last token: its logits are what the caller needs.
  size_t keep = std::min(common, ids.size() - 1);
  if (keep < ids_.size() && !cache_.truncate(0, static_cast<int64_t>(keep))) {
    cache_.reset(0);
    keep = 0;
  }
  ids_.resize(keep);
  last_valid_ = false;
  if (Status s = forward(std::span<const int32_t>(ids).subspan(keep), LogitsMode::kLast); !s.ok()) {
    cache_.reset(0);
    ids_.clear();
    return s.error();
  }
  ids_ = ids;
  last_.assign(logits_.begin(), logits_.begin() + vocab_);
  last_valid_ = true;
  return std::span<const float>(last_);
}

Result<std::vector<double>> EngineScoringModel::loglikelihoods_ids(
    std::vector<int32_t> context, const std::vector<std::vector<int32_t>>& continuations) {
  size_t longest = 0;
  for (const auto& c : continuations) {
    if (c.empty()) return Error{"a continuation with no tokens"};
    longest = std::max(longest, c.size());
  }
  const int64_t max_pos = model_.config().max_position_embeddings;
  if (max_pos > 0 && static_cast<int64_t>(context.size() + longest) > max_pos) {
    const size_t room = static_cast<size_t>(std::max<int64_t>(1, max_pos - static_cast<int64_t>(longest)));
    if (context.size() > room) {
      context.erase(context.begin(), context.end() - static_cast<std::ptrdiff_t>(room));
      ++truncated_;
    }
  }
  std::vector<double> out;
  for (const auto& c : continuations) {
    Result<std::span<const float>> last = run_to(context);
    if (!last) return last.error();
    double ll = token_logprob(*last, c[0]);
    if (c.size() > 1) {
      const std::vector<float> context_last(last->begin(), last->end());
      const std::span<const int32_t> rest(c.data(), c.size() - 1);  // the last token's logits are not needed
      last_valid_ = false;
      if (Status s = forward(rest, LogitsMode::kAll); !s.ok()) {
        cache_.reset(0);
        ids_.clear();
        return s.error();
      }
      for (size_t t = 1; t < c.size(); ++t)
        ll += token_logprob(std::span<const float>(logits_).subspan((t - 1) * static_cast<size_t>(vocab_),
                                                                    static_cast<size_t>(vocab_)),
                            c[t]);
      // Back to the context for the next choice (its keys and values stay).
      if (cache_.truncate(0, static_cast<int64_t>(context.size()))) {
        last_ = context_last;
      } else {
        ids_.insert(ids_.end(), rest.begin(), rest.end());
        last_.assign(logits_.end() - vocab_, logits_.end());
      }
      last_valid_ = true;
    }
    out.push_back(ll);
  }
  return out;
}

Result<std::vector<double>> EngineScoringModel::loglikelihoods(const std::string& context_in,
                                                               const std::vector<std::string>& continuations) {
  if (tok_ == nullptr) return Error{"the model has no tokenizer"};
  // The context's trailing spaces go to the continuations (lm-evaluation-harness).
  std::string context = context_in;
  const size_t end = context.find_last_not_of(' ');
  const std::string moved = end == std::string::npos ? context : context.substr(end + 1);
  context.resize(context.size() - moved.size());
  const std::vector<int32_t> ctx = tok_->encode(context, true);
  std::vector<std::vector<int32_t>> conts;
  for (const std::string& c : continuations) {
    const std::vector<int32_t> whole = tok_->encode(context + moved + c, true);
    if (whole.size() <= ctx.size())
      return Error{"continuation \"" + c + "\" adds no token after its context"};
    conts.emplace_back(whole.begin() + static_cast<std::ptrdiff_t>(ctx.size()), whole.end());
  }
  return loglikelihoods_ids(ctx, conts);
}

Result<Generation> EngineScoringModel::greedy(const std::string& prompt, int64_t max_new_tokens,
                                              const std::function<bool(const std::string&)>& stop) {
  if (tok_ == nullptr) return Error{"the model has no tokenizer"};
  std::vector<int32_t> ids = tok_->encode(prompt, true);
  const int64_t max_pos = model_.config().max_position_embeddings;
  if (max_pos > 0 && static_cast<int64_t>(ids.size()) + max_new_tokens > max_pos) {
    const size_t room = static_cast<size_t>(std::max<int64_t>(1, max_pos - max_new_tokens));
    if (ids.size() > room) {
      ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(room));
      ++truncated_;
    }
  }
  Result<std::span<const float>> last = run_to(ids);
  if (!last) return last.error();
  Generation g;
  std::vector<int32_t> out;
  std::span<const float> logits = *last;
  while (g.tokens < max_new_tokens) {
    const int32_t t = argmax_token(logits);
    if (t == eos_) break;
    out.push_back(t);
    ++g.tokens;
    ++generated_;
    g.text = tok_->decode(out);
    if ((stop && stop(g.text)) || g.tokens == max_new_tokens) break;
    if (Status s = forward(std::span<const int32_t>(&out.back(), 1), LogitsMode::kLast); !s.ok()) return s.error();
    ids_.push_back(t);
    last_.assign(logits_.begin(), logits_.begin() + vocab_);
    last_valid_ = true;
    logits = last_;
  }
  return g;
}

}  // namespace gb::engine

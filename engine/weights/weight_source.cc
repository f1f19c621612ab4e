#include "engine/weights/weight_source.h"

#include <filesystem>

#include "engine/weights/gguf/gguf_weights.h"
#include "engine/weights/hf/hf_checkpoint.h"
#include "engine/weights/synthetic.h"

namespace gb::engine {
namespace {

constexpr std::string_view kGpt2Prefix = "transformer.";

// hf:DIR as a WeightSource: canonical names are the checkpoint's own, except that
// GPT-2 checkpoints stored without the "transformer." prefix are asked with it.
class HfWeights final : public WeightSource {
 public:
  HfWeights(std::unique_ptr<HfCheckpoint> ckpt, std::optional<Tokenizer> tok)
      : ckpt_(std::move(ckpt)), tok_(std::move(tok)) {
    const auto& params = ckpt_->parameters();
    strip_prefix_ = ckpt_->config().family == Family::kGpt2 && !params.empty() &&
                    !params.front().name.starts_with(kGpt2Prefix);
  }
  const ModelConfig& config() const override { return ckpt_->config(); }
  std::string describe() const override { return "hf:" + ckpt_->dir(); }
  Result<TensorView> tensor(std::string_view name) override {
    if (strip_prefix_ && name.starts_with(kGpt2Prefix)) name.remove_prefix(kGpt2Prefix.size());
    return ckpt_->tensor(name);
  }
  uint64_t parameter_bytes() const override { return ckpt_->parameter_bytes(); }
  // The mapped files' pages leave resident memory (they are read again on use).
  void release_tensors() override {
    for (const auto& f : ckpt_->files()) f->drop_pages();
  }
  const Tokenizer* tokenizer() const override { return tok_ ? &*tok_ : nullptr; }

 private:
  std::unique_ptr<HfCheckpoint> ckpt_;
  std::optional<Tokenizer> tok_;
  bool strip_prefix_ = false;
};

}  // namespace

Result<std::unique_ptr<WeightSource>> open_weights(const std::string& model_ref) {
  Result<ModelRef> ref = parse_model_ref(model_ref);
  if (!ref) return ref.error();
  switch (ref->kind) {
    case ModelRef::Kind::kPreset:
      return Error{"model '" + model_ref + "' is a preset without weights: use synthetic:" + model_ref +
                   " for seeded random weights, or hf:DIR / gguf:FILE"};
    case ModelRef::Kind::kSynthetic: {
      ModelConfig c = *find_model_preset(ref->preset);
      c.name = model_ref;
      return open_synthetic_weights(c, ref->seed);
    }
    case ModelRef::Kind::kGguf:
      return open_gguf_weights(ref->gguf_file);
    case ModelRef::Kind::kHf: {
      Result<std::unique_ptr<HfCheckpoint>> ckpt = HfCheckpoint::open(ref->hf_dir);
      if (!ckpt) return ckpt.error();
      std::optional<Tokenizer> tok;
      const std::filesystem::path tj = std::filesystem::path(ref->hf_dir) / "tokenizer.json";
      if (std::filesystem::exists(tj)) {
        Result<Tokenizer> t = Tokenizer::from_file(tj.string());
        if (!t) return t.error();
        tok = std::move(*t);
      }
      return std::unique_ptr<WeightSource>(new HfWeights(std::move(*ckpt), std::move(tok)));
    }
  }
  return Error{"model '" + model_ref + "': unknown kind"};
}

}  // namespace gb::engine

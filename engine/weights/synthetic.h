// Synthetic models (`synthetic:PRESET[@SEED]`): the real architecture of a preset
// (or any ModelConfig) with seeded random F32 weights, so that the forward pass,
// the KV cache and the measured job kinds run at real sizes without a checkpoint.
//
// Every parameter is made lazily, on the first tensor(name) call, from (seed, name)
// alone: element i of tensor NAME is a function of (seed, NAME, i), so the bytes do
// not depend on the order tensors are asked for, nor on the number of threads. The
// generator is counter-based (splitmix64 of key + i, key = hash(seed, NAME)), fast
// (chunks of large tensors are filled on several threads) and stable: the values
// below are part of the format, changing them changes every synthetic result.
//
// Values are approximately Gaussian: the sum of four 16-bit uniforms (Irwin-Hall),
// centred and scaled to exactly mean 0, std 1, so bounded at +-3.46 std (always
// finite). Each tensor has a mean and a std (synthetic_init):
//
//   embeddings (embed_tokens, wte, embed_in) and the output head (lm_head,
//     embed_out, or the tied embedding): std 2/sqrt(H). After the final norm each
//     hidden element is ~1 in size, so a logit is a sum of H terms of std 2/sqrt(H):
//     logits have std ~2 at every position, tied or not (non-degenerate: the
//     softmax is neither uniform nor one-hot; ppl of random text ~ V * e^-2).
//   GPT-2 position table (wpe): std 0.5/sqrt(H), a quarter of the token embedding.
//   input projections (q/k/v, gate/up, fc_in; query_key_value; c_attn, c_fc):
//     std 1/sqrt(fan_in), so that they map a normalised O(1) input to O(1) outputs
//     (attention scores q.k/sqrt(d) of std ~1).
//   output projections (o_proj, down_proj; attention.dense, dense_4h_to_h;
//     attn.c_proj, mlp.c_proj): std 1/sqrt(fan_in * 2 * num_layers), GPT-2's
//     residual scaling, so that the 2L residual additions sum to O(1) and the
//     residual stream stays bounded through every layer.
//   norm weights (RMSNorm/LayerNorm, Qwen3 q_norm/k_norm): mean 1, std 0.02.
//   biases (projections and LayerNorm): mean 0, std 0.02.
//
// fan_in is the input dimension: shape[1] of a torch.nn.Linear [out, in], shape[0]
// of a GPT-2 Conv1D [in, out].
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/weights/hf/hf_checkpoint.h"
#include "engine/spec/model_config.h"
#include "engine/weights/tensor_view.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/weights/weight_source.h"

namespace gb::engine {

// How one synthetic tensor is drawn: mean + stddev * z, z approximately N(0, 1).
struct SyntheticInit {
  enum class Kind { kEmbedding, kPositions, kInputProjection, kOutputProjection, kNormWeight, kBias };
  Kind kind = Kind::kBias;
  float mean = 0.0f;
  float stddev = 0.0f;
};
std::string_view synthetic_init_kind_name(SyntheticInit::Kind k);

// The distribution of parameter `t` (a canonical name and shape of `c`), as the
// table above documents.
SyntheticInit synthetic_init(const ModelConfig& c, const ExpectedTensor& t);

// The generator itself. The per-tensor key, and element i of the standardised
// stream (mean 0, std 1); fill writes mean + stddev * z(i) for i in [begin, begin + n)
// on up to `threads` threads (0: hardware concurrency; small ranges use one).
uint64_t synthetic_tensor_key(uint64_t seed, std::string_view name);
float synthetic_standard_value(uint64_t key, uint64_t i);
void synthetic_fill(uint64_t key, float mean, float stddev, uint64_t begin, uint64_t n, float* out, unsigned threads = 0);

class SyntheticWeights final : public WeightSource {
 public:
  // Checks the config (positive sizes, heads a multiple of kv heads, a position
  // table for GPT-2, sizes that fit in memory arithmetic) and lists the parameters;
  // generates nothing.
  static Result<std::unique_ptr<SyntheticWeights>> open(const ModelConfig& config, uint64_t seed);

  const ModelConfig& config() const override { return config_; }
  // "synthetic:PRESET@SEED" (the seed always written).
  std::string describe() const override;
  // Generates the tensor on first use. The tied output head (lm_head.weight /
  // embed_out.weight when the config ties) is the embedding matrix, the same view.
  // An unknown name is an error that names it.
  Result<TensorView> tensor(std::string_view name) override;
  // 4 bytes per parameter (a tied head once), from the config alone.
  uint64_t parameter_bytes() const override { return parameter_bytes_; }
  // Frees every generated tensor; a later tensor() call generates it again (the
  // same bytes).
  void release_tensors() override;
  // Every parameter (the tied head as the embedding): its key, mean and stddev.
  std::optional<SyntheticDraw> synthetic_draw(std::string_view name) const override;
  // A byte-level tokenizer of the model's vocab size (Tokenizer::byte_level), built
  // on first use. Null when the vocab is below 256 (one id per byte is impossible)
  // or above 2^31 - 1.
  const Tokenizer* tokenizer() const override;

  uint64_t seed() const { return seed_; }
  // Every parameter (expected_hf_tensors(config), "transformer." GPT-2 names), in
  // model order; the tied head is not listed. Cheap: nothing is generated.
  const std::vector<ExpectedTensor>& parameters() const { return parameters_; }
  // The init of a listed parameter (or of the tied head); nullopt for other names.
  std::optional<SyntheticInit> init_of(std::string_view name) const;
  // Bytes generated so far (what tensor() calls have cost in memory).
  uint64_t generated_bytes() const { return generated_bytes_; }
  // Bytes tensor() has generated since open, released tensors included: what the
  // host drew (Model::load makes the rest in the backend's memory: fill_synthetic,
  // quantize_synthetic).
  uint64_t total_generated_bytes() const { return total_generated_bytes_; }

 private:
  SyntheticWeights() = default;
  struct FreeDeleter {
    void operator()(float* p) const;
  };
  struct Entry {
    size_t index = 0;  // into parameters_
    SyntheticInit init;
    std::unique_ptr<float, FreeDeleter> data;  // null until generated
  };
  ModelConfig config_;
  uint64_t seed_ = 0;
  std::vector<ExpectedTensor> parameters_;
  std::unordered_map<std::string, Entry> entries_;
  std::string embed_name_, tied_head_name_;  // tied_head_name_ empty when untied
  uint64_t parameter_bytes_ = 0;
  uint64_t generated_bytes_ = 0;
  uint64_t total_generated_bytes_ = 0;
  mutable std::once_flag tokenizer_once_;
  mutable std::unique_ptr<Tokenizer> tokenizer_;
};

// A synthetic model of `config` with `seed`.
Result<std::unique_ptr<WeightSource>> open_synthetic_weights(const ModelConfig& config, uint64_t seed);
// The same from a reference "synthetic:PRESET[@SEED]" (parse_model_ref; the seed is
// 0 when omitted). The config's name is the reference as written. Other kinds of
// reference are refused.
Result<std::unique_ptr<WeightSource>> open_synthetic_weights(const std::string& model_ref);

}  // namespace gb::engine

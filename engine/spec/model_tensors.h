// The parameter tensors a ModelConfig implies, under their Hugging Face names and
// shapes: what every loader checks a checkpoint against, and what parameter and
// weight-byte counts are summed over.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/spec/model_config.h"

namespace gb::engine {

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};

// Every parameter tensor of `c` under its HF name, in model order. The output head
// is included unless the embeddings are tied. `gpt2_prefix` is "transformer." or "".
std::vector<ExpectedTensor> expected_hf_tensors(const ModelConfig& c, std::string_view gpt2_prefix = "transformer.");

// Elements of every parameter tensor (a tied head counted once).
int64_t parameter_count(const ModelConfig& c);

// The embedding and output-head names of a family ("model.embed_tokens.weight",
// "lm_head.weight"; GPT-2's embedding with `gpt2_prefix`).
struct HfEmbeddingNames {
  std::string embed, head;
};
HfEmbeddingNames hf_embedding_names(Family f, std::string_view gpt2_prefix);

}  // namespace gb::engine

// The ModelConfig a GGUF file's metadata describes (the file's header is
// engine/spec/gguf/gguf_header.h). Reads the header and a few small tensors (rope_freqs,
// GPT-2's head), never the weights: what grid validation and the theory need of a
// gguf:FILE model.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "engine/spec/gguf/gguf_header.h"
#include "engine/spec/model_config.h"

namespace gb::engine {

// Bounds on the sizes GGUF metadata may declare, so that products of them (a
// weight's element count) cannot overflow: widths, heads and layers (and layer
// numbers in tensor names) below 2^24, the vocabulary and the context below 2^31.
inline constexpr int64_t kGgufMaxWidth = int64_t{1} << 24;
inline constexpr int64_t kGgufMaxCount = int64_t{1} << 31;

// The ModelConfig a GGUF file describes: `general.architecture` (llama, qwen2,
// qwen3, gptneox, gpt2) and its `{arch}.*` keys (block_count, embedding_length,
// feed_forward_length, context_length, attention.head_count[_kv], key_length,
// layer_norm[_rms]_epsilon, rope.freq_base, rope.dimension_count, rope.scaling.*),
// the vocabulary (token_embd.weight's rows, which tokenizer.ggml.tokens must
// match), tokenizer.ggml.bos/eos_token_id, and which tensors are stored: biases
// (llama, qwen3, gptneox), an untied output head, and Llama 3.1 rope scaling from
// rope_freqs.weight (see rope_freqs_scaling in gguf.cc). The family switches, and
// the activation (which GGUF does not record), are those model_config_from_hf sets
// for the matching HF model_type by default. name = the file's path (header.where).
// Errors name the file and the key, all problems at once.
Result<ModelConfig> gguf_model_config(const std::string& path);
// From a header parsed out of `file` (the whole file's bytes, which the header's
// offsets index): a few tensors' bytes are read (rope_freqs.weight, GPT-2's head).
Result<ModelConfig> gguf_model_config(const GgufHeader& header, const uint8_t* file);

}  // namespace gb::engine

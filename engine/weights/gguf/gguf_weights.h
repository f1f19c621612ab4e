// GGUF tensors as a WeightSource: llama.cpp's names mapped to Hugging Face's, the
// converter's rearrangements undone, the embedded vocabulary as the tokenizer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <optional>

#include "common/status.h"
#include "engine/spec/model_config.h"
#include "kernels/codecs/packed_matrix.h"
#include "engine/weights/weight_source.h"

namespace gb::engine {

// The Hugging Face name (expected_hf_tensors(config), GPT-2 with "transformer.") of a
// llama.cpp tensor name of `family`, or "" when it is not a parameter of the family.
std::string gguf_to_hf_name(Family family, std::string_view gguf_name);

struct GgufWeightsOptions {};

// The weight codec of a ggml tensor type: F32/F16/BF16 and the block types gridbench
// implements (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K .. Q6_K); nullopt for the others
// (IQ*, TQ*, Q8_1, Q8_K, MXFP4, integer types).
std::optional<kernels::WeightCodec> ggml_weight_codec(uint32_t ggml_type);

// A GGUF file as a WeightSource: every stored tensor is mapped to its canonical HF
// name and checked against gguf_model_config's expected_hf_tensors (name, shape,
// type), the tied head resolving to the embedding. Tensors come out as views of the
// mapping where the layouts agree; where llama.cpp's converter rearranged them the
// rearrangement is undone into an owned buffer, once, in the stored dtype:
//   llama q/k (weight and bias): the converter interleaves the two halves of every
//     head for its "normal" rope; undone so that HF's rotate-half rope applies.
//   gptneox attn_qkv: the converter regroups HF's per-head [q_h, k_h, v_h] rows into
//     [all q, all k, all v]; the per-head order is restored.
//   gpt2 attn_qkv, attn_output, ffn_up, ffn_down weights: stored as nn.Linear
//     [out, in]; transposed back to HF's Conv1D [in, out].
// Not parameters, not an error: `rope_freqs.weight` (Llama 3.1's rope scaling as
// per-frequency factors, which gguf_model_config turns back into the llama3
// rope_scaling parameters, or refuses), and GPT-2's `output.weight` when it is a
// byte copy of token_embd.weight (the converter writes one; the head is tied).
// Anything else unexpected, missing or misshaped is an error naming the tensor and
// the file; so is a tensor of a type gridbench does not implement (named with its
// type), a quantized tensor that is not a matrix, and a quantized GPT-2 Conv1D weight
// (whose transposition back to [in, out] blocks cannot express). Tensors of the
// block types come out packed (TensorView::packed), in their rows of blocks.
// The tokenizer is built from the embedded vocabulary (tokenizer.ggml.model "gpt2",
// byte-level BPE, or "llama", SentencePiece, through gguf_tokenizer_json) when the
// file opens, and a vocabulary it cannot build (an unknown tokenizer.ggml.pre, say)
// fails the open; null for other tokenizer models (WordPiece "bert", Unigram "t5",
// ...) and files without one. Its bos_id()/eos_id() are unset: the ids are in
// config().bos_token_id/eos_token_id.
Result<std::unique_ptr<WeightSource>> open_gguf_weights(const std::string& path,
                                                        const GgufWeightsOptions& options = {});

}  // namespace gb::engine

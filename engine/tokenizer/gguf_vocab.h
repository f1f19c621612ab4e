// A GGUF file's embedded vocabulary (tokenizer.ggml.*) as a Hugging Face
// tokenizer.json document, which engine/tokenizer/tokenizer.h then loads.
#pragma once

#include <string>

#include "common/status.h"
#include "engine/spec/gguf/gguf_header.h"

namespace gb::engine {

// The embedded tokenizer of a GGUF as a Hugging Face tokenizer.json document.
// tokenizer.ggml.model "gpt2" (byte-level BPE): vocab and merges, control and
// user-defined tokens as added tokens, the pre-tokenizer regex chosen by
// tokenizer.ggml.pre (qwen2, llama-bpe/llama3, gpt-2 and the default), a BOS template
// when tokenizer.ggml.add_bos_token is true; no normalizer: llama.cpp applies none.
// tokenizer.ggml.model "llama" (SentencePiece BPE: Llama 2, Mistral, ...): encodes as
// llama.cpp's SPM tokenizer and sentencepiece do: a BPE model with byte fallback whose
// merges are every split of a piece into two pieces, ranked by the piece's score
// (tokenizer.ggml.scores, highest first); a Prepend "▁" (tokenizer.ggml.add_space_prefix,
// default true) and Replace " " -> "▁" normalizer; unknown, control and user-defined
// tokens as added tokens; the unknown token (tokenizer.ggml.unknown_token_id or the
// first of type unknown) for characters without byte tokens; BOS added unless
// tokenizer.ggml.add_bos_token is false; the Replace/ByteFallback/Fuse/Strip decoder.
Result<std::string> gguf_tokenizer_json(const GgufHeader& header);

}  // namespace gb::engine

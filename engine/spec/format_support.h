// Whether the engine can run a model in a weight format and a KV-cache format on a
// backend: the one rule that a grid's validation applies before any job runs
// (coordinator/grid/grid_support.h) and that the engine's load applies again
// (Model::load, Model::make_cache), so that the two never disagree. It reads only
// the model's config and the format rows (engine/spec/formats.h). Not here: whether
// the weights fit in memory, whether a GGUF file's stored q-types may be quantized
// again (the file is needed), a kv_calibration's match (engine/kv/kv_cache.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/spec/formats.h"
#include "engine/spec/model_config.h"

namespace gb::engine {

struct FormatProblem {
  std::string param;  // the job parameter to change: "weight_format", "kv_format" or "compute"
  std::string what;   // e.g. "weight format 'int4-g128': hidden_size 64 is not a multiple of its groups of 128"
};

// Every reason the engine cannot run `model` with `weights` (null: as stored),
// `kv` (null: a full cache) and the linear layers' `compute` dtype on `backend`
// ("cpu" or "cuda"; "cuda:0" reads as "cuda"), one problem each; empty when it can.
// The rules:
//  - activation quantization (W8A8, LLM.int8()) runs on a backend only where
//    activation_quantization_runs_on says so;
//  - a compute dtype other than f32 runs only where compute_dtype_runs_on says so,
//    and not with a format that quantizes or smooths its activations (they have
//    their own activation path);
//  - every linear layer's input width (hidden_size for q/k/v, gate/up and the output
//    head; num_heads x head_dim for the attention output; intermediate_size for the
//    MLP's down projection) fits the format's codes (whole GGUF blocks, an even number
//    of 4-bit codes) and is a whole number of its groups;
//  - a streaming KV cache of a model with learned positions (GPT-2) has at most as
//    many slots (sinks + window) as the model has positions.
// (int4-g32 KV runs on any head_dim: the last group of a head is shorter,
// kernels/codecs/kv_quant.h.)
std::vector<FormatProblem> format_support_problems(const ModelConfig& model, const WeightFormat* weights,
                                                   const KvFormat* kv, std::string_view backend,
                                                   ComputeDtype compute = ComputeDtype::kF32);

// Activation quantization (WeightFormat::activations other than "f32") on `backend`.
// THE ONE PLACE that says where it runs: the CPU backend.
bool activation_quantization_runs_on(std::string_view backend);

// A compute dtype other than f32 (the `compute` parameter) on `backend`. THE ONE
// PLACE that says where it runs: the CPU backend.
bool compute_dtype_runs_on(std::string_view backend);

}  // namespace gb::engine

// The engine's rule for which model x format x backend combinations run
// (engine/spec/format_support.h).
#include "engine/spec/format_support.h"

#include <cstdint>
#include <iterator>

#include "kernels/codecs/packed_matrix.h"

namespace gb::engine {
namespace {

using kernels::WeightCodec;

// Whether `codec` rows carry a scale per group of WeightFormat::block_size (the same
// test as kernels/quantize's check_shape, which the load reaches only after reading
// the weights).
bool grouped(const WeightFormat& f) {
  if (f.codec == WeightCodec::kInt8 || f.codec == WeightCodec::kFp8) return f.codec_layout == kernels::ScaleLayout::kGroup;
  return f.codec == WeightCodec::kInt4 || f.codec == WeightCodec::kNf4 || f.codec == WeightCodec::kFp4;
}

}  // namespace

bool activation_quantization_runs_on(std::string_view backend) {
  // ACTIVATION QUANTIZATION: where W8A8 / LLM.int8() formats run: the CPU backend
  // (kernels/cpu/packed/linear_w8a8.cc, linear_llm_int8.cc); the CUDA kernels do not
  // quantize activations yet.
  return backend == "cpu";
}

bool compute_dtype_runs_on(std::string_view backend) {
  // COMPUTE DTYPE: where a bf16 / f16 compute dtype runs: the CPU backend
  // (kernels/cpu/matmul.cc's linear_range_rounded); the CUDA kernels compute in f32
  // or on their own bf16 tiles, not yet rounded as this parameter says.
  return backend == "cpu";
}

std::vector<FormatProblem> format_support_problems(const ModelConfig& model, const WeightFormat* weights,
                                                   const KvFormat* kv, std::string_view backend,
                                                   ComputeDtype compute) {
  std::vector<FormatProblem> out;
  if (const size_t colon = backend.find(':'); colon != std::string_view::npos) backend = backend.substr(0, colon);
  if (compute != ComputeDtype::kF32) {
    const std::string what = "compute dtype '" + std::string(kernels::compute_dtype_name(compute)) + "'";
    if (!compute_dtype_runs_on(backend))
      out.push_back({"compute", what + " (inputs and weights of the linear layers rounded to it), which the engine "
                                       "does not run on backend " + std::string(backend) + " yet"});
    if (weights != nullptr && ((weights->activations != "f32" && !weights->fake) || weights->smooth))
      out.push_back({"compute", what + " with weight format '" + weights->name + "', which " +
                                    (weights->smooth ? "smooths" : "quantizes") + " its activations (" +
                                    weights->activations + "): the two do not combine; leave compute out"});
  }
  if (weights != nullptr) {
    const std::string fmt = "weight format '" + weights->name + "'";
    if (weights->activations != "f32" && !activation_quantization_runs_on(backend))
      out.push_back({"weight_format", fmt + " quantizes activations (" + weights->activations +
                                          "), which the engine does not run on backend " + std::string(backend) +
                                          " yet"});
    // The input widths of the linear layers the format holds (the embedding table is
    // kept in 16 bits whatever the format).
    const struct {
      int64_t cols;
      std::string what;
    } widths[] = {
        {model.hidden_size, "hidden_size " + std::to_string(model.hidden_size)},
        {model.num_heads * model.head_dim, "num_heads x head_dim " + std::to_string(model.num_heads * model.head_dim)},
        {model.intermediate_size, "intermediate_size " + std::to_string(model.intermediate_size)},
    };
    for (size_t i = 0; i < std::size(widths); ++i) {
      const auto& w = widths[i];
      if (w.cols < 1) continue;  // an invalid config: its own check reports it
      if (i == 1 && w.cols == model.hidden_size) continue;  // the same width, said once
      if (kernels::codec_row_bytes(weights->codec, w.cols) == 0) {
        const kernels::BlockShape b = kernels::ggml_block_shape(weights->codec);
        out.push_back({"weight_format", fmt + ": " + w.what + " is not a multiple of " +
                                            (b.elems ? "its blocks of " + std::to_string(b.elems)
                                                     : std::string("2 (two 4-bit codes per byte)"))});
      } else if (grouped(*weights) && (weights->block_size < 2 || w.cols % weights->block_size != 0)) {
        out.push_back({"weight_format", fmt + ": " + w.what + " is not a multiple of its groups of " +
                                            std::to_string(weights->block_size)});
      }
    }
  }
  if (kv != nullptr && kv->streaming() && model.learned_positions &&
      kv->sink_tokens + kv->window_tokens > model.max_position_embeddings) {
    out.push_back({"kv_format", "KV format '" + kv->name + "': a streaming cache of " +
                                    std::to_string(kv->sink_tokens + kv->window_tokens) + " slots exceeds the model's " +
                                    std::to_string(model.max_position_embeddings) +
                                    " positions (it learns its positions: no more can be encoded)"});
  }
  return out;
}

}  // namespace gb::engine

// A saved quantized model: an hf:DIR whose model.safetensors holds each quantized
// matrix packed as the engine holds it, written by `gridbench quantize` and read
// back by HfCheckpoint (packed, as stored). The layout is documented in
// docs/QUANTIZED_LAYOUT.md; in short, a matrix NAME [rows, cols] in codec C is
//
//   NAME             U8  [rows, row_bytes]  the codes (kernels/codecs/packed_matrix.h)
//   NAME.scales      F32 [rows] (int8/fp8 per row or tensor), F16 [rows, groups]
//                    (int8/fp8 per group, int4), F32 [rows, groups] (nf4/fp4 absmax)
//                    or U8 [rows, groups] (nf4/fp4 absmax codes, double quantization)
//   NAME.zeros       F16 [rows, groups] (int4)
//   NAME.dq_scales,  F32 [ceil(rows * groups / 256)] (nf4/fp4 double quantization)
//   NAME.dq_offsets
//
// (GGUF codecs: the codes alone, rows of blocks), and the safetensors __metadata__
// says which tensors are packed and how ("gridbench.tensors": a JSON object NAME ->
// {codec, cols, scale_layout, per_tensor, group, double_quant}), with the format's
// name, codec and group size and the source model's reference and content digest.
// Everything else (norms, biases, a 16-bit embedding) is an ordinary tensor.
// config.json and the tokenizer files are copied beside it.
//
// Not here: quantizing (kernels/quantize/), what Model::load does with the matrices.
#pragma once

#include <map>
#include <string>

#include "common/status.h"
#include "engine/spec/formats.h"
#include "engine/weights/weight_source.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::engine {

// The metadata keys ("gridbench.layout" marks the file).
inline constexpr const char* kQuantLayoutKey = "gridbench.layout";
inline constexpr const char* kQuantLayoutVersion = "quantized-v1";
inline constexpr const char* kQuantFormatKey = "gridbench.weight_format";
inline constexpr const char* kQuantCodecKey = "gridbench.codec";
inline constexpr const char* kQuantGroupKey = "gridbench.group_size";
inline constexpr const char* kQuantSourceKey = "gridbench.source_model";
inline constexpr const char* kQuantDigestKey = "gridbench.source_digest";
inline constexpr const char* kQuantTensorsKey = "gridbench.tensors";

// One packed matrix as the metadata describes it.
struct PackedTensorInfo {
  kernels::QuantSpec spec;
  int64_t cols = 0;
};

// The packed tensors a file's metadata names, or an error "FILE: __metadata__...:
// what" (an unknown layout version, a codec that is not a weight codec, a field of
// the wrong type). A file without "gridbench.layout" gives an empty map.
Result<std::map<std::string, PackedTensorInfo>> parse_packed_tensors(const std::map<std::string, std::string>& metadata,
                                                                     const std::string& where);

// The companion tensors of a packed matrix NAME, as stored.
inline std::string scales_tensor(const std::string& name) { return name + ".scales"; }
inline std::string zeros_tensor(const std::string& name) { return name + ".zeros"; }
inline std::string dq_scales_tensor(const std::string& name) { return name + ".dq_scales"; }
inline std::string dq_offsets_tensor(const std::string& name) { return name + ".dq_offsets"; }

// Who the saved model came from: its reference and content digest
// (engine/jobs/job_inputs.h input_digest), for the metadata.
struct QuantizedModelIdentity {
  std::string source_model;
  std::string source_digest;
};

// Quantizes `source` (an hf:DIR of a Llama-layout family; GPT-2's Conv1D and
// GPT-NeoX's interleaved qkv are rearranged at load and refused here) in `format`
// as Model::load would (each linear matrix in the format, the embedding in 16 bits,
// bitsandbytes' output head in f16, the rest as stored) and writes it to `out_dir`
// (created; model.safetensors written to a temporary name and renamed, then
// config.json and the tokenizer files copied from `source_dir`). Refuses fake and
// activation-quantizing formats and a directory that already holds weights.
Status write_quantized_checkpoint(WeightSource& source, const std::string& source_dir, const WeightFormat& format,
                                  const QuantizedModelIdentity& identity, const std::string& out_dir);

}  // namespace gb::engine

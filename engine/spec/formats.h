// The format tables: every weight format and KV-cache format is one row, looked up
// by the lower-case name that grid files use. The foundation needs names and bits;
// the quantization work adds block structs and reference codecs to these rows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kernels/codecs/compute_dtype.h"
#include "kernels/codecs/kv_quant.h"
#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels {
struct QuantSpec;  // kernels/quantize/quantize_matrix.h
}  // namespace gb::kernels

namespace gb::engine {

struct WeightFormat {
  std::string name;          // "int8-g128", "nf4-b64-dq", "q4_k", "fake:int8-channel", ...
  double nominal_bits = 16;  // what reference 003's theory uses: 32, 16, 8, 6, 4
  double effective_bits = 16;  // nominal plus scales/zero points/outliers, per weight
  int64_t block_size = 0;      // group or block size; 0 = per tensor or per row / none
  std::string scale_layout;    // "none", "tensor", "row", "group", "block", "superblock"
  bool symmetric = true;
  std::string description;

  // How the weights are stored and computed: the codec (kernels/codecs/) and its
  // options, what the loader quantizes to and the kernels read.
  kernels::WeightCodec codec = kernels::WeightCodec::kF32;
  kernels::ScaleLayout codec_layout = kernels::ScaleLayout::kNone;  // int8/fp8: per row or per group
  bool per_tensor = false;    // int8/fp8: one scale per tensor
  bool double_quant = false;  // nf4/fp4: the absmax values quantized again
  bool fake = false;          // fake:<fmt>: quantized and dequantized at load time, held in bf16
  // The output head kept in f16, as bitsandbytes' formats leave it (nf4, fp4, int8-llm).
  bool head_in_16_bits = false;
  // What happens to the activations of a linear layer: "f32" (none), "int8" or "fp8"
  // (quantized per token at run time: W8A8), "llm.int8" (per token, with outlier
  // feature columns above the threshold kept in f16).
  std::string activations = "f32";
  bool smooth = false;  // SmoothQuant: activations divided by per-channel smoothing factors
};

struct KvFormat {
  std::string name;     // full name as written, e.g. "f16+sink4+win256"
  std::string element;  // "f32", "f16", "bf16", "int8", "fp8", "int4", "int4-g32", "int8-calib"
  kernels::KvElement codec = kernels::KvElement::kF32;  // how the cache stores it (kernels/codecs/kv_quant.h)
  double nominal_bits = 16;
  // With the per-(token, head) or per-group scales and zero points, at head_dim 128
  // (kv_effective_bits gives a model's exact figure).
  double effective_bits = 16;
  std::string description;
  // StreamingLLM policy; both 0 for a full cache.
  int64_t sink_tokens = 0;
  int64_t window_tokens = 0;
  bool streaming() const { return window_tokens > 0; }
};

// Parses a weight format name; the error says what names are accepted.
Result<WeightFormat> parse_weight_format(std::string_view name);

// The quantizer settings of a format's row (codec, scale layout, group, double
// quantization): what the model loader, the quantized-checkpoint writer and
// quant_error quantize a matrix with.
kernels::QuantSpec quant_spec(const WeightFormat& f);
// Parses "ELEM" or "ELEM+sink{S}+win{W}".
Result<KvFormat> parse_kv_format(std::string_view name);

// Bits per cached element with scales and zero points, exactly, for heads of
// head_dim (int8-calib: its per-layer calibration is not counted per token).
double kv_effective_bits(const KvFormat& format, int64_t head_dim);

// The compute dtype of the linear layers (the `compute` job parameter,
// kernels/codecs/compute_dtype.h): "f32" (the default), "bf16" or "f16"; the error
// names the accepted values.
using kernels::ComputeDtype;
Result<ComputeDtype> parse_compute_dtype(std::string_view name);

// Names for --help and error messages.
std::vector<std::string> weight_format_names();
std::vector<std::string> kv_format_names();

}  // namespace gb::engine

// AWQ and GPTQ checkpoints in Hugging Face layout (config.json's quantization_config
// names the method): their packed linear layers read into the engine's int4
// asymmetric per-group codec (kernels/codecs/packed_matrix.h: row o, element i in
// group i / G, x = s (q - z), f16 s and z), exactly.
//
// AWQ (AutoAWQ, version "gemm", zero_point): a Linear [out, in] is
//   qweight int32 [in, out/8]   nibble p of int32 c holds output column 8c + order[p],
//                               order = [0, 2, 4, 6, 1, 3, 5, 7]
//   qzeros  int32 [in/G, out/8] the same packing
//   scales  f16   [in/G, out]
// GPTQ (AutoGPTQ / optimum, checkpoint_format "gptq", i.e. v1):
//   qweight int32 [in/8, out]   input row 8r + k in nibble k of row r
//   qzeros  int32 [groups, out/8] column 8c + k in nibble k, the zero point minus one
//                               (v1: read back as nibble + 1, 1 to 16, as its kernels do)
//   scales  f16   [groups, out]
//   g_idx   int32 [in]          the group of each input row
// With g_idx = i / G (desc_act false, or act-order that happens to be sorted) the
// matrix is int4 in groups of G. With act-order (groups not contiguous rows) int4's
// contiguous groups cannot hold it without permuting the activations, which the
// linear kernels do not do: it is held as its exact dequantized values in f32 (the
// same numbers, 8 times the bytes).
//
// Not here: which tensors a checkpoint must hold (hf_checkpoint.cc), sym/desc_act
// quantizers (only loading).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "engine/weights/hf/safetensors.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::engine {

struct HfQuantConfig {
  enum class Method { kNone, kAwq, kGptq };
  Method method = Method::kNone;
  int64_t group = 0;  // G; GPTQ's -1 (one group per column): 0 here, the row's length
  bool desc_act = false;
  const char* name() const { return method == Method::kAwq ? "awq" : method == Method::kGptq ? "gptq" : "none"; }
};

// config.json's quantization_config (absent or another method: kNone). Refused with
// "FILE: $.quantization_config.KEY: what": bits other than 4, AWQ other than version
// gemm with zero points, GPTQ's checkpoint_format gptq_v2, a group size that is not
// positive or -1.
Result<HfQuantConfig> read_hf_quant_config(const std::string& config_path);

// One packed linear's arrays as stored (g_idx null for AWQ).
struct HfQuantArrays {
  const SafetensorsFile* file = nullptr;
  const SafetensorsEntry* qweight = nullptr;
  const SafetensorsEntry* qzeros = nullptr;
  const SafetensorsEntry* scales = nullptr;
  const SafetensorsEntry* g_idx = nullptr;
};

// The arrays' names of the linear whose weight is BASE.weight.
inline std::string qweight_name(const std::string& base) { return base + ".qweight"; }
inline std::string qzeros_name(const std::string& base) { return base + ".qzeros"; }
inline std::string qscales_name(const std::string& base) { return base + ".scales"; }
inline std::string g_idx_name(const std::string& base) { return base + ".g_idx"; }

// Checks the arrays' dtypes and shapes against a Linear [out, in]; errors name
// `where` and the array.
Status check_hf_quant_arrays(const HfQuantConfig& c, const HfQuantArrays& a, int64_t out, int64_t in,
                             const std::string& where);

// The Linear [out, in] the arrays hold: int4 in groups of G (its codes, scales and
// zeros exactly as stored), or f32 for act-order GPTQ. g_idx values outside the
// groups are an error naming `where`.
Result<std::shared_ptr<kernels::QuantizedMatrix>> unpack_hf_quant(const HfQuantConfig& c, const HfQuantArrays& a,
                                                                   int64_t out, int64_t in, const std::string& where);

}  // namespace gb::engine

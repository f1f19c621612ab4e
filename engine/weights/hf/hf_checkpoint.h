// A Hugging Face model directory (`hf:DIR`): config.json read with
// model_config_from_hf, the weights from model.safetensors or from the shards that
// model.safetensors.index.json names, memory-mapped. Opening checks every tensor's
// name, shape and dtype (F32/F16/BF16) against the config, with the family's HF
// names:
//
//   llama/mistral/internlm, qwen2, qwen3: model.embed_tokens.weight,
//     model.layers.N.{input_layernorm,post_attention_layernorm}.weight,
//     model.layers.N.self_attn.{q,k,v,o}_proj.{weight,bias}, (qwen3) self_attn.{q,k}_norm.weight,
//     model.layers.N.mlp.{gate,up,down}_proj.{weight,bias}, model.norm.weight, lm_head.weight
//   gpt_neox: gpt_neox.embed_in.weight, gpt_neox.layers.N.{input,post_attention}_layernorm.{weight,bias},
//     gpt_neox.layers.N.attention.{query_key_value,dense}.{weight,bias},
//     gpt_neox.layers.N.mlp.{dense_h_to_4h,dense_4h_to_h}.{weight,bias},
//     gpt_neox.final_layer_norm.{weight,bias}, embed_out.weight
//   gpt2: [transformer.]{wte,wpe}.weight, [transformer.]h.N.{ln_1,ln_2}.{weight,bias},
//     [transformer.]h.N.attn.{c_attn,c_proj}.{weight,bias}, [transformer.]h.N.mlp.{c_fc,c_proj}.{weight,bias},
//     [transformer.]ln_f.{weight,bias}, lm_head.weight. Conv1D weights are [in, out].
//     The "transformer." prefix is optional (GPT2Model checkpoints, such as the hub's
//     gpt2, store the names without it), but must be used consistently.
//
// Linear weights are [out, in] (torch.nn.Linear) except GPT-2's Conv1D. With tied
// embeddings the output head (lm_head.weight / embed_out.weight) may be absent (it is
// then the embedding matrix) or present with the embedding's shape. Non-parameter
// buffers that older checkpoints store (rotary_emb.inv_freq, GPT-2's attn.bias and
// attn.masked_bias, GPT-NeoX's attention.bias and attention.masked_bias) are
// accepted and ignored. Anything else missing, unexpected, misshaped or of another
// dtype is an error that names the tensor and its file.
//
// AWQ and GPTQ checkpoints (quantization_config in config.json) hold their linears
// as qweight/qzeros/scales[/g_idx] (engine/weights/hf/awq_gptq.h): each is checked
// by its weight's name and shape and handed out packed in int4.
// A saved quantized model (engine/weights/hf/quantized_checkpoint.h, "gridbench.layout"
// in a file's metadata) holds some matrices packed: each is checked against the
// config by its logical shape [rows, cols], its arrays against its codec, and handed
// out as a packed TensorView with every array (`quantized`).
#pragma once

#include <map>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/spec/model_config.h"
#include "engine/spec/model_tensors.h"
#include "engine/weights/hf/awq_gptq.h"
#include "engine/weights/hf/quantized_checkpoint.h"
#include "engine/weights/hf/safetensors.h"
#include "engine/weights/tensor_view.h"

namespace gb::engine {


// Whether `name` is a non-parameter buffer of `family` that the loader ignores.
bool is_ignored_hf_buffer(Family family, std::string_view name);

struct StoredTensor;

struct HfCheckpointOptions {
  // Scan every tensor for NaN and infinity (reads all the weights once).
  bool check_finite = false;
};

class HfCheckpoint {
 public:
  // Opens and validates DIR. Errors name the file and the tensor.
  static Result<std::unique_ptr<HfCheckpoint>> open(const std::string& dir, const HfCheckpointOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }
  // The safetensors files, in the order they were opened.
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

  // A parameter by HF name; the tied output head resolves to the embedding matrix.
  // An error names the tensor when the checkpoint has no such parameter.
  Result<TensorView> tensor(std::string_view name) const;
  // The file a stored tensor is in ("" when none).
  std::string file_of(std::string_view name) const;
  // The parameter names, in model order (expected_hf_tensors).
  const std::vector<ExpectedTensor>& parameters() const { return expected_; }
  // True when the output head is the embedding matrix (not stored separately).
  bool output_head_tied() const { return head_tied_; }
  // A saved quantized model's metadata (the first file's; empty for other checkpoints).
  const std::map<std::string, std::string>& quantized_metadata() const { return quantized_metadata_; }
  // Bytes of the stored parameters (ignored buffers excluded, a tied head once).
  uint64_t parameter_bytes() const;

 private:
  HfCheckpoint() = default;
  // Reads `f`'s packed matrices (its metadata) into packed_, their arrays' names into
  // *companions; errors name the file and the tensor.
  Status read_packed(const SafetensorsFile& f, std::set<std::string, std::less<>>* companions);
  // An AWQ/GPTQ checkpoint's packed linears (config.json's quantization_config) into
  // hf_packed_, each in *stored under its weight's name and logical shape.
  Status read_awq_gptq(std::map<std::string, StoredTensor, std::less<>>* stored);
  struct Located {
    const SafetensorsFile* file;
    const SafetensorsEntry* entry;
  };
  std::string dir_;
  ModelConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Located, std::less<>> tensors_;  // every stored tensor
  // A saved quantized model's packed matrices: the codes' entry is in tensors_.
  struct Packed {
    PackedTensorInfo info;
    const SafetensorsFile* file = nullptr;
    const SafetensorsEntry* scales = nullptr;
    const SafetensorsEntry* zeros = nullptr;
    const SafetensorsEntry* dq_scales = nullptr;
    const SafetensorsEntry* dq_offsets = nullptr;
  };
  std::map<std::string, Packed, std::less<>> packed_;
  std::map<std::string, std::string> quantized_metadata_;
  HfQuantConfig hf_quant_;
  std::map<std::string, HfQuantArrays, std::less<>> hf_packed_;  // NAME.weight -> its arrays
  std::vector<ExpectedTensor> expected_;
  std::string head_name_, embed_name_;
  bool head_tied_ = false;
};

// Checks a set of stored tensors (name -> entry, with the file each is in) against
// the config; used by HfCheckpoint::open and by tests. On success sets *head_tied.
struct StoredTensor {
  std::string file;
  DType dtype;
  std::vector<int64_t> shape;
};
Status validate_hf_tensors(const ModelConfig& c, const std::map<std::string, StoredTensor, std::less<>>& stored,
                           const std::string& where, std::vector<ExpectedTensor>* expected, bool* head_tied);

}  // namespace gb::engine

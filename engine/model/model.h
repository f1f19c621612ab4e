// Model: a decoder-only transformer of any supported family, its weights in a
// backend's memory, and the forward pass over a batch of sequences that share a
// KvCache.
//
// One forward step takes, for each sequence in the batch, the tokens that follow
// what its cache holds (a whole prompt for prefill, one token for decode; the
// sequences may differ in length). All rows go through every linear layer
// together, attention runs per sequence against that sequence's cache, and the
// logits of the last token of each sequence (or of every token) come back to the
// host.
//
// Loading converts every parameter to f32 (the reference backend computes in
// f32) and fuses what runs together: q, k and v into one projection (GPT-NeoX's
// per-head interleaved query_key_value is reordered to q | k | v, GPT-2's Conv1D
// weights transposed), and the gate and up projections of a gated MLP.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/backend/backend.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/recorded_steps.h"
#include "engine/spec/formats.h"
#include "engine/spec/model_config.h"
#include "engine/weights/weight_source.h"

namespace gb::engine {

struct SequenceStep {
  int seq = 0;                       // index into the cache's sequences
  std::span<const int32_t> tokens;  // at least one
};

enum class LogitsMode { kLast, kAll };

// "as stored" (or an empty name): every matrix in the codec the file stores it in.
inline constexpr std::string_view kAsStored = "as stored";

// SmoothQuant's calibration (engine/model/smooth_calibration.h): per layer, the
// largest |x| seen in each input column of the layer's linear layers.
struct ActivationAbsmax {
  // [layer][qkv, o, up, down][input column]
  std::vector<std::array<std::vector<float>, 4>> layers;
};

struct LoadOptions {
  // The format the matrices are held in (linear layers and the output head; the
  // embedding table in f16 for formats of 16 bits or fewer; norms and biases f32).
  // Unset: as stored: f32/f16/bf16 as the file has them, GGUF q-types as they are.
  std::optional<WeightFormat> format;
  // A matrix the file stores quantized (a GGUF q-type) is refused in another format
  // unless this is set; then it is dequantized and quantized again.
  bool requantize = false;
  // LLM.int8() (int8-llm): |x| at or above this makes an input column an outlier.
  float llm_int8_threshold = kernels::kLlmInt8DefaultThreshold;
  // SmoothQuant (the +smooth formats): the calibration (required by them) and alpha.
  // Each input column j of a layer gets s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
  // (max|W_j| over every output row of the layer; s_j = 1 where either is 0),
  // multiplied into W's column before quantization and divided out of x: folded
  // into the preceding norm's weight (and bias) for q|k|v and gate|up, applied to x
  // at run time (LinearWeights::act_mul) for o_proj and down_proj, which no norm
  // precedes. The output head is not smoothed.
  std::optional<ActivationAbsmax> smooth_absmax;
  double smooth_alpha = 0.5;
  // The decoder's linear layers' compute dtype (the `compute` parameter; bitsandbytes'
  // bnb_4bit_compute_dtype): other than f32, their inputs, dequantized weights,
  // biases and outputs are rounded to it, the sums stay f32. The output head, which
  // bitsandbytes does not quantize, computes in f32.
  ComputeDtype compute = ComputeDtype::kF32;
  // A synthetic model's matrices (the embedding table, the linear layers that need
  // no rearranging, the output head) are made in the backend's memory, never on the
  // host: drawn as f32, f16 or bf16 (Backend::fill_synthetic) or drawn and quantized
  // in the format (Backend::quantize_synthetic; engine/model/synthetic_matrix.h, which
  // says what stays on the host). On a device, a synthetic llama-3-8b loads without
  // its weights passing through host memory. False: drawn on the host like a file's
  // tensors (the same bytes; tests compare).
  bool draw_on_backend = true;
  // Decode steps (one token for each sequence, a full cache, the last logits) are
  // recorded once per batch shape and launched again (Backend::RecordedStep: CUDA
  // graphs) on backends that record; engine/model/recorded_steps.h says when a
  // recording is made again. False: every step's ops are enqueued one by one.
  bool record_decode_steps = true;
};

// The load options of a weight format name ("" or "as stored": unset).
Result<LoadOptions> load_options(std::string_view weight_format);

class Model {
 public:
  // Reads every parameter of `weights` (canonical names) into `backend` memory.
  // Errors name the tensor (NaN weights included).
  static Result<std::unique_ptr<Model>> load(WeightSource& weights, Backend& backend,
                                              const LoadOptions& options = {});
  ~Model();

  const ModelConfig& config() const { return config_; }
  Backend& backend() { return backend_; }
  // Bytes the loaded weights take in the backend (every array of every format).
  uint64_t weight_bytes() const { return weight_bytes_; }
  // The kernels the backend runs for the linear layers and the output head, with
  // the number of matrices of each: "q4_K-q8-avx2 x 97, q6_K-q8-avx2 x 17".
  std::string linear_kernels() const;
  // Every layer's linear layers, four per layer in order q|k|v, o, up (gate|up), down
  // (what SmoothQuant's calibration records the inputs of).
  std::vector<const LinearWeights*> layer_linears() const;

  // A cache for `sequences` sequences of this model (max_tokens set for GPT-2's
  // learned positions).
  Result<std::unique_ptr<KvCache>> make_cache(KvCacheOptions options, int sequences);

  // One step for each sequence in `batch` (distinct seqs). Logits: kLast gives
  // [batch.size(), vocab], kAll [sum of tokens, vocab] in batch order. Streaming
  // caches take steps longer than the window in pieces, one sequence at a time.
  Status forward(std::span<const SequenceStep> batch, KvCache& cache, LogitsMode mode, std::vector<float>* logits);

  // As forward(), but the logits stay in backend memory (the rows forward() would
  // return) for the reductions below, which bring back only ids or scalars: on a
  // device, a few bytes a row instead of the vocabulary's logits. Any forward()
  // discards them.
  Status forward_kept(std::span<const SequenceStep> batch, KvCache& cache, LogitsMode mode);
  int64_t kept_rows() const { return kept_rows_; }
  // Decode steps launched from a recording, recordings made, and why recording
  // stopped if it did (LoadOptions::record_decode_steps).
  const RecordedSteps& recorded_steps() const { return recorded_; }
  // LoadOptions::record_decode_steps after the load (off: the recordings are dropped).
  void set_record_decode_steps(bool on) {
    record_decode_steps_ = on;
    if (!on) recorded_.clear();
  }
  // Of the kept rows (each span kept_rows() long): the argmax ids; tokens drawn with
  // the uniforms u (Sampler::uniform()); log-probabilities of targets (< 0: not scored).
  Status argmax(std::span<int32_t> ids);
  Status sample(const SamplingCut& cut, std::span<const double> u, std::span<int32_t> ids);
  Status target_log_probs(std::span<const int32_t> targets, std::span<double> lp);

 private:
  struct Layer;
  Model(const ModelConfig& c, Backend& b);
  // logits null: they stay in logits_buf_ (forward_kept).
  Status forward_step(std::span<const SequenceStep> batch, KvCache& cache, LogitsMode mode, std::vector<float>* logits);
  // The step's ops, from the embedding to the output head, over the step_* arrays;
  // bound: the caches' views bound to their slots allocated (a recorded step).
  void enqueue_step(std::span<const SequenceStep> batch, KvCache& cache, LogitsMode mode, bool bound);
  Status kept(size_t n, const char* what) const;
  Status ensure_scratch(int64_t rows);

  ModelConfig config_;
  Backend& backend_;
  std::vector<std::unique_ptr<Buffer>> owned_;
  std::vector<Layer> layers_;
  PackedMatrix embed_;
  const float* positions_ = nullptr;  // GPT-2 wpe
  const float* final_w_ = nullptr;
  const float* final_b_ = nullptr;
  LinearWeights head_;
  std::vector<float> inv_freq_;
  int64_t rot_dim_ = 0;
  uint64_t weight_bytes_ = 0;
  // Scratch activations, grown to the largest step seen.
  int64_t scratch_rows_ = 0;
  int64_t kept_rows_ = 0;  // rows of logits_buf_ that forward_kept left
  std::unique_ptr<Buffer> x_, h_, qkv_, attn_, tmp_, mlp_, logits_buf_;
  uint64_t scratch_generation_ = 0;  // changes when the scratch buffers are reallocated
  // The host arrays of the current step (ids, positions, visible lengths, each
  // sequence's first row): members, so that a recorded step finds them where it
  // was recorded.
  std::vector<int32_t> step_ids_;
  std::vector<int64_t> step_positions_, step_visible_, step_row0_;
  bool record_decode_steps_ = true;
  RecordedSteps recorded_;
};

// The RoPE inverse frequencies of `c` (rot_dim / 2 of them), rope scaling applied.
std::vector<float> rope_inv_freq(const ModelConfig& c, int64_t rot_dim);

}  // namespace gb::engine

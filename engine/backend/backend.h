// Backend: where the engine's memory lives and its ops run. The model code
// (engine/model/model.cc) is written once against this interface; the CPU reference
// backend (engine/backend/cpu_backend.cc) implements it with plain loops and threads, and
// a CUDA backend implements the same ops with kernels from kernels/ on a stream.
//
// Conventions, for every op:
//  - Activations are f32, row-major, in the backend's memory (device pointers on a
//    GPU backend). A "row" is one token.
//  - Token ids, positions and other small index arrays are host memory; a device
//    backend copies them itself.
//  - Ops are enqueued in order on the backend's stream; synchronize() waits for
//    them. The CPU backend runs each op to completion before returning.
//  - One dispatch point per op: a new weight format or KV format is a new case in
//    the op that reads it, not a new code path in the model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kernels/codecs/activation_quant.h"
#include "kernels/codecs/compute_dtype.h"
#include "kernels/codecs/kv_cache_view.h"
#include "kernels/codecs/kv_element.h"
#include "kernels/codecs/kv_quant.h"
#include "kernels/codecs/packed_matrix.h"
#include "kernels/codecs/synthetic_quantize.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::engine {

// How a KV cache stores its elements (the element of a KvFormat): the codec's enum
// (kernels/codecs/kv_element.h), which the kernels of every backend read.
using kernels::KvElement;
using kernels::kv_element_size;

// Bytes owned by a backend.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual void* data() = 0;  // backend memory: not dereferenceable on the host for GPU backends
  virtual size_t size() const = 0;
  float* f32() { return static_cast<float*>(data()); }
};

// A weight matrix in any weight format (kernels/codecs/packed_matrix.h), its arrays
// in backend memory.
using kernels::ActivationQuant;
using kernels::PackedMatrix;
using kernels::WeightCodec;

// A linear layer's parameters: y = x W^T + b, W [out, in] in any codec, b [out] f32
// or null, in backend memory. W is one matrix, or several row blocks where a file
// stores the parts of a fused layer (q|k|v) in different codecs: part i gives the
// output features that follow those of parts 0..i-1.
//
// activations: how x is quantized at run time for the parts in int8/fp8 with a scale
// per row (kernels/codecs/activation_quant.h: W8A8 per token, LLM.int8() with
// outlier_threshold); other parts read f32. act_mul: null, or [in] f32 factors x's
// columns are multiplied by first (SmoothQuant's 1 / s where no norm precedes the
// layer to fold them into), in backend memory. compute: the compute dtype
// (kernels/codecs/compute_dtype.h; bitsandbytes' bnb_4bit_compute_dtype): other than
// f32, x, the dequantized weights, the bias and y are rounded to it, the sums stay
// f32 (only with activations kNone and no act_mul: format_support.h's rule).
struct LinearWeights {
  std::vector<PackedMatrix> parts;
  const float* b = nullptr;
  ActivationQuant activations = ActivationQuant::kNone;
  float outlier_threshold = kernels::kLlmInt8DefaultThreshold;
  const float* act_mul = nullptr;
  kernels::ComputeDtype compute = kernels::ComputeDtype::kF32;
  int64_t out() const {
    int64_t n = 0;
    for (const PackedMatrix& p : parts) n += p.rows;
    return n;
  }
  int64_t in() const { return parts.empty() ? 0 : parts.front().cols; }
};

// One layer's view of one sequence's KV cache, as attention reads it: the kernels'
// struct (kernels/codecs/kv_cache_view.h), so that every backend passes it on as it is.
// Slots [0, len) are valid; each slot holds n_kv_heads x head_dim keys and values in
// `element`: f32/f16/bf16 elements, or a quantized element packed per slot with its
// scales (kernels/codecs/kv_quant.h). With keys_unrotated the keys are stored
// before RoPE (streaming policy) and attention rotates key slot s with position s.
// int8-calib: k_calib / v_calib are the layer's [kv_heads][2] (scale, zero point).
using KvLayerView = kernels::KvCacheView;

// RoPE tables: inv_freq[i] for i < rot_dim / 2 (scaling already applied).
struct RopeParams {
  int64_t rot_dim = 0;  // 0: no rotary embedding
  const float* inv_freq = nullptr;  // host memory, rot_dim / 2 values
};

// How sample_rows cuts and scales a row (engine/model/sampler.h's SamplingOptions
// without the seed: the caller draws the uniforms).
struct SamplingCut {
  double temperature = 1;  // > 0
  int64_t top_k = 0;       // 0: all tokens
  double top_p = 1;        // in (0, 1]; 1: all tokens
};

// What an allocation holds, for backends that account their memory by category
// (the CUDA backend's weights / KV cache / workspace figures). The model sets it
// around its allocations (MemoryUseScope); a backend that does not account ignores it.
enum class MemoryUse : uint8_t { kWeights, kKvCache, kWorkspace };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;  // "cpu", "cuda:0"

  // The category the following alloc() calls count under (default: workspace).
  virtual void set_memory_use(MemoryUse) {}
  virtual MemoryUse memory_use() const { return MemoryUse::kWorkspace; }

  // ---- memory ----
  virtual Result<std::unique_ptr<Buffer>> alloc(size_t bytes) = 0;
  virtual void upload(Buffer& dst, size_t offset, const void* src, size_t bytes) = 0;
  virtual void download(const Buffer& src, size_t offset, void* dst, size_t bytes) = 0;
  // Copies within or between buffers of this backend; ranges may overlap.
  virtual void copy(Buffer& dst, size_t dst_offset, const Buffer& src, size_t src_offset, size_t bytes) = 0;
  virtual void synchronize() = 0;
  // The first error an op or memory call met since the last call, and clears it: ops
  // return nothing, so a device backend records a failed launch or copy here (the
  // CPU backend has none). The model checks it after every forward step.
  virtual Status take_error() { return Status::Ok(); }

  // ---- recorded steps (CUDA graphs) ----
  // A backend that can record a sequence of ops once and launch it again (a decode
  // step): between begin_recording() and end_recording() the ops are recorded, not
  // run. What a recorded step reads is fixed when it is recorded: its buffers, the
  // views' pointers and lengths, and the addresses of the host arrays it was given
  // (ids, positions, visible lengths), whose contents every launch reads again. So
  // the caller keeps those arrays where they were and rewrites them before each
  // launch. launch() returns false, and runs nothing, where a buffer the backend
  // owns (a workspace) has moved since the recording: record again. A failure while
  // recording (an op that cannot be recorded, a workspace that would have to grow)
  // is end_recording()'s error, not take_error()'s; nothing ran, the caller runs the
  // step as usual. Default: nothing is recorded.
  class RecordedStep {
   public:
    virtual ~RecordedStep() = default;
  };
  virtual bool can_record() const { return false; }
  virtual void begin_recording() {}
  virtual Result<std::unique_ptr<RecordedStep>> end_recording() {
    return Error{std::string(name()) + ": this backend records no steps"};
  }
  virtual bool launch(RecordedStep& step) {
    (void)step;
    return false;
  }

  // A linear layer's matrix, just put in this backend's memory by upload(): the
  // backend may rearrange its codes in place into the layout its kernels read
  // fastest (the same bytes in another order) and say so in w (the CPU backend
  // interleaves q8_0/q4_0 rows by 8 for its q8 kernels: PackedMatrix::interleave).
  // Only for matrices that linear() alone reads (not an embedding table).
  virtual void arrange_linear(PackedMatrix& w) { (void)w; }

  // Synthetic weights drawn in this backend's memory, with no host copy: elements
  // [begin, begin + n) of the synthetic tensor of `key` (mean, stddev; the generator
  // of engine/weights/synthetic.h, bit for bit) written at dst + offset as f32, f16
  // or bf16 (codec; rounded as the host quantizer rounds). False, and nothing
  // written, where this backend does not draw them (then the loader draws them on
  // the host); a device's failure is reported by take_error().
  virtual bool fill_synthetic(Buffer& dst, size_t offset, uint64_t key, float mean, float stddev, uint64_t begin,
                              int64_t n, kernels::WeightCodec codec) {
    (void)dst, (void)offset, (void)key, (void)mean, (void)stddev, (void)begin, (void)n, (void)codec;
    return false;
  }

  // Synthetic matrices quantized where they are drawn, in this backend's memory:
  // the [rows, cols] tensor of `key` (mean, stddev; element r * cols + c) in `spec`,
  // the bytes kernels/quantize/quantize_matrix.h's quantizer makes of the host
  // generator's matrix, written to out's arrays (this backend's memory, sized as the
  // codec stores them; nf4/fp4's absmax as f32, before any double quantization,
  // which is the caller's). quantizes_synthetic says where it applies (default:
  // nowhere; then the loader quantizes on the host); a device's failure is reported
  // by take_error().
  virtual bool quantizes_synthetic(const kernels::QuantSpec& spec, int64_t cols) const {
    (void)spec, (void)cols;
    return false;
  }
  virtual void quantize_synthetic(uint64_t key, float mean, float stddev, const kernels::QuantSpec& spec, int64_t rows,
                                  int64_t cols, const kernels::QuantizedArraysOut& out) {
    (void)key, (void)mean, (void)stddev, (void)spec, (void)rows, (void)cols, (void)out;
  }

  // ---- ops ----
  // out[r, :] = table[ids[r], :] as f32 (dequantized); ids host memory, each in
  // [0, table.rows); out [n, table.cols].
  virtual void embedding(const int32_t* ids, int64_t n, const PackedMatrix& table, float* out) = 0;
  // x[r, :] += table[positions[r], :] (GPT-2's learned positions).
  virtual void add_rows(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) = 0;
  // out = RMSNorm(x) * w over rows of `dim`.
  virtual void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out) = 0;
  // out = LayerNorm(x) * w + b over rows of `dim`.
  virtual void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                          float* out) = 0;
  // The residual add fused into the norm after it: x += y, then out = RMSNorm(x) * w
  // (add_rms_norm) or LayerNorm(x) * w + b (add_layer_norm) over rows of `dim`;
  // x, y [rows, dim], out distinct from both. Equal to add() and then the norm.
  virtual void add_rms_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, float eps,
                            float* out) = 0;
  virtual void add_layer_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, const float* b,
                              float eps, float* out) = 0;
  // y[rows, out] = x[rows, in] W^T + b.
  virtual void linear(const float* x, int64_t rows, const LinearWeights& w, float* y) = 0;
  // The kernel linear() runs for a matrix, for reports ("q4_0-q8-avx2": its codec,
  // the activations' precision where they are quantized, the ISA).
  virtual std::string linear_kernel(const PackedMatrix& w) const = 0;
  // Rotate-half RoPE in place on the first rot_dim dims of each head:
  // x [rows, heads, head_dim] at row stride `row_stride` floats, row r at positions[r].
  virtual void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim,
                    const int64_t* positions, const RopeParams& rope) = 0;
  // Writes rows [0, n) of k and v ([n, kv_heads * head_dim] at row strides) into the
  // cache, row r into slot visible[r] - 1, converting to the cache format. visible:
  // host, n values, each >= 1: the visible lengths attention() takes for the same rows
  // (a new token is the last slot it sees), so that every slot a step writes is in an
  // index array, none in a scalar (what a recorded step, a CUDA graph, needs).
  virtual void kv_store(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                        const KvLayerView& cache, const int64_t* visible) = 0;
  // Causal attention of n query rows (q [n, heads, head_dim] at row stride
  // q_stride) against cache slots; query row r sees slots [0, visible[r]).
  // out [n, heads * head_dim]. GQA: query head h reads kv head h / (heads / kv_heads).
  virtual void attention(const float* q, int64_t n, int64_t q_stride, int64_t heads, int64_t kv_heads,
                         int64_t head_dim, const KvLayerView& cache, const int64_t* visible, const RopeParams& rope,
                         float scale, float* out) = 0;
  // x[i] += y[i] for i < n.
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // Gated MLP: out[r, i] = silu(gu[r, i]) * gu[r, inner + i], gu [rows, 2 * inner].
  virtual void silu_mul(const float* gu, int64_t rows, int64_t inner, float* out) = 0;
  // In place GELU (exact or tanh approximation).
  virtual void gelu(float* x, int64_t n, bool tanh_approximation) = 0;

  // ---- logits reductions ----
  // logits [rows, vocab] f32 in backend memory; the results are host memory, written
  // when the call returns (each waits for the ops before it, as download() does), so
  // that only ids or scalars leave a device. kernels/cpu/logits.h is the reference.
  // ids[r]: the lowest id of row r's largest logit.
  virtual void argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids) = 0;
  // ids[r]: a token drawn from row r as engine/model/sampler.h draws it, u[r] in
  // [0, 1) (host) the uniform of that draw.
  virtual void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SamplingCut& cut,
                           const double* u, int32_t* ids) = 0;
  // lp[r] = log softmax(logits[r, :])[targets[r]] in f64; targets host, each < vocab;
  // a negative target marks a row not scored (lp[r] = 0).
  virtual void target_log_probs(const float* logits, int64_t rows, int64_t vocab, const int32_t* targets,
                                double* lp) = 0;
};

// Sets a backend's memory category for a scope and restores the previous one.
class MemoryUseScope {
 public:
  MemoryUseScope(Backend& b, MemoryUse use) : b_(b), previous_(b.memory_use()) { b_.set_memory_use(use); }
  ~MemoryUseScope() { b_.set_memory_use(previous_); }
  MemoryUseScope(const MemoryUseScope&) = delete;
  MemoryUseScope& operator=(const MemoryUseScope&) = delete;

 private:
  Backend& b_;
  MemoryUse previous_;
};

}  // namespace gb::engine

#include "engine/model/model.h"

// The forward pass (engine/model/model.h): the model loaded once into a backend, each
// matrix in its weight format, and one batched step per call.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "engine/model/synthetic_matrix.h"
#include "engine/spec/format_support.h"
#include "engine/weights/hf/hf_checkpoint.h"
#include "kernels/quantize/quantize_matrix.h"
#include "kernels/quantize/smoothquant.h"

namespace gb::engine {

struct Model::Layer {
  const float* n1w = nullptr;
  const float* n1b = nullptr;
  const float* n2w = nullptr;
  const float* n2b = nullptr;
  const float* q_norm = nullptr;  // Qwen3
  const float* k_norm = nullptr;
  LinearWeights qkv;  // rows: q (heads x head_dim) | k | v
  LinearWeights o;
  LinearWeights up;  // gated: gate | up, 2 x intermediate rows
  LinearWeights down;
};

Model::Model(const ModelConfig& c, Backend& b) : config_(c), backend_(b) {}
Model::~Model() = default;

std::string Model::linear_kernels() const {
  std::vector<std::pair<std::string, int>> counts;  // in order of first use
  auto count = [&](const LinearWeights& lw) {
    for (const PackedMatrix& p : lw.parts) {
      const std::string k = lw.compute == ComputeDtype::kF32
                                ? backend_.linear_kernel(p)
                                : kernels::codec_name(p.codec) + std::string("-dequant-") +
                                      kernels::compute_dtype_name(lw.compute);
      auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == k; });
      if (it == counts.end()) counts.emplace_back(k, 1);
      else ++it->second;
    }
  };
  for (const Layer& l : layers_) {
    count(l.qkv);
    count(l.o);
    count(l.up);
    count(l.down);
  }
  count(head_);
  std::string out;
  for (const auto& [k, n] : counts) out += (out.empty() ? "" : ", ") + k + " x " + std::to_string(n);
  return out;
}

std::vector<const LinearWeights*> Model::layer_linears() const {
  std::vector<const LinearWeights*> v;
  for (const Layer& l : layers_) v.insert(v.end(), {&l.qkv, &l.o, &l.up, &l.down});
  return v;
}

std::vector<float> rope_inv_freq(const ModelConfig& c, int64_t rot_dim) {
  std::vector<float> f(static_cast<size_t>(rot_dim / 2));
  for (int64_t i = 0; i < rot_dim / 2; ++i) {
    double inv = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(rot_dim));
    if (c.rope_scaling == ModelConfig::RopeScaling::kLinear) {
      inv /= c.rope_factor;
    } else if (c.rope_scaling == ModelConfig::RopeScaling::kLlama3) {
      // Llama 3.1: long wavelengths scaled down by the factor, short ones kept,
      // a smooth blend between.
      const double orig = static_cast<double>(c.rope_original_max_positions);
      const double low_wavelen = orig / c.rope_low_freq_factor;
      const double high_wavelen = orig / c.rope_high_freq_factor;
      const double wavelen = 2 * std::numbers::pi / inv;
      if (wavelen > low_wavelen) {
        inv /= c.rope_factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (orig / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
        inv = (1 - smooth) * inv / c.rope_factor + smooth * inv;
      }
    }
    f[static_cast<size_t>(i)] = static_cast<float>(inv);
  }
  return f;
}

Result<LoadOptions> load_options(std::string_view weight_format) {
  LoadOptions o;
  if (weight_format.empty() || weight_format == kAsStored) return o;
  Result<WeightFormat> f = parse_weight_format(weight_format);
  if (!f) return f.error();
  o.format = std::move(*f);
  return o;
}

namespace {

using kernels::QuantizedMatrix;
using kernels::QuantSpec;

bool same_spec(const QuantSpec& a, const QuantSpec& b) {
  return a.codec == b.codec && a.layout == b.layout && a.per_tensor == b.per_tensor && a.group == b.group &&
         a.double_quant == b.double_quant;
}

// The codec a float tensor is kept in when no format is asked for.
kernels::WeightCodec stored_codec(DType d) {
  return d == DType::kF16 ? kernels::WeightCodec::kF16
         : d == DType::kBF16 ? kernels::WeightCodec::kBF16 : kernels::WeightCodec::kF32;
}

// Reads parameters from a WeightSource, checks shape and finiteness, and puts them
// in backend memory: norms, biases and positions as f32, matrices in the weight
// format (or as stored).
class Loader {
 public:
  Loader(WeightSource& w, Backend& b, std::vector<std::unique_ptr<Buffer>>& owned, uint64_t& bytes,
         const LoadOptions& options)
      : w_(w), b_(b), owned_(owned), bytes_(bytes), options_(options) {}

  Result<TensorView> view(const std::string& name, const std::vector<int64_t>& shape) {
    Result<TensorView> t = w_.tensor(name);
    if (!t) return t.error();
    if (!t->packed && !is_float_weight_dtype(t->dtype))
      return Error{w_.describe() + ": tensor " + name + " is " + std::string(dtype_name(t->dtype)) +
                   ", expected F32, F16 or BF16"};
    if (t->shape != shape)
      return Error{w_.describe() + ": tensor " + name + " has shape " + shape_string(t->shape) + ", expected " +
                   shape_string(shape)};
    return t;
  }

  // A tensor as f32 (dequantized when stored packed), checked finite.
  Result<std::vector<float>> host(const std::string& name, const std::vector<int64_t>& shape) {
    Result<TensorView> t = view(name, shape);
    if (!t) return t.error();
    std::vector<float> v = to_f32(*t);
    // The source's own copy (a synthetic tensor) is no longer needed: free it now,
    // so that loading never holds two copies of the weights.
    w_.release_tensors();
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        return Error{w_.describe() + ": tensor " + name + " has a non-finite value (NaN or infinity) at element " +
                     std::to_string(i)};
    return v;
  }

  Result<const void*> put_bytes(const void* data, size_t n) {
    Result<std::unique_ptr<Buffer>> buf = b_.alloc(n);
    if (!buf) return buf.error();
    if (n > 0) b_.upload(**buf, 0, data, n);
    bytes_ += n;
    owned_.push_back(std::move(*buf));
    return static_cast<const void*>(owned_.back()->data());
  }

  Result<const float*> put(const std::vector<float>& v) {
    Result<const void*> p = put_bytes(v.data(), v.size() * sizeof(float));
    if (!p) return p.error();
    return static_cast<const float*>(*p);
  }

  // divide: SmoothQuant's s folded into a norm's weight or bias (empty: none).
  Result<const float*> load(const std::string& name, const std::vector<int64_t>& shape,
                            const std::vector<float>& divide = {}) {
    Result<std::vector<float>> v = host(name, shape);
    if (!v) return v.error();
    for (size_t i = 0; i < divide.size() && i < v->size(); ++i) (*v)[i] /= divide[i];
    return put(*v);
  }

  // SmoothQuant: the next linear layer is smoothed with the calibration's absmax of
  // its input columns; its s is then divided out of x at run time (to_activations:
  // o_proj, down_proj) or left for take_smoothing() to fold into the preceding norm.
  void smooth_next(const std::vector<float>* x_absmax, bool to_activations) {
    smooth_x_ = x_absmax;
    smooth_to_activations_ = to_activations;
  }
  std::vector<float> take_smoothing() { return std::move(smooth_s_); }

  // How the format quantizes activations at run time.
  ActivationQuant activations() const {
    // fake: formats are weight-only (reference 004's fake rows): their bf16 weights read f32 activations.
    if (!options_.format || options_.format->fake) return ActivationQuant::kNone;
    const std::string& a = options_.format->activations;
    return a == "int8" ? ActivationQuant::kInt8
           : a == "fp8" ? ActivationQuant::kFp8
           : a == "llm.int8" ? ActivationQuant::kLlmInt8 : ActivationQuant::kNone;
  }

  // One matrix of a linear layer (or the embedding), quantized on the host: kept as
  // stored, or in `format` (fake formats: quantized, dequantized, held in bf16).
  Result<QuantizedMatrix> matrix(const std::string& name, const std::vector<int64_t>& shape,
                                 const std::optional<WeightFormat>& format,
                                 const std::vector<float>* transformed = nullptr) {
    std::vector<float> w;
    DType stored = DType::kF32;
    if (transformed == nullptr) {
      Result<TensorView> t = view(name, shape);
      if (!t) return t.error();
      if (t->quantized) {
        // A saved quantized model's matrix: as stored when no other format is asked for.
        const QuantSpec& st = t->quantized->spec;
        if (!format || (!format->fake && same_spec(quant_spec(*format), st))) {
          QuantizedMatrix q = *t->quantized;
          w_.release_tensors();
          return q;
        }
        if (!options_.requantize)
          return Error{w_.describe() + ": tensor " + name + " is stored as " + kernels::codec_name(st.codec) +
                       (st.group > 0 ? " in groups of " + std::to_string(st.group) : std::string()) +
                       "; weight format '" + (options_.format ? options_.format->name : format->name) +
                       "' would quantize it again: leave weight_format out to run it as stored, or set "
                       "requantize: true"};
      }
      if (t->packed && !t->quantized) {
        const kernels::WeightCodec codec = *t->packed;
        if (!format || (format->codec == codec && !format->fake && format->codec_layout == kernels::ScaleLayout::kNone)) {
          if (t->shape.size() != 2) return Error{w_.describe() + ": tensor " + name + " is packed but not a matrix"};
          Result<QuantizedMatrix> q =
              kernels::packed_matrix_copy(codec, t->bytes(), t->shape[0], t->shape[1], w_.describe() + ": " + name);
          w_.release_tensors();
          return q;
        }
        if (!options_.requantize)
          return Error{w_.describe() + ": tensor " + name + " is stored as " + kernels::codec_name(codec) +
                       "; weight format '" + (options_.format ? options_.format->name : format->name) +
                       "' would quantize it again: leave weight_format out to run it as stored, or set "
                       "requantize: true"};
      }
      stored = t->packed ? DType::kF32 : t->dtype;
      Result<std::vector<float>> v = host(name, shape);
      if (!v) return v.error();
      w = std::move(*v);
    } else {
      w = *transformed;
    }
    const std::string what = w_.describe() + ": " + name;
    const int64_t rows = shape[0], cols = shape.size() > 1 ? shape[1] : 1;
    if (!format) {
      QuantSpec s;
      s.codec = stored_codec(stored);
      return kernels::quantize_matrix(s, w.data(), rows, cols, what);
    }
    Result<QuantizedMatrix> q = kernels::quantize_matrix(quant_spec(*format), w.data(), rows, cols, what);
    if (!q) return Error{"weight format '" + format->name + "': " + q.message()};
    if (!format->fake) return q;
    // Fake quantization: the format's rounding, held in bf16 (reference 004's "fake" rows).
    std::vector<float> back = kernels::dequantize_matrix(*q);
    QuantSpec bf16;
    bf16.codec = kernels::WeightCodec::kBF16;
    return kernels::quantize_matrix(bf16, back.data(), rows, cols, what);
  }

  // Synthetic matrices (row blocks `names`, block i [rows[i], cols]) made in the
  // backend's memory: drawn there as f32, f16 or bf16, or drawn and quantized there
  // (engine/model/synthetic_matrix.h), no host copy. nullopt where that does not
  // apply (a file's tensor, a fake format, SmoothQuant, a format or backend that
  // makes none there): the caller takes the host path.
  Result<std::optional<PackedMatrix>> drawn(const std::vector<std::string>& names, const std::vector<int64_t>& rows,
                                            int64_t cols, const std::optional<WeightFormat>& format) {
    if (!options_.draw_on_backend || smooth_x_ != nullptr || (format && format->fake))
      return std::optional<PackedMatrix>();
    QuantSpec spec;
    if (format) spec = quant_spec(*format);
    Result<std::optional<SyntheticMatrix>> made = make_synthetic_matrix(b_, w_, names, rows, cols, spec);
    if (!made) return made.error();
    if (!*made) return std::optional<PackedMatrix>();
    bytes_ += (*made)->bytes;
    for (std::unique_ptr<Buffer>& buf : (*made)->buffers) owned_.push_back(std::move(buf));
    return std::optional<PackedMatrix>((*made)->matrix);
  }

  // A whole matrix in the backend's memory: drawn there (above), or made on the host
  // by matrix() and uploaded.
  Result<PackedMatrix> table(const std::string& name, const std::vector<int64_t>& shape,
                             const std::optional<WeightFormat>& format) {
    Result<std::optional<PackedMatrix>> d = drawn({name}, {shape[0]}, shape[1], format);
    if (!d) return d.error();
    if (*d) return **d;
    Result<QuantizedMatrix> q = matrix(name, shape, format);
    if (!q) return q.error();
    return upload(*q);
  }

  // Lets the backend lay a linear layer's uploaded matrix out as its kernels read it.
  void arrange_linear(PackedMatrix& m) { b_.arrange_linear(m); }

  // Puts a quantized matrix in backend memory.
  Result<PackedMatrix> upload(const QuantizedMatrix& q) {
    PackedMatrix m = q.view();
    Result<const void*> codes = put_bytes(q.codes.data(), q.codes.size());
    if (!codes) return codes.error();
    m.codes = static_cast<const uint8_t*>(*codes);
    if (!q.scales.empty()) {
      Result<const void*> s = put_bytes(q.scales.data(), q.scales.size());
      if (!s) return s.error();
      m.scales = *s;
    }
    if (!q.zeros.empty()) {
      Result<const void*> z = put_bytes(q.zeros.data(), q.zeros.size());
      if (!z) return z.error();
      m.zeros = *z;
    }
    if (q.spec.double_quant) {
      Result<const void*> code = put_bytes(m.dq_code, 256 * sizeof(float));
      Result<const void*> s = put_bytes(q.dq_scales.data(), q.dq_scales.size() * sizeof(float));
      Result<const void*> o = put_bytes(q.dq_offsets.data(), q.dq_offsets.size() * sizeof(float));
      if (!code) return code.error();
      if (!s) return s.error();
      if (!o) return o.error();
      m.dq_code = static_cast<const float*>(*code);
      m.dq_scales = static_cast<const float*>(*s);
      m.dq_offsets = static_cast<const float*>(*o);
      if (!q.block_row_index.empty()) {
        Result<const void*> idx = put_bytes(q.block_row_index.data(), q.block_row_index.size() * sizeof(uint32_t));
        if (!idx) return idx.error();
        m.block_row_index = static_cast<const uint32_t*>(*idx);
      }
    }
    return m;
  }

  // The format of the linear layers (unset: as stored).
  const std::optional<WeightFormat>& format() const { return options_.format; }

  // The format of the embedding table and of a 16-bit output head: f16 for formats
  // of 16 bits or fewer (bf16 for bf16), as stored otherwise.
  std::optional<WeightFormat> sixteen_bit_format() const {
    if (!options_.format || options_.format->codec == kernels::WeightCodec::kF32) return options_.format;
    Result<WeightFormat> f =
        parse_weight_format(options_.format->codec == kernels::WeightCodec::kBF16 ? "bf16" : "f16");
    return *f;
  }

  // A linear layer from row blocks (each [rows_i, in], concatenated) and optional biases.
  Result<LinearWeights> linear(const std::vector<std::string>& weights, const std::vector<int64_t>& rows,
                               int64_t in, bool bias) {
    std::vector<QuantizedMatrix> parts;
    std::vector<float> b;
    std::vector<std::vector<float>> smoothed;
    if (smooth_x_ != nullptr) {
      std::vector<std::vector<float>*> ps;
      for (size_t i = 0; i < weights.size(); ++i) {
        const std::string name = weights[i] + ".weight";
        Result<TensorView> t = view(name, {rows[i], in});
        if (!t) return t.error();
        if (t->packed && !options_.requantize)
          return Error{w_.describe() + ": tensor " + name + " is stored as " + kernels::codec_name(*t->packed) +
                       "; weight format '" + format()->name + "' would quantize it again: set requantize: true"};
        Result<std::vector<float>> v = host(name, {rows[i], in});
        if (!v) return v.error();
        smoothed.push_back(std::move(*v));
      }
      for (auto& v : smoothed) ps.push_back(&v);
      if (Status st = smooth(ps, in); !st.ok()) return st.error();
    }
    {
      std::vector<std::string> names;
      for (const std::string& w : weights) names.push_back(w + ".weight");
      Result<std::optional<PackedMatrix>> d = drawn(names, rows, in, format());
      if (!d) return d.error();
      if (*d) {
        for (size_t i = 0; i < weights.size() && bias; ++i) {
          Result<std::vector<float>> pb = host(weights[i] + ".bias", {rows[i]});
          if (!pb) return pb.error();
          b.insert(b.end(), pb->begin(), pb->end());
        }
        return finish(**d, b);
      }
    }
    for (size_t i = 0; i < weights.size(); ++i) {
      Result<QuantizedMatrix> part = matrix(weights[i] + ".weight", {rows[i], in}, format(),
                                            smoothed.empty() ? nullptr : &smoothed[i]);
      if (!part) return part.error();
      parts.push_back(std::move(*part));
      if (bias) {
        Result<std::vector<float>> pb = host(weights[i] + ".bias", {rows[i]});
        if (!pb) return pb.error();
        b.insert(b.end(), pb->begin(), pb->end());
      }
    }
    // Parts a file stores in different codecs (llama.cpp's mixes: q in q4_K, v in
    // q6_K) stay separate row blocks of one layer.
    bool same = true;
    for (const QuantizedMatrix& p : parts) same = same && p.spec.codec == parts.front().spec.codec;
    if (!same) {
      LinearWeights lw;
      if (Status st = set_activations(lw); !st.ok()) return st.error();
      for (const QuantizedMatrix& p : parts) {
        Result<PackedMatrix> m = upload(p);
        if (!m) return m.error();
        b_.arrange_linear(*m);
        lw.parts.push_back(*m);
      }
      if (!b.empty()) {
        Result<const float*> pb = put(b);
        if (!pb) return pb.error();
        lw.b = *pb;
      }
      return lw;
    }
    Result<QuantizedMatrix> fused = kernels::concat_rows(std::move(parts), w_.describe() + ": " + weights.front());
    if (!fused) return fused.error();
    return finish(*fused, b);
  }

  // A linear layer from an f32 matrix rearranged on the host (GPT-2's Conv1D,
  // GPT-NeoX's fused qkv) and its bias.
  Result<LinearWeights> linear_from(const std::string& name, const std::vector<float>& w, int64_t out, int64_t in,
                                    const std::vector<float>& b) {
    std::vector<float> sw;
    if (smooth_x_ != nullptr) {
      sw = w;
      if (Status st = smooth({&sw}, in); !st.ok()) return st.error();
    }
    Result<QuantizedMatrix> q = matrix(name, {out, in}, format(), sw.empty() ? &w : &sw);
    if (!q) return q.error();
    return finish(*q, b);
  }

  Result<LinearWeights> finish(const QuantizedMatrix& q, const std::vector<float>& b) {
    Result<PackedMatrix> m = upload(q);
    if (!m) return m.error();
    return finish(*m, b);
  }

  // The same for a matrix already in the backend's memory.
  Result<LinearWeights> finish(PackedMatrix m, const std::vector<float>& b) {
    LinearWeights lw;
    b_.arrange_linear(m);
    lw.parts = {m};
    if (!b.empty()) {
      Result<const float*> pb = put(b);
      if (!pb) return pb.error();
      lw.b = *pb;
    }
    if (Status st = set_activations(lw); !st.ok()) return st.error();
    return lw;
  }

  // The format's run-time activation quantization, and SmoothQuant's 1 / s on x
  // where it is not folded into a norm.
  Status set_activations(LinearWeights& lw) {
    lw.activations = activations();
    lw.outlier_threshold = options_.llm_int8_threshold;
    lw.compute = options_.compute;
    if (smooth_to_activations_ && !smooth_s_.empty()) {
      std::vector<float> inv(smooth_s_.size());
      for (size_t j = 0; j < inv.size(); ++j) inv[j] = 1.0f / smooth_s_[j];
      Result<const float*> p = put(inv);
      if (!p) return p.error();
      lw.act_mul = *p;
      smooth_s_.clear();
    }
    smooth_to_activations_ = false;
    return Status();
  }

  // SmoothQuant on a layer's host weights (row blocks of `in` columns): s from the
  // calibration's x absmax and the columns' |W| max over every row, then W[:, j] *= s_j.
  Status smooth(const std::vector<std::vector<float>*>& parts, int64_t in) {
    const std::vector<float>& xa = *smooth_x_;
    smooth_x_ = nullptr;
    if (static_cast<int64_t>(xa.size()) != in)
      return Error{"SmoothQuant calibration has " + std::to_string(xa.size()) + " input columns for a layer of " +
                   std::to_string(in)};
    smooth_s_ = kernels::smoothquant_factors(
        xa, kernels::column_absmax(std::vector<const std::vector<float>*>(parts.begin(), parts.end()), in),
        options_.smooth_alpha);
    for (std::vector<float>* p : parts)
      for (size_t i = 0; i < p->size(); ++i) (*p)[i] *= smooth_s_[i % static_cast<size_t>(in)];
    return Status();
  }

 private:
  WeightSource& w_;
  Backend& b_;
  std::vector<std::unique_ptr<Buffer>>& owned_;
  uint64_t& bytes_;
  const LoadOptions& options_;
  const std::vector<float>* smooth_x_ = nullptr;
  bool smooth_to_activations_ = false;
  std::vector<float> smooth_s_;
};

std::vector<float> transpose(const std::vector<float>& a, int64_t rows, int64_t cols) {
  std::vector<float> t(a.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = a[r * cols + c];
  return t;
}

#define GB_TRY_ASSIGN(lhs, expr)          \
  do {                                    \
    auto gb_r_ = (expr);                  \
    if (!gb_r_) return gb_r_.error();     \
    lhs = std::move(*gb_r_);              \
  } while (0)

}  // namespace

Result<std::unique_ptr<Model>> Model::load(WeightSource& weights, Backend& backend, const LoadOptions& options) {
  const ModelConfig& c = weights.config();
  if (c.num_heads <= 0 || c.num_kv_heads <= 0 || c.head_dim <= 0 || c.num_heads % c.num_kv_heads != 0)
    return Error{weights.describe() + ": invalid attention shape in the config"};
  if (options.format || options.compute != ComputeDtype::kF32) {
    const std::vector<FormatProblem> p =
        format_support_problems(c, options.format ? &*options.format : nullptr, nullptr, backend.name(), options.compute);
    if (!p.empty()) return Error{weights.describe() + ": " + p.front().what};
  }
  std::unique_ptr<Model> m(new Model(c, backend));
  m->record_decode_steps_ = options.record_decode_steps;
  const MemoryUseScope weights_memory(backend, MemoryUse::kWeights);
  Loader L(weights, backend, m->owned_, m->weight_bytes_, options);
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, hd = c.head_dim;
  const int64_t q = c.num_heads * hd, kv = c.num_kv_heads * hd;
  const bool gpt2 = c.family == Family::kGpt2, neox = c.family == Family::kGptNeoX;
  const std::string embed_name =
      gpt2 ? "transformer.wte.weight" : neox ? "gpt_neox.embed_in.weight" : "model.embed_tokens.weight";
  GB_TRY_ASSIGN(m->embed_, L.table(embed_name, {V, H}, L.sixteen_bit_format()));
  if (gpt2) GB_TRY_ASSIGN(m->positions_, L.load("transformer.wpe.weight", {c.max_position_embeddings, H}));

  // SmoothQuant: the calibration's input absmax of layer l's linear `which` (q|k|v,
  // o, up, down), or null when the format does not smooth.
  const bool smooth = options.format && options.format->smooth;
  if (smooth) {
    if (!options.smooth_absmax || static_cast<int64_t>(options.smooth_absmax->layers.size()) != c.num_layers)
      return Error{"weight format '" + options.format->name +
                   "' (SmoothQuant) needs a calibration of every layer's activations (engine/model/smooth_calibration.h)"};
  }
  auto smooth_next = [&](int64_t l, int which) {
    L.smooth_next(smooth ? &options.smooth_absmax->layers[static_cast<size_t>(l)][static_cast<size_t>(which)] : nullptr,
                  which == 1 || which == 3);
  };

  m->layers_.resize(static_cast<size_t>(c.num_layers));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer& y = m->layers_[static_cast<size_t>(l)];
    const std::string n = std::to_string(l);
    if (gpt2) {
      const std::string p = "transformer.h." + n + ".";
      // Conv1D weights are [in, out]: transpose to [out, in].
      auto conv = [&](const std::string& name, int64_t in, int64_t out) -> Result<LinearWeights> {
        std::vector<float> w, b;
        GB_TRY_ASSIGN(w, L.host(p + name + ".weight", {in, out}));
        GB_TRY_ASSIGN(b, L.host(p + name + ".bias", {out}));
        return L.linear_from(p + name + ".weight", transpose(w, in, out), out, in, b);
      };
      smooth_next(l, 0);
      GB_TRY_ASSIGN(y.qkv, conv("attn.c_attn", H, q + 2 * kv));
      const std::vector<float> s1 = L.take_smoothing();
      smooth_next(l, 1);
      GB_TRY_ASSIGN(y.o, conv("attn.c_proj", q, H));
      smooth_next(l, 2);
      GB_TRY_ASSIGN(y.up, conv("mlp.c_fc", H, I));
      const std::vector<float> s2 = L.take_smoothing();
      smooth_next(l, 3);
      GB_TRY_ASSIGN(y.down, conv("mlp.c_proj", I, H));
      GB_TRY_ASSIGN(y.n1w, L.load(p + "ln_1.weight", {H}, s1));
      GB_TRY_ASSIGN(y.n1b, L.load(p + "ln_1.bias", {H}, s1));
      GB_TRY_ASSIGN(y.n2w, L.load(p + "ln_2.weight", {H}, s2));
      GB_TRY_ASSIGN(y.n2b, L.load(p + "ln_2.bias", {H}, s2));
    } else if (neox) {
      const std::string p = "gpt_neox.layers." + n + ".";
      // query_key_value rows are [heads][q|k|v][head_dim]: reorder to q | k | v.
      std::vector<float> w, b;
      GB_TRY_ASSIGN(w, L.host(p + "attention.query_key_value.weight", {3 * q, H}));
      if (c.qkv_bias) GB_TRY_ASSIGN(b, L.host(p + "attention.query_key_value.bias", {3 * q}));
      std::vector<float> w2(w.size()), b2(b.size());
      for (int64_t h = 0; h < c.num_heads; ++h)
        for (int64_t j = 0; j < 3; ++j)
          for (int64_t d = 0; d < hd; ++d) {
            const int64_t from = (h * 3 + j) * hd + d, to = j * q + h * hd + d;
            std::copy_n(w.begin() + from * H, H, w2.begin() + to * H);
            if (!b.empty()) b2[static_cast<size_t>(to)] = b[static_cast<size_t>(from)];
          }
      smooth_next(l, 0);
      GB_TRY_ASSIGN(y.qkv, L.linear_from(p + "attention.query_key_value.weight", w2, 3 * q, H, b2));
      const std::vector<float> s1 = L.take_smoothing();
      smooth_next(l, 1);
      GB_TRY_ASSIGN(y.o, L.linear({p + "attention.dense"}, {H}, q, c.o_bias));
      smooth_next(l, 2);
      GB_TRY_ASSIGN(y.up, L.linear({p + "mlp.dense_h_to_4h"}, {I}, H, c.mlp_bias));
      const std::vector<float> s2 = L.take_smoothing();
      smooth_next(l, 3);
      GB_TRY_ASSIGN(y.down, L.linear({p + "mlp.dense_4h_to_h"}, {H}, I, c.mlp_bias));
      GB_TRY_ASSIGN(y.n1w, L.load(p + "input_layernorm.weight", {H}, s1));
      GB_TRY_ASSIGN(y.n1b, L.load(p + "input_layernorm.bias", {H}, s1));
      GB_TRY_ASSIGN(y.n2w, L.load(p + "post_attention_layernorm.weight", {H}, s2));
      GB_TRY_ASSIGN(y.n2b, L.load(p + "post_attention_layernorm.bias", {H}, s2));
    } else {
      const std::string p = "model.layers." + n + ".";
      smooth_next(l, 0);
      GB_TRY_ASSIGN(y.qkv, L.linear({p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"},
                                    {q, kv, kv}, H, c.qkv_bias));
      GB_TRY_ASSIGN(y.n1w, L.load(p + "input_layernorm.weight", {H}, L.take_smoothing()));
      smooth_next(l, 1);
      GB_TRY_ASSIGN(y.o, L.linear({p + "self_attn.o_proj"}, {H}, q, c.o_bias));
      if (c.qk_norm) {
        GB_TRY_ASSIGN(y.q_norm, L.load(p + "self_attn.q_norm.weight", {hd}));
        GB_TRY_ASSIGN(y.k_norm, L.load(p + "self_attn.k_norm.weight", {hd}));
      }
      smooth_next(l, 2);
      GB_TRY_ASSIGN(y.up, L.linear({p + "mlp.gate_proj", p + "mlp.up_proj"}, {I, I}, H, c.mlp_bias));
      GB_TRY_ASSIGN(y.n2w, L.load(p + "post_attention_layernorm.weight", {H}, L.take_smoothing()));
      smooth_next(l, 3);
      GB_TRY_ASSIGN(y.down, L.linear({p + "mlp.down_proj"}, {H}, I, c.mlp_bias));
    }
  }
  if (gpt2) {
    GB_TRY_ASSIGN(m->final_w_, L.load("transformer.ln_f.weight", {H}));
    GB_TRY_ASSIGN(m->final_b_, L.load("transformer.ln_f.bias", {H}));
  } else if (neox) {
    GB_TRY_ASSIGN(m->final_w_, L.load("gpt_neox.final_layer_norm.weight", {H}));
    GB_TRY_ASSIGN(m->final_b_, L.load("gpt_neox.final_layer_norm.bias", {H}));
  } else {
    GB_TRY_ASSIGN(m->final_w_, L.load("model.norm.weight", {H}));
  }
  L.smooth_next(nullptr, false);
  if (c.tie_embeddings) {
    m->head_.parts = {m->embed_};
  } else {
    const bool head16 = L.format() && L.format()->head_in_16_bits;
    PackedMatrix head;
    GB_TRY_ASSIGN(head, L.table(neox ? "embed_out.weight" : "lm_head.weight", {V, H},
                                head16 ? L.sixteen_bit_format() : L.format()));
    L.arrange_linear(head);
    m->head_.parts = {head};
  }
  if (!c.learned_positions) {
    m->rot_dim_ = static_cast<int64_t>(std::llround(static_cast<double>(hd) * c.rotary_pct));
    m->rot_dim_ -= m->rot_dim_ % 2;
    m->inv_freq_ = rope_inv_freq(c, m->rot_dim_);
  }
  // What a device's draws and quantizers met (their launches return nothing).
  if (Status st = backend.take_error(); !st.ok()) return Error{weights.describe() + ": loading: " + st.message()};
  return m;
}

Result<std::unique_ptr<KvCache>> Model::make_cache(KvCacheOptions options, int sequences) {
  KvFormat policy;
  policy.name = "+sink" + std::to_string(options.sink_tokens) + "+win" + std::to_string(options.window_tokens);
  policy.sink_tokens = options.sink_tokens;
  policy.window_tokens = options.window_tokens;
  if (const std::vector<FormatProblem> p = format_support_problems(config_, nullptr, &policy, backend_.name());
      !p.empty())
    return Error{p.front().what};
  if (config_.learned_positions) {
    if (options.max_tokens == 0 || options.max_tokens > config_.max_position_embeddings)
      options.max_tokens = config_.max_position_embeddings;
  }
  return KvCache::create(backend_, config_, options, sequences);
}

Status Model::ensure_scratch(int64_t rows) {
  if (rows <= scratch_rows_) return Status();
  const MemoryUseScope workspace_memory(backend_, MemoryUse::kWorkspace);
  const ModelConfig& c = config_;
  const int64_t q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  const int64_t mlp = c.gated_mlp ? 2 * c.intermediate_size : c.intermediate_size;
  auto get = [&](std::unique_ptr<Buffer>& b, int64_t width) -> Status {
    Result<std::unique_ptr<Buffer>> r = backend_.alloc(static_cast<size_t>(rows * width) * sizeof(float));
    if (!r) return r.error();
    b = std::move(*r);
    return Status();
  };
  for (auto [buf, width] : {std::pair{&x_, c.hidden_size}, {&h_, c.hidden_size}, {&qkv_, q + 2 * kv},
                            {&attn_, std::max(q, c.intermediate_size)}, {&tmp_, c.hidden_size}, {&mlp_, mlp},
                            {&logits_buf_, c.vocab_size}})
    if (Status s = get(*buf, width); !s.ok()) return s;
  scratch_rows_ = rows;
  ++scratch_generation_;
  return Status();
}

Status Model::forward(std::span<const SequenceStep> batch, KvCache& cache, LogitsMode mode,
                      std::vector<float>* logits) {
  if (batch.empty()) return Error{"forward: empty batch"};
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].seq < 0 || batch[i].seq >= cache.sequences())
      return Error{"forward: sequence " + std::to_string(batch[i].seq) + " is not in the cache"};
    if (batch[i].tokens.empty()) return Error{"forward: sequence " + std::to_string(batch[i].seq) + " has no tokens"};
    for (size_t j = 0; j < i; ++j)
      if (batch[j].seq == batch[i].seq) return Error{"forward: sequence " + std::to_string(batch[i].seq) + " twice"};
    for (int32_t t : batch[i].tokens)
      if (t < 0 || t >= config_.vocab_size)
        return Error{"forward: token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                     std::to_string(config_.vocab_size) + ")"};
  }
  kept_rows_ = 0;
  bool fits = true;
  for (const SequenceStep& s : batch) fits = fits && static_cast<int64_t>(s.tokens.size()) <= cache.max_step(s.seq);
  if (fits) return forward_step(batch, cache, mode, logits);
  if (logits == nullptr) {
    // Kept logits of a step run in pieces: brought back, then put back in one piece.
    std::vector<float> host;
    if (Status s = forward(batch, cache, mode, &host); !s.ok()) return s;
    const int64_t rows = static_cast<int64_t>(host.size()) / config_.vocab_size;
    if (Status s = ensure_scratch(rows); !s.ok()) return s;
    backend_.upload(*logits_buf_, 0, host.data(), host.size() * sizeof(float));
    backend_.synchronize();
    if (Status st = backend_.take_error(); !st.ok()) return Error{"forward: " + st.message()};
    kept_rows_ = rows;
    return Status();
  }
  // A streaming cache takes at most a window per step: run each sequence in pieces.
  logits->clear();
  std::vector<float> part;
  for (const SequenceStep& s : batch) {
    const int64_t step = cache.max_step(s.seq), n = static_cast<int64_t>(s.tokens.size());
    for (int64_t at = 0; at < n; at += step) {
      const SequenceStep piece{s.seq, s.tokens.subspan(static_cast<size_t>(at),
                                                       static_cast<size_t>(std::min(step, n - at)))};
      if (Status st = forward_step({&piece, 1}, cache, mode, &part); !st.ok()) return st;
      if (mode == LogitsMode::kAll || at + step >= n) logits->insert(logits->end(), part.begin(), part.end());
    }
  }
  return Status();
}

Status Model::forward_step(std::span<const SequenceStep> batch, KvCache& cache, LogitsMode mode,
                           std::vector<float>* logits) {
  step_ids_.clear();
  step_positions_.clear();
  step_visible_.clear();
  step_row0_.clear();
  std::vector<int> seqs;
  for (const SequenceStep& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    Result<int64_t> slot = cache.prepare(s.seq, n);
    if (!slot) return slot.error();
    step_row0_.push_back(static_cast<int64_t>(step_ids_.size()));
    seqs.push_back(s.seq);
    for (int64_t i = 0; i < n; ++i) {
      step_ids_.push_back(s.tokens[static_cast<size_t>(i)]);
      step_positions_.push_back(*slot + i);  // full: absolute position; streaming: slot in the cache
      step_visible_.push_back(*slot + i + 1);
    }
  }
  const int64_t R = static_cast<int64_t>(step_ids_.size());
  if (Status s = ensure_scratch(R); !s.ok()) return s;
  // A decode step from a recording where the backend records (recorded_steps.h).
  // Its views are bound to the slots allocated whether it is recorded or not, so
  // that the step run before its recording sizes the workspaces the recording needs.
  const bool recordable = record_decode_steps_ && backend_.can_record() && mode == LogitsMode::kLast &&
                          !cache.streaming() && R == static_cast<int64_t>(batch.size());
  bool launched = false;
  if (recordable) {
    const StepShape shape{cache.layout_generation(), scratch_generation_, std::move(seqs),
                          {step_ids_.data(), step_positions_.data(), step_visible_.data()}};
    launched = recorded_.run(backend_, shape, [&] { enqueue_step(batch, cache, mode, true); });
  }
  if (!launched) enqueue_step(batch, cache, mode, recordable);
  for (size_t b = 0; b < batch.size(); ++b) cache.commit(batch[b].seq, static_cast<int64_t>(batch[b].tokens.size()));

  const int64_t out_rows = mode == LogitsMode::kLast ? static_cast<int64_t>(batch.size()) : R;
  Backend& B = backend_;
  if (logits != nullptr) {
    logits->resize(static_cast<size_t>(out_rows * config_.vocab_size));
    B.download(*logits_buf_, 0, logits->data(), logits->size() * sizeof(float));
  }
  B.synchronize();
  // A device backend's failed launch or copy (its ops return nothing) ends the step here.
  if (Status st = B.take_error(); !st.ok()) return Error{"forward: " + st.message()};
  if (logits == nullptr) kept_rows_ = out_rows;
  return Status();
}

void Model::enqueue_step(std::span<const SequenceStep> batch, KvCache& cache, LogitsMode mode, bool bound) {
  const ModelConfig& c = config_;
  Backend& B = backend_;
  const int64_t H = c.hidden_size, hd = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
  const int64_t q = nh * hd, kv = nkv * hd, qkvw = q + 2 * kv, I = c.intermediate_size;
  const int64_t R = static_cast<int64_t>(step_ids_.size());
  const int32_t* ids = step_ids_.data();
  const int64_t* positions = step_positions_.data();
  const int64_t* visible = step_visible_.data();
  float* x = x_->f32();
  float* h = h_->f32();
  float* qkv = qkv_->f32();
  float* attn = attn_->f32();
  float* tmp = tmp_->f32();
  float* mlp = mlp_->f32();
  const RopeParams rope{rot_dim_, inv_freq_.data()};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float eps = static_cast<float>(c.norm_eps);

  auto norm = [&](const float* in, int64_t rows, const float* w, const float* b, float* out) {
    if (c.layer_norm) B.layer_norm(in, rows, H, w, b, eps, out);
    else B.rms_norm(in, rows, H, w, eps, out);
  };
  // x += res, then the norm of x into out: one fused op (Backend::add_rms_norm).
  auto add_norm = [&](float* in, const float* res, const float* w, const float* b, float* out) {
    if (c.layer_norm) B.add_layer_norm(in, res, R, H, w, b, eps, out);
    else B.add_rms_norm(in, res, R, H, w, eps, out);
  };
  auto mlp_block = [&](const Layer& y, const float* in, float* out) {
    B.linear(in, R, y.up, mlp);
    if (c.gated_mlp) {
      B.silu_mul(mlp, R, I, attn);
      B.linear(attn, R, y.down, out);
    } else {
      B.gelu(mlp, R * I, c.activation == ModelConfig::Activation::kGeluTanh);
      B.linear(mlp, R, y.down, out);
    }
  };

  B.embedding(ids, R, embed_, x);
  if (positions_ != nullptr) B.add_rows(positions, R, positions_, H, x);
  // The residual add that ends a layer is fused into the norm that starts the next.
  bool residual_pending = false;  // x += tmp not yet done
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& y = layers_[l];
    if (residual_pending) add_norm(x, tmp, y.n1w, y.n1b, h);
    else norm(x, R, y.n1w, y.n1b, h);
    B.linear(h, R, y.qkv, qkv);
    if (y.q_norm != nullptr)
      for (int64_t r = 0; r < R; ++r) {
        B.rms_norm(qkv + r * qkvw, nh, hd, y.q_norm, eps, qkv + r * qkvw);
        B.rms_norm(qkv + r * qkvw + q, nkv, hd, y.k_norm, eps, qkv + r * qkvw + q);
      }
    B.rope(qkv, R, qkvw, nh, hd, positions, rope);
    if (!cache.streaming()) B.rope(qkv + q, R, qkvw, nkv, hd, positions, rope);
    for (size_t b = 0; b < batch.size(); ++b) {
      const int64_t r0 = step_row0_[b], n = static_cast<int64_t>(batch[b].tokens.size());
      const int64_t layer = static_cast<int64_t>(l);
      const KvLayerView view = bound ? cache.layer_bound(batch[b].seq, layer) : cache.layer(batch[b].seq, layer, n);
      B.kv_store(qkv + r0 * qkvw + q, qkv + r0 * qkvw + q + kv, n, qkvw, kv, view, visible + r0);
      B.attention(qkv + r0 * qkvw, n, qkvw, nh, nkv, hd, view, visible + r0, rope, scale, attn + r0 * q);
    }
    B.linear(attn, R, y.o, tmp);
    if (c.parallel_residual) {
      // GPT-NeoX: x + attn(ln1(x)) + mlp(ln2(x)), both norms of the layer input.
      norm(x, R, y.n2w, y.n2b, h);
      B.add(x, tmp, R * H);
      mlp_block(y, h, tmp);
    } else {
      add_norm(x, tmp, y.n2w, y.n2b, h);
      mlp_block(y, h, tmp);
    }
    residual_pending = true;
  }
  if (residual_pending) B.add(x, tmp, R * H);

  // Final norm and output head over the rows whose logits are wanted.
  int64_t out_rows = R;
  const float* final_in = x;
  if (mode == LogitsMode::kLast) {
    out_rows = static_cast<int64_t>(batch.size());
    for (size_t b = 0; b < batch.size(); ++b) {
      const int64_t last = step_row0_[b] + static_cast<int64_t>(batch[b].tokens.size()) - 1;
      B.copy(*tmp_, b * H * sizeof(float), *x_, static_cast<size_t>(last * H) * sizeof(float), H * sizeof(float));
    }
    final_in = tmp;
  }
  norm(final_in, out_rows, final_w_, final_b_, h);
  B.linear(h, out_rows, head_, logits_buf_->f32());
}

Status Model::forward_kept(std::span<const SequenceStep> batch, KvCache& cache, LogitsMode mode) {
  return forward(batch, cache, mode, nullptr);
}

Status Model::kept(size_t n, const char* what) const {
  if (kept_rows_ == 0) return Error{std::string(what) + ": no logits kept (forward_kept first)"};
  if (static_cast<int64_t>(n) != kept_rows_)
    return Error{std::string(what) + ": " + std::to_string(n) + " rows asked, " + std::to_string(kept_rows_) +
                 " kept"};
  return Status();
}

Status Model::argmax(std::span<int32_t> ids) {
  if (Status s = kept(ids.size(), "argmax"); !s.ok()) return s;
  backend_.argmax_rows(logits_buf_->f32(), kept_rows_, config_.vocab_size, ids.data());
  if (Status st = backend_.take_error(); !st.ok()) return Error{"argmax: " + st.message()};
  return Status();
}

Status Model::sample(const SamplingCut& cut, std::span<const double> u, std::span<int32_t> ids) {
  if (Status s = kept(ids.size(), "sample"); !s.ok()) return s;
  if (u.size() != ids.size()) return Error{"sample: one uniform per row is needed"};
  backend_.sample_rows(logits_buf_->f32(), kept_rows_, config_.vocab_size, cut, u.data(), ids.data());
  if (Status st = backend_.take_error(); !st.ok()) return Error{"sample: " + st.message()};
  return Status();
}

Status Model::target_log_probs(std::span<const int32_t> targets, std::span<double> lp) {
  if (Status s = kept(lp.size(), "target_log_probs"); !s.ok()) return s;
  if (targets.size() != lp.size()) return Error{"target_log_probs: one target per row is needed"};
  for (int32_t t : targets)
    if (t >= config_.vocab_size)
      return Error{"target_log_probs: target " + std::to_string(t) + " is outside the vocabulary [0, " +
                   std::to_string(config_.vocab_size) + ")"};
  backend_.target_log_probs(logits_buf_->f32(), kept_rows_, config_.vocab_size, targets.data(), lp.data());
  if (Status st = backend_.take_error(); !st.ok()) return Error{"target_log_probs: " + st.message()};
  return Status();
}

}  // namespace gb::engine

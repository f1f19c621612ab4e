// Synthetic weight matrices made in the backend's memory (engine/model/synthetic_matrix.h).
#include "engine/model/synthetic_matrix.h"

#include <utility>

#include "kernels/quantize/bnb_quantize.h"

namespace gb::engine {
namespace {

using kernels::QuantizedMatrix;
using kernels::QuantSpec;
using kernels::WeightCodec;

bool float_codec(WeightCodec c) { return c == WeightCodec::kF32 || c == WeightCodec::kF16 || c == WeightCodec::kBF16; }

class Maker {
 public:
  explicit Maker(Backend& b) : b_(b) {}

  // A buffer of n bytes (at least one) kept in the result.
  Result<uint8_t*> alloc(size_t n) {
    Result<std::unique_ptr<Buffer>> buf = b_.alloc(n);
    if (!buf) return buf.error();
    out_.bytes += n;
    out_.buffers.push_back(std::move(*buf));
    return static_cast<uint8_t*>(out_.buffers.back()->data());
  }
  Result<const void*> put(const void* data, size_t n) {
    Result<uint8_t*> p = alloc(n);
    if (!p) return p.error();
    b_.upload(*out_.buffers.back(), 0, data, n);
    return static_cast<const void*>(*p);
  }
  Buffer& last() { return *out_.buffers.back(); }
  SyntheticMatrix take(const PackedMatrix& m) {
    out_.matrix = m;
    return std::move(out_);
  }

 private:
  Backend& b_;
  SyntheticMatrix out_;
};

}  // namespace

Result<std::optional<SyntheticMatrix>> make_synthetic_matrix(Backend& b, const WeightSource& w,
                                                             const std::vector<std::string>& names,
                                                             const std::vector<int64_t>& rows, int64_t cols,
                                                             const QuantSpec& spec) {
  auto none = [] { return std::optional<SyntheticMatrix>(); };
  const bool floats = float_codec(spec.codec) && spec.layout == kernels::ScaleLayout::kNone;
  if (!floats && !b.quantizes_synthetic(spec, cols)) return none();
  std::vector<SyntheticDraw> draws;
  int64_t total = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    std::optional<SyntheticDraw> d = w.synthetic_draw(names[i]);
    if (!d || d->shape != std::vector<int64_t>{rows[i], cols}) return none();
    draws.push_back(std::move(*d));
    total += rows[i];
  }
  const size_t row_bytes = kernels::codec_row_bytes(spec.codec, cols);
  if (draws.empty() || row_bytes == 0) return none();

  // The matrix's fields as the host path's QuantizedMatrix::view() sets them; the
  // pointers are this backend's.
  QuantizedMatrix shape;
  shape.spec = spec;
  shape.rows = total;
  shape.cols = cols;
  shape.row_bytes = row_bytes;
  PackedMatrix m = shape.view();
  Maker mk(b);
  Result<uint8_t*> codes = mk.alloc(row_bytes * static_cast<size_t>(total));
  if (!codes) return codes.error();
  m.codes = *codes;

  if (floats) {
    Buffer& buf = mk.last();
    size_t offset = 0;
    for (size_t i = 0; i < draws.size(); ++i) {
      const int64_t n = rows[i] * cols;
      if (!b.fill_synthetic(buf, offset, draws[i].key, draws[i].mean, draws[i].stddev, 0, n, spec.codec)) return none();
      offset += row_bytes * static_cast<size_t>(rows[i]);
    }
    return std::optional<SyntheticMatrix>(mk.take(m));
  }

  // Bytes of scales and zeros per row, as the codec stores them (nf4/fp4: the f32
  // absmax, before double quantization).
  QuantSpec single = spec;
  single.double_quant = false;
  const kernels::QuantizedSizes per_row = kernels::quantized_sizes(single, 1, cols);
  const bool dq = spec.double_quant;
  // Double quantization: the f32 absmax in a workspace, handed back to the host.
  std::unique_ptr<Buffer> absmax;
  uint8_t* scales = nullptr;
  uint8_t* zeros = nullptr;
  if (dq) {
    const MemoryUseScope workspace(b, MemoryUse::kWorkspace);
    Result<std::unique_ptr<Buffer>> a = b.alloc(per_row.scales * static_cast<size_t>(total));
    if (!a) return a.error();
    absmax = std::move(*a);
    scales = static_cast<uint8_t*>(absmax->data());
  } else if (per_row.scales > 0) {
    Result<uint8_t*> s = mk.alloc(per_row.scales * static_cast<size_t>(total));
    if (!s) return s.error();
    scales = *s;
    m.scales = scales;
  }
  if (per_row.zeros > 0) {
    Result<uint8_t*> z = mk.alloc(per_row.zeros * static_cast<size_t>(total));
    if (!z) return z.error();
    zeros = *z;
    m.zeros = zeros;
  }
  size_t before = 0;  // rows of the earlier blocks
  for (size_t i = 0; i < draws.size(); ++i) {
    kernels::QuantizedArraysOut out;
    out.codes = *codes + before * row_bytes;
    out.scales = scales == nullptr ? nullptr : scales + before * per_row.scales;
    out.zeros = zeros == nullptr ? nullptr : zeros + before * per_row.zeros;
    out.row_bytes = row_bytes;
    b.quantize_synthetic(draws[i].key, draws[i].mean, draws[i].stddev, spec, rows[i], cols, out);
    before += static_cast<size_t>(rows[i]);
  }
  if (dq) {
    // Each block's absmax doubly quantized as the host quantizer does it, and the
    // blocks joined as kernels::concat_rows joins them.
    std::vector<float> host(absmax->size() / sizeof(float));
    b.download(*absmax, 0, host.data(), absmax->size());
    if (Status st = b.take_error(); !st.ok()) return st.error();
    std::vector<QuantizedMatrix> parts;
    size_t at = 0;
    for (size_t i = 0; i < draws.size(); ++i) {
      QuantizedMatrix p = shape;
      p.rows = rows[i];
      const int64_t nb = rows[i] * cols / spec.group;
      kernels::double_quantize_absmax(p, host.data() + at, nb);
      at += static_cast<size_t>(nb);
      parts.push_back(std::move(p));
    }
    absmax.reset();
    Result<QuantizedMatrix> joined = kernels::concat_rows(std::move(parts), names.front());
    if (!joined) return joined.error();
    Result<const void*> s = mk.put(joined->scales.data(), joined->scales.size());
    Result<const void*> code = mk.put(kernels::bnb_dynamic_map(), 256 * sizeof(float));
    Result<const void*> ds = mk.put(joined->dq_scales.data(), joined->dq_scales.size() * sizeof(float));
    Result<const void*> dof = mk.put(joined->dq_offsets.data(), joined->dq_offsets.size() * sizeof(float));
    for (const auto* r : {&s, &code, &ds, &dof})
      if (!*r) return r->error();
    m.scales = *s;
    m.dq_code = static_cast<const float*>(*code);
    m.dq_scales = static_cast<const float*>(*ds);
    m.dq_offsets = static_cast<const float*>(*dof);
    if (!joined->block_row_index.empty()) {
      Result<const void*> idx = mk.put(joined->block_row_index.data(), joined->block_row_index.size() * sizeof(uint32_t));
      if (!idx) return idx.error();
      m.block_row_index = static_cast<const uint32_t*>(*idx);
    }
  }
  return std::optional<SyntheticMatrix>(mk.take(m));
}

}  // namespace gb::engine

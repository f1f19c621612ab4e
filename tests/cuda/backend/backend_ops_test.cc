// Every Backend op of the CUDA backend against the CPU reference backend, table
// driven as ggml's test-backend-ops: each case builds fresh seeded random inputs,
// runs the same op on both backends and bounds max_rel_error (backend_pair.h) of the
// CUDA output by the case's named tolerance. The table covers every op, several
// shapes (odd ones included: rows of 1, widths that are not a multiple of a warp,
// strides wider than the data), every weight codec for embedding and linear and every
// KV element for kv_store and attention. Without a GPU each test runs the CPU half of
// its cases (the table checked: inputs built, outputs finite) and skips with a message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "engine/weights/synthetic.h"
#include "kernels/codecs/float16.h"
#include "kernels/codecs/kv_quant.h"
#include "kernels/quantize/quantize_matrix.h"
#include "kernels/cuda/synthetic/synthetic_fill.h"
#include "tests/cuda/backend/backend_pair.h"
#include "tests/cuda/gpu_test_util.h"

namespace gb::testing {
namespace {

using engine::KvElement;
using engine::KvLayerView;
using engine::LinearWeights;
using engine::RopeParams;
using kernels::QuantSpec;
using kernels::ScaleLayout;
using kernels::WeightCodec;

// ---- the named tolerances (bounds on max_rel_error) ----
// Elementwise ops that compute the same IEEE operations: only contraction into FMA
// on the device can move a result by an ulp.
constexpr double kTolExactish = 1e-6;
constexpr double kTolEmbedding = 1e-6;   // the same shared decoder on both sides
constexpr double kTolNorm = 1e-5;        // f64 sums on both sides, different order
constexpr double kTolRope = 1e-5;        // cosf/sinf: a few ulps apart
constexpr double kTolActivation = 1e-5;  // expf, erff, tanhf: a few ulps apart
constexpr double kTolLinearGemv = 1e-4;  // rows <= 16: f32 products, another summation order
constexpr double kTolLinearPrefill = 2e-2;  // rows > 16: may run on bf16 tensor cores
constexpr double kTolAttentionFloatKv = 1e-4;
constexpr double kTolAttentionQuantKv = 1e-3;  // the same cache bytes; fused dequantization
constexpr double kTolKvStoreFloat = 1e-6;
constexpr double kTolKvStore8 = 1e-2;  // one int8/fp8 code step where a rounding tie falls the other way
constexpr double kTolKvStore4 = 7e-2;  // one int4 code step
constexpr double kTolTokenIds = 0;      // argmax and sampled ids: the same token
constexpr double kTolLogProb = 1e-6;    // f64 sums in another order, compared as f32

struct OpCase {
  std::string name;
  double tol;
  std::function<std::vector<float>(Arena&)> run;  // builds its inputs in the arena, runs the op, reads the output
};

// A case's op and format: its name without the trailing shape numbers.
std::string op_and_format(const std::string& name) {
  size_t end = name.size();
  while (end > 0) {
    const size_t sp = name.find_last_of(' ', end - 1);
    const size_t start = sp == std::string::npos ? 0 : sp + 1;
    const std::string tok = name.substr(start, end - start);
    if (tok.empty() || tok.find_first_not_of("-0123456789") != std::string::npos) break;
    if (sp == std::string::npos) return "";
    end = sp;
  }
  return name.substr(0, end);
}

void check_cases(const std::vector<OpCase>& all) {
  // GB_CUDA_OPS_ONE_PER_FORMAT=1 (scripts/gpu-check.sh under compute-sanitizer): the
  // first shape of each op and format only.
  std::vector<OpCase> cases;
  const char* one = std::getenv("GB_CUDA_OPS_ONE_PER_FORMAT");
  std::set<std::string> seen;
  for (const OpCase& c : all)
    if (one == nullptr || *one != '1' || seen.insert(op_and_format(c.name)).second) cases.push_back(c);
  std::unique_ptr<Backend> cpu = engine::make_cpu_backend(2);
  if (!gpu_present()) {
    // The CPU half of every case still runs, so that the table itself is checked here.
    for (const OpCase& c : cases) {
      Arena a(*cpu);
      const std::vector<float> want = c.run(a);
      EXPECT_FALSE(want.empty()) << c.name;
      for (float v : want) ASSERT_TRUE(std::isfinite(v)) << c.name << ": the CPU reference is not finite";
    }
    GTEST_SKIP() << "no CUDA device on this machine: the CPU half of " << cases.size()
                 << " cases ran, the CUDA half needs a GPU";
  }
  std::unique_ptr<engine::CudaBackend> gpu = cuda_backend_or_die();
  for (const OpCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<float> want, got;
    {
      Arena a(*cpu);
      want = c.run(a);
    }
    {
      Arena a(*gpu);
      got = c.run(a);
      Status s = gpu->take_error();
      ASSERT_TRUE(s.ok()) << c.name << ": " << s.message();
    }
    ASSERT_EQ(got.size(), want.size()) << c.name;
    ASSERT_FALSE(want.empty()) << c.name;
    const double err = max_rel_error(got, want);
    EXPECT_LE(err, c.tol) << c.name << ": max error " << err << " of the output's scale";
  }
}

struct CodecCase {
  std::string name;
  QuantSpec spec;
};

QuantSpec spec(WeightCodec c, ScaleLayout l = ScaleLayout::kNone, int64_t group = 0, bool per_tensor = false,
               bool dq = false) {
  QuantSpec s;
  s.codec = c;
  s.layout = l;
  s.group = group;
  s.per_tensor = per_tensor;
  s.double_quant = dq;
  return s;
}

// Every weight codec, with its scale layouts.
std::vector<CodecCase> every_codec() {
  return {
      {"f32", spec(WeightCodec::kF32)},
      {"f16", spec(WeightCodec::kF16)},
      {"bf16", spec(WeightCodec::kBF16)},
      {"int8-row", spec(WeightCodec::kInt8, ScaleLayout::kRow)},
      {"int8-tensor", spec(WeightCodec::kInt8, ScaleLayout::kRow, 0, true)},
      {"int8-g32", spec(WeightCodec::kInt8, ScaleLayout::kGroup, 32)},
      {"fp8-row", spec(WeightCodec::kFp8, ScaleLayout::kRow)},
      {"fp8-g64", spec(WeightCodec::kFp8, ScaleLayout::kGroup, 64)},
      {"int4-g32", spec(WeightCodec::kInt4, ScaleLayout::kNone, 32)},
      {"nf4-b64", spec(WeightCodec::kNf4, ScaleLayout::kNone, 64)},
      {"nf4-b64-dq", spec(WeightCodec::kNf4, ScaleLayout::kNone, 64, false, true)},
      {"fp4-b64", spec(WeightCodec::kFp4, ScaleLayout::kNone, 64)},
      {"q8_0", spec(WeightCodec::kQ8_0)},
      {"q4_0", spec(WeightCodec::kQ4_0)},
      {"q4_1", spec(WeightCodec::kQ4_1)},
      {"q5_0", spec(WeightCodec::kQ5_0)},
      {"q5_1", spec(WeightCodec::kQ5_1)},
      {"q2_K", spec(WeightCodec::kQ2_K)},
      {"q3_K", spec(WeightCodec::kQ3_K)},
      {"q4_K", spec(WeightCodec::kQ4_K)},
      {"q5_K", spec(WeightCodec::kQ5_K)},
      {"q6_K", spec(WeightCodec::kQ6_K)},
  };
}

bool elementwise_codec(const QuantSpec& s) {
  return s.codec == WeightCodec::kF32 || s.codec == WeightCodec::kF16 || s.codec == WeightCodec::kBF16 ||
         ((s.codec == WeightCodec::kInt8 || s.codec == WeightCodec::kFp8) && s.layout == ScaleLayout::kRow);
}

QuantizedMatrix quantized(const QuantSpec& s, int64_t rows, int64_t cols, uint64_t seed) {
  const std::vector<float> w = random_normal(static_cast<size_t>(rows * cols), seed, 0.05f);
  Result<QuantizedMatrix> q = kernels::quantize_matrix(s, w.data(), rows, cols, "test matrix");
  GB_CHECK(q.ok());
  return std::move(*q);
}

std::string shape_name(const std::string& op, const std::string& what, std::initializer_list<int64_t> dims) {
  std::string s = op + " " + what;
  for (int64_t d : dims) s += " " + std::to_string(d);
  return s;
}

TEST(CudaBackendOps, OneShapePerOpAndFormatKeysOnTheNameWithoutItsShape) {
  EXPECT_EQ(op_and_format("linear q4_K +bias 17 37 256"), "linear q4_K +bias");
  EXPECT_EQ(op_and_format("copy within, shift -300"), "copy within, shift");
  EXPECT_EQ(op_and_format("rms_norm in place 3 64"), "rms_norm in place");
  EXPECT_EQ(op_and_format("add 1000"), "add");
}

TEST(CudaBackendOps, EmbeddingEveryCodec) {
  std::vector<OpCase> cases;
  for (const CodecCase& cc : every_codec()) {
    std::vector<int64_t> widths = {256};
    if (elementwise_codec(cc.spec)) widths.push_back(65);
    for (int64_t cols : widths)
      for (int64_t n : {1, 7}) {
        auto q = std::make_shared<QuantizedMatrix>(quantized(cc.spec, 37, cols, 11 + cols));
        std::vector<int32_t> ids;
        for (int64_t r = 0; r < n; ++r) ids.push_back(static_cast<int32_t>((r * 13 + 36) % 37));
        cases.push_back({shape_name("embedding", cc.name, {n, cols}), kTolEmbedding, [q, ids, cols](Arena& a) {
                           const PackedMatrix t = a.matrix(*q);
                           float* out = a.zeros(ids.size() * static_cast<size_t>(cols));
                           a.backend().embedding(ids.data(), static_cast<int64_t>(ids.size()), t, out);
                           return a.get(out, ids.size() * static_cast<size_t>(cols));
                         }});
      }
  }
  check_cases(cases);
}

TEST(CudaBackendOps, AddRows) {
  std::vector<OpCase> cases;
  for (int64_t n : {1, 9})
    for (int64_t dim : {33, 64}) {
      const std::vector<float> table = random_normal(static_cast<size_t>(16 * dim), 3);
      const std::vector<float> x = random_normal(static_cast<size_t>(n * dim), 4);
      std::vector<int64_t> pos;
      for (int64_t r = 0; r < n; ++r) pos.push_back((r * 5 + 3) % 16);
      cases.push_back({shape_name("add_rows", "", {n, dim}), kTolExactish, [=](Arena& a) {
                         const float* t = a.put(table);
                         float* xd = a.put(x);
                         a.backend().add_rows(pos.data(), n, t, dim, xd);
                         return a.get(xd, x.size());
                       }});
    }
  check_cases(cases);
}

TEST(CudaBackendOps, RmsNormAndLayerNorm) {
  std::vector<OpCase> cases;
  for (int64_t rows : {1, 3, 300})
    for (int64_t dim : {1, 33, 64, 4103}) {
      const std::vector<float> x = random_normal(static_cast<size_t>(rows * dim), 5, 3.0f);
      const std::vector<float> w = random_normal(static_cast<size_t>(dim), 6);
      const std::vector<float> b = random_normal(static_cast<size_t>(dim), 7);
      for (bool in_place : {false, true}) {
        const std::string how = in_place ? "in place" : "";
        cases.push_back({shape_name("rms_norm", how, {rows, dim}), kTolNorm, [=](Arena& a) {
                           float* xd = a.put(x);
                           float* out = in_place ? xd : a.zeros(x.size());
                           a.backend().rms_norm(xd, rows, dim, a.put(w), 1e-5f, out);
                           return a.get(out, x.size());
                         }});
        cases.push_back({shape_name("layer_norm", how, {rows, dim}), kTolNorm, [=](Arena& a) {
                           float* xd = a.put(x);
                           float* out = in_place ? xd : a.zeros(x.size());
                           a.backend().layer_norm(xd, rows, dim, a.put(w), a.put(b), 1e-5f, out);
                           return a.get(out, x.size());
                         }});
      }
      // The residual add fused in: the sum x + y left in x, and the norm of it.
      const std::vector<float> y = random_normal(static_cast<size_t>(rows * dim), 8, 2.0f);
      for (bool layer : {false, true})
        cases.push_back({shape_name(layer ? "add_layer_norm" : "add_rms_norm", "", {rows, dim}), kTolNorm,
                         [=](Arena& a) {
                           float* xd = a.put(x);
                           float* out = a.zeros(x.size());
                           if (layer) a.backend().add_layer_norm(xd, a.put(y), rows, dim, a.put(w), a.put(b), 1e-5f, out);
                           else a.backend().add_rms_norm(xd, a.put(y), rows, dim, a.put(w), 1e-5f, out);
                           std::vector<float> got = a.get(out, x.size());
                           const std::vector<float> sum = a.get(xd, x.size());
                           got.insert(got.end(), sum.begin(), sum.end());
                           return got;
                         }});
    }
  check_cases(cases);
}

TEST(CudaBackendOps, LinearEveryCodec) {
  std::vector<OpCase> cases;
  for (const CodecCase& cc : every_codec()) {
    std::vector<std::pair<int64_t, int64_t>> shapes = {{37, 256}};  // out, in
    if (elementwise_codec(cc.spec)) shapes.push_back({33, 65});
    for (auto [out, in] : shapes)
      for (int64_t rows : {1, 2, 5, 16, 17, 40}) {
        auto q = std::make_shared<QuantizedMatrix>(quantized(cc.spec, out, in, 21 + out));
        const std::vector<float> x = random_normal(static_cast<size_t>(rows * in), 22);
        const std::vector<float> bias = random_normal(static_cast<size_t>(out), 23);
        for (bool with_bias : {false, true}) {
          cases.push_back({shape_name("linear", cc.name + (with_bias ? " +bias" : ""), {rows, out, in}),
                           rows <= 16 ? kTolLinearGemv : kTolLinearPrefill, [=](Arena& a) {
                             LinearWeights lw;
                             lw.parts.push_back(a.matrix(*q));
                             lw.b = with_bias ? a.put(bias) : nullptr;
                             float* y = a.zeros(static_cast<size_t>(rows * out));
                             a.backend().linear(a.put(x), rows, lw, y);
                             return a.get(y, static_cast<size_t>(rows * out));
                           }});
        }
      }
  }
  // A fused q|k|v whose parts are stored in different codecs, with a bias.
  for (int64_t rows : {1, 17}) {
    auto p0 = std::make_shared<QuantizedMatrix>(quantized(spec(WeightCodec::kF16), 64, 256, 31));
    auto p1 = std::make_shared<QuantizedMatrix>(quantized(spec(WeightCodec::kQ8_0), 32, 256, 32));
    auto p2 = std::make_shared<QuantizedMatrix>(quantized(spec(WeightCodec::kQ4_K), 32, 256, 33));
    const std::vector<float> x = random_normal(static_cast<size_t>(rows * 256), 34);
    const std::vector<float> bias = random_normal(128, 35);
    cases.push_back({shape_name("linear", "parts f16|q8_0|q4_K +bias", {rows, 128, 256}),
                     rows <= 16 ? kTolLinearGemv : kTolLinearPrefill, [=](Arena& a) {
                       LinearWeights lw;
                       lw.parts = {a.matrix(*p0), a.matrix(*p1), a.matrix(*p2)};
                       lw.b = a.put(bias);
                       float* y = a.zeros(static_cast<size_t>(rows * 128));
                       a.backend().linear(a.put(x), rows, lw, y);
                       return a.get(y, static_cast<size_t>(rows * 128));
                     }});
  }
  check_cases(cases);
}

std::vector<float> inv_freq(int64_t rot_dim, double theta) {
  std::vector<float> f(static_cast<size_t>(rot_dim / 2));
  for (int64_t i = 0; i < rot_dim / 2; ++i)
    f[static_cast<size_t>(i)] = static_cast<float>(1.0 / std::pow(theta, 2.0 * i / static_cast<double>(rot_dim)));
  return f;
}

TEST(CudaBackendOps, RopeFullAndPartial) {
  std::vector<OpCase> cases;
  const int64_t heads = 4, hd = 64;
  for (int64_t rot : {64, 32, 16})
    for (int64_t rows : {1, 9}) {
      const int64_t stride = heads * hd + 2 * 2 * hd;  // a qkv row: q then k and v
      const std::vector<float> x = random_normal(static_cast<size_t>(rows * stride), 41);
      std::vector<int64_t> pos;
      for (int64_t r = 0; r < rows; ++r) pos.push_back(r * 611 + 7);  // up to ~5000
      const std::vector<float> f = inv_freq(rot, 10000.0);
      cases.push_back({shape_name("rope", "rot_dim", {rot, rows}), kTolRope, [=](Arena& a) {
                         float* xd = a.put(x);
                         a.backend().rope(xd, rows, stride, heads, hd, pos.data(), RopeParams{rot, f.data()});
                         return a.get(xd, x.size());
                       }});
    }
  check_cases(cases);
}

struct KvCase {
  std::string name;
  KvElement e;
};
std::vector<KvCase> every_kv_element() {
  return {{"f32", KvElement::kF32},   {"f16", KvElement::kF16},   {"bf16", KvElement::kBF16},
          {"int8", KvElement::kInt8}, {"fp8", KvElement::kFp8},   {"int4", KvElement::kInt4},
          {"int4-g32", KvElement::kInt4G32}, {"int8-calib", KvElement::kInt8Calib}};
}

// int8-calib's [kv_heads][2] (scale, zero point) for K or V.
std::vector<float> calib_table(int64_t kv_heads, uint64_t seed) {
  std::vector<float> t;
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> s(0.02f, 0.05f), z(-0.2f, 0.2f);
  for (int64_t h = 0; h < kv_heads; ++h) {
    t.push_back(s(g));
    t.push_back(z(g));
  }
  return t;
}

// Slots [0, slots) of a plane of layout L as f32 [slots, heads * head_dim].
std::vector<float> decode_plane(const kernels::KvSlotLayout& L, const std::vector<uint8_t>& plane, int64_t slots,
                                const std::vector<float>& calib) {
  std::vector<float> out(static_cast<size_t>(slots * L.heads * L.head_dim));
  for (int64_t s = 0; s < slots; ++s) {
    const uint8_t* slot = plane.data() + static_cast<size_t>(s) * L.slot_bytes();
    for (int64_t h = 0; h < L.heads; ++h) {
      float* o = out.data() + (s * L.heads + h) * L.head_dim;
      if (kernels::kv_element_quantized(L.element)) {
        kernels::kv_dequantize_head(L, slot, h, calib.empty() ? nullptr : calib.data(), o);
      } else {
        for (int64_t j = 0; j < L.head_dim; ++j) o[j] = kernels::load_kv_element(slot, L.element, h * L.head_dim + j);
      }
    }
  }
  return out;
}

// A paged cache's planes (kernels/codecs/kv_cache_view.h) in an arena: pages of
// 2^shift slots, page i holding keys then values of slots [i 2^shift, (i + 1) 2^shift)
// (zeros past the planes), allocated last page first so that no kernel can count on
// adjacent pages, and their table.
struct PagedPlanes {
  std::vector<uint8_t*> pages;
  uint8_t* const* table = nullptr;
  int32_t shift = 0;
  size_t sb = 0;
  size_t page_slots() const { return size_t{1} << shift; }
};

PagedPlanes put_paged(Arena& a, const std::vector<uint8_t>& k, const std::vector<uint8_t>& v, size_t sb,
                      int32_t shift) {
  PagedPlanes p;
  p.shift = shift;
  p.sb = sb;
  const size_t slots = k.size() / sb, P = p.page_slots(), n = (slots + P - 1) / P;
  p.pages.resize(n);
  for (size_t i = n; i-- > 0;) {
    std::vector<uint8_t> image(2 * P * sb, 0);
    for (size_t s = i * P; s < std::min(slots, (i + 1) * P); ++s) {
      std::copy_n(k.begin() + static_cast<std::ptrdiff_t>(s * sb), sb, image.begin() + static_cast<std::ptrdiff_t>((s - i * P) * sb));
      std::copy_n(v.begin() + static_cast<std::ptrdiff_t>(s * sb), sb,
                  image.begin() + static_cast<std::ptrdiff_t>((P + s - i * P) * sb));
    }
    p.pages[i] = static_cast<uint8_t*>(a.bytes(image.data(), image.size()));
  }
  p.table = static_cast<uint8_t* const*>(a.bytes(p.pages.data(), n * sizeof(uint8_t*)));
  return p;
}

void use_pages(KvLayerView& view, const PagedPlanes& p) {
  view.k = view.v = nullptr;
  view.pages = p.table;
  view.page_shift = p.shift;
  view.k_offset = 0;
  view.v_offset = static_cast<int64_t>(p.page_slots() * p.sb);
}

// Plane `which` (0 keys, 1 values) of `slots` slots read back from the pages.
std::vector<uint8_t> get_paged(Arena& a, const PagedPlanes& p, int which, size_t slots) {
  std::vector<uint8_t> out;
  const size_t P = p.page_slots();
  for (size_t i = 0; i * P < slots; ++i) {
    const std::vector<uint8_t> b = a.get_bytes(p.pages[i] + which * P * p.sb, std::min(P, slots - i * P) * p.sb);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

TEST(CudaBackendOps, KvStoreEveryElement) {
  std::vector<OpCase> cases;
  const int64_t kvh = 2, hd = 64, kv = kvh * hd, slots = 12;
  for (const KvCase& kc : every_kv_element())
    for (auto [n, shift, scattered] : {std::tuple{int64_t{1}, -1, false}, std::tuple{int64_t{6}, -1, false},
                                       std::tuple{int64_t{6}, 2, false}, std::tuple{int64_t{6}, 2, true}}) {
      const int64_t stride = 4 * hd + 2 * kv;
      const std::vector<float> rows = random_normal(static_cast<size_t>(n * stride), 51);
      const std::vector<float> kcal = calib_table(kvh, 52), vcal = calib_table(kvh, 53);
      const bool calib = kc.e == KvElement::kInt8Calib;
      const double tol = !kernels::kv_element_quantized(kc.e)                              ? kTolKvStoreFloat
                         : (kc.e == KvElement::kInt4 || kc.e == KvElement::kInt4G32) ? kTolKvStore4
                                                                                       : kTolKvStore8;
      // shift >= 0: pages of 2^shift slots, the rows written across two of them.
      // scattered: the rows' slots do not follow each other (each row's slot is its own
      // visible length less one, as a batch's decode step writes them).
      cases.push_back({shape_name("kv_store", kc.name + (shift >= 0 ? " paged" : "") + (scattered ? " scattered" : ""),
                                  {n}),
                       tol, [=](Arena& a) {
                         const kernels::KvSlotLayout L{kc.e, kvh, hd};
                         const size_t plane = static_cast<size_t>(slots) * L.slot_bytes();
                         KvLayerView view;
                         PagedPlanes paged;
                         if (shift >= 0) {
                           const std::vector<uint8_t> zero(plane, 0);
                           paged = put_paged(a, zero, zero, L.slot_bytes(), shift);
                           use_pages(view, paged);
                         } else {
                           view.k = a.bytes(std::vector<uint8_t>(plane, 0).data(), plane);
                           view.v = a.bytes(std::vector<uint8_t>(plane, 0).data(), plane);
                         }
                         view.len = 3 + n;
                         view.element = kc.e;
                         view.kv_heads = kvh;
                         view.head_dim = hd;
                         if (calib) {
                           view.k_calib = a.put(kcal);
                           view.v_calib = a.put(vcal);
                         }
                         const float* r = a.put(rows);
                         std::vector<int64_t> visible;  // rows into slots 3, 4, ... or scattered
                         const int64_t order[6] = {3, 9, 5, 11, 4, 7};
                         for (int64_t i = 0; i < n; ++i) visible.push_back((scattered ? order[i] : 3 + i) + 1);
                         a.backend().kv_store(r + 4 * hd, r + 4 * hd + kv, n, stride, kv, view, visible.data());
                         const std::vector<uint8_t> kb = shift >= 0 ? get_paged(a, paged, 0, slots) : a.get_bytes(view.k, plane);
                         const std::vector<uint8_t> vb = shift >= 0 ? get_paged(a, paged, 1, slots) : a.get_bytes(view.v, plane);
                         std::vector<float> k = decode_plane(L, kb, slots, calib ? kcal : std::vector<float>{});
                         std::vector<float> v = decode_plane(L, vb, slots, calib ? vcal : std::vector<float>{});
                         k.insert(k.end(), v.begin(), v.end());
                         return k;
                       }});
    }
  check_cases(cases);
}

TEST(CudaBackendOps, AttentionEveryKvElement) {
  // The cache bytes are written once by the CPU backend and copied to both sides, so
  // the case measures attention alone.
  std::unique_ptr<Backend> writer = engine::make_cpu_backend(1);
  std::vector<OpCase> cases;
  struct Shape {
    int64_t heads, kv_heads, head_dim, len, n;
    bool streaming;
    int32_t page_shift = -1;  // >= 0: a paged cache, pages of 2^page_shift slots
  };
  const std::vector<Shape> shapes = {
      {4, 2, 64, 37, 1, false},     {4, 2, 64, 37, 5, false},    {4, 1, 32, 300, 1, false},
      {8, 8, 64, 5, 5, false},      {4, 2, 64, 40, 1, true},     {4, 2, 64, 40, 3, true},
      {4, 2, 64, 37, 1, false, 2},  {4, 2, 64, 37, 5, false, 0}, {4, 1, 32, 300, 1, false, 4},
      {4, 1, 32, 300, 19, false, 5},
  };
  for (const KvCase& kc : every_kv_element())
    for (const Shape& sh : shapes) {
      const int64_t kv = sh.kv_heads * sh.head_dim, q_stride = sh.heads * sh.head_dim + 2 * kv;
      const kernels::KvSlotLayout L{kc.e, sh.kv_heads, sh.head_dim};
      const size_t plane = static_cast<size_t>(sh.len) * L.slot_bytes();
      const bool calib = kc.e == KvElement::kInt8Calib;
      const std::vector<float> kcal = calib_table(sh.kv_heads, 61), vcal = calib_table(sh.kv_heads, 62);
      std::vector<uint8_t> kbytes, vbytes;
      {
        Arena w(*writer);
        KvLayerView view;
        view.k = w.bytes(nullptr, plane);
        view.v = w.bytes(nullptr, plane);
        view.len = sh.len;
        view.element = kc.e;
        view.kv_heads = sh.kv_heads;
        view.head_dim = sh.head_dim;
        if (calib) {
          view.k_calib = w.put(kcal);
          view.v_calib = w.put(vcal);
        }
        const std::vector<float> k = random_normal(static_cast<size_t>(sh.len * kv), 63);
        const std::vector<float> v = random_normal(static_cast<size_t>(sh.len * kv), 64);
        std::vector<int64_t> all(static_cast<size_t>(sh.len));
        for (int64_t s = 0; s < sh.len; ++s) all[static_cast<size_t>(s)] = s + 1;
        writer->kv_store(w.put(k), w.put(v), sh.len, kv, kv, view, all.data());
        kbytes = w.get_bytes(view.k, plane);
        vbytes = w.get_bytes(view.v, plane);
      }
      const std::vector<float> q = random_normal(static_cast<size_t>(sh.n * q_stride), 65);
      std::vector<int64_t> visible;
      for (int64_t r = 0; r < sh.n; ++r) visible.push_back(sh.len - sh.n + r + 1);
      const int64_t rot = sh.streaming ? sh.head_dim / 2 : 0;
      const std::vector<float> f = inv_freq(std::max<int64_t>(rot, 2), 10000.0);
      const double tol = kernels::kv_element_quantized(kc.e) ? kTolAttentionQuantKv : kTolAttentionFloatKv;
      cases.push_back(
          {shape_name("attention",
                      kc.name + (sh.streaming ? " unrotated keys" : "") +
                          (sh.page_shift >= 0 ? " pages of " + std::to_string(1 << sh.page_shift) : ""),
                      {sh.heads, sh.kv_heads, sh.head_dim, sh.len, sh.n}),
           tol, [=](Arena& a) {
             KvLayerView view;
             if (sh.page_shift >= 0) {
               use_pages(view, put_paged(a, kbytes, vbytes, L.slot_bytes(), sh.page_shift));
             } else {
               view.k = a.bytes(kbytes.data(), plane);
               view.v = a.bytes(vbytes.data(), plane);
             }
             view.len = sh.len;
             view.element = kc.e;
             view.keys_unrotated = sh.streaming;
             view.kv_heads = sh.kv_heads;
             view.head_dim = sh.head_dim;
             if (calib) {
               view.k_calib = a.put(kcal);
               view.v_calib = a.put(vcal);
             }
             const size_t out_n = static_cast<size_t>(sh.n * sh.heads * sh.head_dim);
             float* out = a.zeros(out_n);
             a.backend().attention(a.put(q), sh.n, q_stride, sh.heads, sh.kv_heads, sh.head_dim, view, visible.data(),
                                   RopeParams{rot, f.data()}, 1.0f / std::sqrt(static_cast<float>(sh.head_dim)), out);
             return a.get(out, out_n);
           }});
    }
  check_cases(cases);
}

TEST(CudaBackendOps, AddSiluMulGelu) {
  std::vector<OpCase> cases;
  for (int64_t n : {1, 1000, 100003}) {
    const std::vector<float> x = random_normal(static_cast<size_t>(n), 71), y = random_normal(static_cast<size_t>(n), 72);
    cases.push_back({shape_name("add", "", {n}), kTolExactish, [=](Arena& a) {
                       float* xd = a.put(x);
                       a.backend().add(xd, a.put(y), n);
                       return a.get(xd, x.size());
                     }});
    for (bool tanh_form : {false, true})
      cases.push_back({shape_name("gelu", tanh_form ? "tanh" : "erf", {n}), kTolActivation, [=](Arena& a) {
                         float* xd = a.put(x);
                         a.backend().gelu(xd, n, tanh_form);
                         return a.get(xd, x.size());
                       }});
  }
  for (int64_t rows : {1, 7})
    for (int64_t inner : {1, 130, 2816}) {
      const std::vector<float> gu = random_normal(static_cast<size_t>(rows * 2 * inner), 73, 2.0f);
      cases.push_back({shape_name("silu_mul", "", {rows, inner}), kTolActivation, [=](Arena& a) {
                         float* out = a.zeros(static_cast<size_t>(rows * inner));
                         a.backend().silu_mul(a.put(gu), rows, inner, out);
                         return a.get(out, static_cast<size_t>(rows * inner));
                       }});
    }
  check_cases(cases);
}

// Logits with ties (values on a grid of 1/4) and signed zeros (-0 ties with +0).
std::vector<float> tied_logits(int64_t rows, int64_t vocab, uint64_t seed) {
  std::vector<float> l = random_normal(static_cast<size_t>(rows * vocab), seed, 3.0f);
  for (size_t i = 0; i < l.size(); ++i) {
    l[i] = std::round(l[i] * 4) / 4;
    if (l[i] == 0 && i % 2 == 1) l[i] = -0.0f;
  }
  return l;
}

std::vector<float> as_floats(const std::vector<int32_t>& ids) { return std::vector<float>(ids.begin(), ids.end()); }

TEST(CudaBackendOps, LogitsArgmaxSampleAndTargetLogProbs) {
  std::vector<OpCase> cases;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1}, {1, 33}, {5, 1000}, {70, 1000}, {1, 128256}};
  for (const auto& shape : shapes) {
    const int64_t rows = shape.first, vocab = shape.second;
    const std::vector<float> l = tied_logits(rows, vocab, static_cast<uint64_t>(91 + vocab));
    cases.push_back({shape_name("argmax_rows", "", {rows, vocab}), kTolTokenIds, [=](Arena& a) {
                       std::vector<int32_t> ids(static_cast<size_t>(rows), -1);
                       a.backend().argmax_rows(a.put(l), rows, vocab, ids.data());
                       return as_floats(ids);
                     }});
    std::vector<int32_t> targets(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      targets[static_cast<size_t>(r)] = r % 4 == 3 ? -1 : static_cast<int32_t>((r * 7919) % vocab);
    cases.push_back({shape_name("target_log_probs", "", {rows, vocab}), kTolLogProb, [=](Arena& a) {
                       std::vector<double> lp(static_cast<size_t>(rows), 1.0);
                       a.backend().target_log_probs(a.put(l), rows, vocab, targets.data(), lp.data());
                       return std::vector<float>(lp.begin(), lp.end());
                     }});
    struct Cut {
      const char* name;
      engine::SamplingCut cut;
    };
    for (const Cut& c : {Cut{"t1", {1.0, 0, 1.0}}, Cut{"t0.7 k1", {0.7, 1, 1.0}}, Cut{"t0.8 k40", {0.8, 40, 1.0}},
                         Cut{"t1.2 p0.9", {1.2, 0, 0.9}}, Cut{"t0.5 k50 p0.6", {0.5, 50, 0.6}},
                         Cut{"t2 p0.01", {2.0, 0, 0.01}}}) {
      // Four draws of each row, as four decode steps would make them.
      std::mt19937_64 g(static_cast<uint64_t>(rows * 131 + vocab));
      std::vector<double> u(static_cast<size_t>(4 * rows));
      for (double& x : u) x = static_cast<double>(g() >> 11) * 0x1.0p-53;
      u[0] = 0;  // the first candidate
      if (u.size() > 1) u[1] = 1 - 0x1.0p-53;  // the last kept one
      const engine::SamplingCut cut = c.cut;
      cases.push_back({shape_name("sample_rows", c.name, {rows, vocab}), kTolTokenIds, [=](Arena& a) {
                         const float* ld = a.put(l);
                         std::vector<int32_t> all;
                         for (int draw = 0; draw < 4; ++draw) {
                           std::vector<int32_t> ids(static_cast<size_t>(rows), -1);
                           a.backend().sample_rows(ld, rows, vocab, cut, u.data() + draw * rows, ids.data());
                           all.insert(all.end(), ids.begin(), ids.end());
                         }
                         return as_floats(all);
                       }});
    }
  }
  check_cases(cases);
}

// The device draw of synthetic weights (kernels/cuda/synthetic/) against the host
// generator (engine/weights/synthetic.cc), bit for bit, at offsets and odd lengths.
TEST(CudaBackendOps, SyntheticFillIsTheHostGeneratorBitForBit) {
  std::vector<OpCase> cases;
  for (uint64_t begin : {uint64_t{0}, uint64_t{123457}})
    for (int64_t n : {1, 1000, 300001})
      for (const auto& init : {std::pair{0.0f, 0.0625f}, std::pair{1.0f, 0.02f}}) {
        const float mean = init.first, stddev = init.second;
        const uint64_t key = engine::synthetic_tensor_key(7, "model.layers.0.mlp.up_proj.weight");
        cases.push_back({shape_name("synthetic_fill", mean == 0 ? "projection" : "norm", {int64_t(begin), n}), 0.0,
                         [=](Arena& a) {
                           std::vector<float> out(static_cast<size_t>(n));
                           if (a.backend().name() == "cpu") {
                             engine::synthetic_fill(key, mean, stddev, begin, static_cast<uint64_t>(n), out.data());
                             return out;
                           }
                           float* d = a.zeros(out.size());
                           a.backend().synchronize();  // the zeros are on the backend's stream
                           const Status st = kernels::cuda::synthetic_fill(nullptr, key, mean, stddev, begin, n, d);
                           EXPECT_TRUE(st.ok()) << st.message();
                           EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // stream 0, not the backend's
                           return a.get(d, out.size());
                         }});
      }
  check_cases(cases);
}

// The backend op that the loader draws and quantizes synthetic matrices with
// (quantize_synthetic), every codec it makes: its codes, scales and zeros (bytes,
// read back as values) at an offset into their buffers. On the CPU the case also
// checks itself against the host path, the host generator's f32 matrix through
// kernels/quantize/quantize_matrix.h, so its CPU half is a test too. Double
// quantization is the loader's (the op's absmax is nf4-b64's).
TEST(CudaBackendOps, QuantizeSyntheticIsTheHostQuantizerBitForBit) {
  std::vector<OpCase> cases;
  const uint64_t key = engine::synthetic_tensor_key(5, "model.layers.1.self_attn.o_proj.weight");
  for (const CodecCase& cc : every_codec()) {
    if (elementwise_codec(cc.spec) && cc.spec.layout == ScaleLayout::kNone) continue;  // fill_synthetic's
    if (cc.spec.double_quant) continue;
    for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 256}, {37, 512}, {300, 64}}) {
      const QuantSpec sp = cc.spec;
      if (!engine::make_cpu_backend(1)->quantizes_synthetic(sp, cols)) continue;  // the K types: rows of 256
      cases.push_back({shape_name("quantize_synthetic", cc.name, {rows, cols}), 0.0, [=](Arena& a) {
        Backend& b = a.backend();
        EXPECT_TRUE(b.quantizes_synthetic(sp, cols));
        QuantSpec plain = sp;
        plain.double_quant = false;
        const std::vector<float> w = [&] {
          std::vector<float> v(static_cast<size_t>(rows * cols));
          engine::synthetic_fill(key, 0.0f, 0.04f, 0, v.size(), v.data());
          return v;
        }();
        const QuantizedMatrix host = kernels::quantize_matrix(plain, w.data(), rows, cols, "host").value();
        // The op's nf4/fp4 scales are the f32 absmax; the host's are too without dq.
        const size_t off = 16;
        auto buffer = [&](size_t n) { return b.alloc(off + std::max<size_t>(n, 1)).value(); };
        std::unique_ptr<Buffer> codes = buffer(host.codes.size()), scales = buffer(host.scales.size()),
                                zeros = buffer(host.zeros.size());
        kernels::QuantizedArraysOut out;
        out.codes = static_cast<uint8_t*>(codes->data()) + off;
        out.scales = host.scales.empty() ? nullptr : static_cast<uint8_t*>(scales->data()) + off;
        out.zeros = host.zeros.empty() ? nullptr : static_cast<uint8_t*>(zeros->data()) + off;
        out.row_bytes = host.row_bytes;
        b.quantize_synthetic(key, 0.0f, 0.04f, sp, rows, cols, out);
        std::vector<uint8_t> got_codes(host.codes.size()), got_scales(host.scales.size()), got_zeros(host.zeros.size());
        b.download(*codes, off, got_codes.data(), got_codes.size());
        if (!got_scales.empty()) b.download(*scales, off, got_scales.data(), got_scales.size());
        if (!got_zeros.empty()) b.download(*zeros, off, got_zeros.data(), got_zeros.size());
        if (b.name() == "cpu") {
          EXPECT_EQ(got_codes, host.codes) << "codes";
          EXPECT_EQ(got_scales, host.scales) << "scales";
          EXPECT_EQ(got_zeros, host.zeros) << "zeros";
        }
        std::vector<float> all;
        for (const auto* v : {&got_codes, &got_scales, &got_zeros})
          for (uint8_t x : *v) all.push_back(static_cast<float>(x));
        return all;
      }});
    }
  }
  EXPECT_EQ(cases.size(), 49u);  // 13 codecs and layouts in 3 shapes, the 5 K types in 2 (rows of 256 and 512)
  check_cases(cases);
}

// The backend op that the loader draws synthetic matrices with (fill_synthetic):
// f32, and f16 / bf16 codes (read back as their values), at an offset into a
// buffer. On the CPU the case also checks itself against the host generator and
// the host's rounding, so its CPU half is a test too.
TEST(CudaBackendOps, FillSyntheticEveryFloatCodecIsTheHostsBits) {
  std::vector<OpCase> cases;
  const uint64_t key = engine::synthetic_tensor_key(3, "model.embed_tokens.weight");
  for (WeightCodec codec : {WeightCodec::kF32, WeightCodec::kF16, WeightCodec::kBF16})
    for (int64_t n : {1, 4099, 200003}) {
      const uint64_t begin = 77;
      const size_t elem = codec == WeightCodec::kF32 ? 4 : 2, offset = 6 * elem;
      cases.push_back({shape_name("fill_synthetic", kernels::codec_name(codec), {n}), 0.0, [=](Arena& a) {
                         std::unique_ptr<Buffer> b = a.backend().alloc(offset + static_cast<size_t>(n) * elem).value();
                         EXPECT_TRUE(a.backend().fill_synthetic(*b, offset, key, 0.0f, 0.03f, begin, n, codec));
                         std::vector<uint8_t> raw(static_cast<size_t>(n) * elem);
                         a.backend().download(*b, offset, raw.data(), raw.size());
                         std::vector<float> out(static_cast<size_t>(n));
                         for (size_t j = 0; j < out.size(); ++j) {
                           uint16_t h = 0;
                           if (codec == WeightCodec::kF32) {
                             std::memcpy(&out[j], raw.data() + 4 * j, 4);
                             continue;
                           }
                           std::memcpy(&h, raw.data() + 2 * j, 2);
                           out[j] = codec == WeightCodec::kF16 ? kernels::f16_to_f32(h) : kernels::bf16_to_f32(h);
                         }
                         if (a.backend().name() == "cpu") {
                           std::vector<float> host(out.size());
                           engine::synthetic_fill(key, 0.0f, 0.03f, begin, static_cast<uint64_t>(n), host.data());
                           for (size_t j = 0; j < host.size(); ++j) {
                             const float want = codec == WeightCodec::kF32   ? host[j]
                                                : codec == WeightCodec::kF16 ? kernels::f16_to_f32(kernels::f32_to_f16(host[j]))
                                                                             : kernels::bf16_to_f32(kernels::f32_to_bf16(host[j]));
                             if (out[j] != want) {
                               ADD_FAILURE() << "element " << j << ": " << out[j] << ", the host draws " << want;
                               break;
                             }
                           }
                         }
                         return out;
                       }});
    }
  check_cases(cases);
}

TEST(CudaBackendOps, CopyWithinAndBetweenBuffersOverlapsIncluded) {
  std::vector<OpCase> cases;
  const std::vector<float> x = random_normal(1000, 81);
  const size_t bytes = x.size() * sizeof(float);
  for (int64_t shift : {-300, -1, 1, 7, 300, 0}) {
    cases.push_back({shape_name("copy", "within, shift", {shift}), 0.0, [=](Arena& a) {
                       // 300 floats from 350 to 350 + shift: inside the 1000 for every shift.
                       const size_t n = 300, src = 350, dst = static_cast<size_t>(350 + shift);
                       std::unique_ptr<Buffer> b = a.backend().alloc(bytes).value();
                       a.backend().upload(*b, 0, x.data(), bytes);
                       a.backend().copy(*b, dst * sizeof(float), *b, src * sizeof(float), n * sizeof(float));
                       std::vector<float> out(x.size());
                       a.backend().download(*b, 0, out.data(), bytes);
                       return out;
                     }});
  }
  cases.push_back({"copy between buffers", 0.0, [=](Arena& a) {
                     std::unique_ptr<Buffer> from = a.backend().alloc(bytes).value();
                     std::unique_ptr<Buffer> to = a.backend().alloc(bytes).value();
                     a.backend().upload(*from, 0, x.data(), bytes);
                     const std::vector<float> zero(x.size(), 0.0f);
                     a.backend().upload(*to, 0, zero.data(), bytes);
                     a.backend().copy(*to, 50 * sizeof(float), *from, 100 * sizeof(float), 600 * sizeof(float));
                     std::vector<float> out(x.size());
                     a.backend().download(*to, 0, out.data(), bytes);
                     return out;
                   }});
  check_cases(cases);
}

}  // namespace
}  // namespace gb::testing

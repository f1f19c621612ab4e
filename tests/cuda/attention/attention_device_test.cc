// The CUDA kv_store and attention (kernels/cuda/attention/) against the CPU kernels
// (kernels/cpu/kv_store.h, kernels/cpu/attention.h, used as the CPU backend uses
// them) on the same random inputs, for every KvElement (needs a GPU; skipped with a
// message elsewhere):
//  - kv_store: the device writes the same bytes as the CPU, bit for bit, into planes
//    poisoned around the written slots (so a stray write shows too), over odd shapes
//    (head_dim 33 and 80, 1..8 kv heads, a row of +0/-0, a constant row, an offset
//    row, row strides wider than the row);
//  - attention: decode (n = 1) at len 1, 7, 300 and 4097 (and a row that sees no
//    slot), prefill n = 37 after an 11-slot prefix with causal visible[], MHA and GQA
//    4:1, head_dim 64 and 128, keys stored rotated and unrotated (RoPE at read time,
//    full and partial rotary), plus an odd shape (head_dim 80, GQA 3:1); the cache the
//    device reads is the one its kv_store wrote (checked equal to the CPU's first),
//    the output is poisoned with NaN before the call, and the error is judged against
//    a named tolerance per element. OneShapePerElement is the small subset for
//    compute-sanitizer.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "kernels/codecs/kv_quant.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/kv_store.h"
#include "kernels/cuda/attention/attention.h"
#include "kernels/cuda/attention/kv_store.h"
#include "tests/cuda/gpu_test_util.h"

namespace gb::kernels::cuda {
namespace {

// Max |device - cpu| over the largest |cpu| output. Both read the same stored bytes,
// so what differs is f32 rounding: summation order, fma contraction, the device's
// expf/cosf/sinf (within 2 ulp) and, for the quantized elements, the fused dot
// product's order (the CPU scales sum(q c) once per group; the device decodes each
// element first). Bugs (a wrong slot, scale, rotation or mask) give errors of 1e-2 and
// more with these inputs (peaked softmax: q has standard deviation 2).
constexpr double kF32Tol = 1e-4;
constexpr double kF16Tol = 1e-4;
constexpr double kBF16Tol = 1e-4;
constexpr double kInt8Tol = 3e-4;
constexpr double kFp8Tol = 3e-4;
constexpr double kInt4Tol = 3e-4;
constexpr double kInt4G32Tol = 3e-4;
constexpr double kInt8CalibTol = 3e-4;

struct ElementCase {
  KvElement element;
  const char* name;
  double tol;
};
constexpr ElementCase kElements[] = {
    {KvElement::kF32, "f32", kF32Tol},          {KvElement::kF16, "f16", kF16Tol},
    {KvElement::kBF16, "bf16", kBF16Tol},       {KvElement::kInt8, "int8", kInt8Tol},
    {KvElement::kFp8, "fp8", kFp8Tol},          {KvElement::kInt4, "int4", kInt4Tol},
    {KvElement::kInt4G32, "int4_g32", kInt4G32Tol}, {KvElement::kInt8Calib, "int8_calib", kInt8CalibTol}};

// gtest names and prints a parameter by its element (not its bytes).
void PrintTo(const ElementCase& e, std::ostream* os) { *os << e.name; }

#define CUDA_OK(expr)                                                               \
  do {                                                                              \
    const cudaError_t e_ = (expr);                                                  \
    ASSERT_EQ(e_, cudaSuccess) << #expr << ": " << cudaGetErrorString(e_);          \
  } while (0)

// Device bytes, freed on every path out.
class DeviceBytes {
 public:
  DeviceBytes() = default;
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  ~DeviceBytes() { cudaFree(p_); }
  cudaError_t alloc(size_t bytes) { return cudaMalloc(&p_, bytes > 0 ? bytes : 1); }
  template <class T>
  T* as() const { return static_cast<T*>(p_); }
  void* get() const { return p_; }

 private:
  void* p_ = nullptr;
};

template <class T>
void upload(DeviceBytes& d, const std::vector<T>& h) {
  CUDA_OK(d.alloc(h.size() * sizeof(T)));
  CUDA_OK(cudaMemcpy(d.get(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}

template <class T>
void download(const DeviceBytes& d, std::vector<T>& h) {
  CUDA_OK(cudaMemcpy(h.data(), d.get(), h.size() * sizeof(T), cudaMemcpyDeviceToHost));
}

std::vector<float> normal(size_t n, std::mt19937& g, float sd, float offset) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = offset + d(g);
  return v;
}

// The first differing byte, or -1.
int64_t first_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return a.size() == b.size() ? -1 : static_cast<int64_t>(std::min(a.size(), b.size()));
}

constexpr uint8_t kPoison = 0xA5;

// One layer's cache of `slots` slots on the host (stored by the CPU kernels) and on
// the device (stored by kv_store), both planes poisoned first.
struct Cache {
  KvSlotLayout layout;
  int64_t slots = 0;
  std::vector<uint8_t> hk, hv;
  std::vector<float> k_calib, v_calib;
  DeviceBytes dk, dv, dk_calib, dv_calib;

  KvCacheView view(int64_t len) const {
    KvCacheView c;
    c.k = dk.get();
    c.v = dv.get();
    c.len = len;
    c.element = layout.element;
    c.kv_heads = layout.heads;
    c.head_dim = layout.head_dim;
    c.k_calib = layout.element == KvElement::kInt8Calib ? dk_calib.as<float>() : nullptr;
    c.v_calib = layout.element == KvElement::kInt8Calib ? dv_calib.as<float>() : nullptr;
    return c;
  }
};

void make_cache(Cache& c, KvElement e, int64_t kv_heads, int64_t head_dim, int64_t slots) {
  c.layout = KvSlotLayout{e, kv_heads, head_dim};
  c.slots = slots;
  const size_t bytes = static_cast<size_t>(slots) * c.layout.slot_bytes();
  c.hk.assign(bytes, kPoison);
  c.hv.assign(bytes, kPoison);
  upload(c.dk, c.hk);
  upload(c.dv, c.hv);
  // int8-calib: scale and zero per head covering the inputs' range (most of it: the
  // tails are clamped, as the calibrated format does).
  c.k_calib.resize(static_cast<size_t>(2 * kv_heads));
  c.v_calib.resize(static_cast<size_t>(2 * kv_heads));
  for (int64_t h = 0; h < kv_heads; ++h) {
    c.k_calib[2 * h] = (4.0f + 0.1f * static_cast<float>(h)) / 127.5f;
    c.k_calib[2 * h + 1] = 0.25f;
    c.v_calib[2 * h] = 3.5f / 127.5f;
    c.v_calib[2 * h + 1] = -0.05f * static_cast<float>(h);
  }
  upload(c.dk_calib, c.k_calib);
  upload(c.dv_calib, c.v_calib);
}

// Rows [r0, r0 + n) of kv ([rows][stride]: k at 0, v at kv_width) into slots
// [r0, r0 + n): on the host with the CPU kernels, on the device with kv_store.
void store_rows(Cache& c, const std::vector<float>& kv, const DeviceBytes& dkv, int64_t stride, int64_t r0,
                int64_t n) {
  const int64_t kvw = c.layout.heads * c.layout.head_dim;
  const float* k = kv.data() + r0 * stride;
  const size_t sb = c.layout.slot_bytes();
  const KvPlane hk = KvPlane::contiguous(c.hk.data(), sb), hv = KvPlane::contiguous(c.hv.data(), sb);
  if (kv_element_quantized(c.layout.element))
    cpu::kv_store_packed_rows(k, k + kvw, n, stride, c.layout, hk, hv, c.k_calib.data(), c.v_calib.data(), r0);
  else
    cpu::kv_store_rows(k, k + kvw, n, stride, kvw, hk, hv, c.layout.element, r0);
  const float* dk = dkv.as<float>() + r0 * stride;
  const Status s = kv_store(nullptr, dk, dk + kvw, n, stride, kvw, c.view(0), r0);
  ASSERT_TRUE(s.ok()) << s.message();
}

// Whether the device planes equal the host's (a failure says where they differ).
bool same_planes(const Cache& c) {
  if (const cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess) {
    ADD_FAILURE() << "kv_store: " << cudaGetErrorString(e);
    return false;
  }
  std::vector<uint8_t> k(c.hk.size()), v(c.hv.size());
  if (cudaMemcpy(k.data(), c.dk.get(), k.size(), cudaMemcpyDeviceToHost) != cudaSuccess ||
      cudaMemcpy(v.data(), c.dv.get(), v.size(), cudaMemcpyDeviceToHost) != cudaSuccess) {
    ADD_FAILURE() << "copying the planes back failed";
    return false;
  }
  const int64_t dk = first_difference(k, c.hk), dv = first_difference(v, c.hv);
  const int64_t sb = static_cast<int64_t>(c.layout.slot_bytes());
  EXPECT_EQ(dk, -1) << "K plane: first differing byte " << dk << " (slot " << dk / sb << ", byte " << dk % sb
                    << " of " << sb << ")";
  EXPECT_EQ(dv, -1) << "V plane: first differing byte " << dv << " (slot " << dv / sb << ", byte " << dv % sb
                    << " of " << sb << ")";
  return dk == -1 && dv == -1;
}

class CudaKvStoreVsCpu : public ::testing::TestWithParam<ElementCase> {};

TEST_P(CudaKvStoreVsCpu, SameBytesBitForBit) {
  GB_REQUIRE_GPU();
  const KvElement e = GetParam().element;
  std::mt19937 g(11 + static_cast<int>(e));
  for (int64_t kv_heads : {1, 3, 8})
    for (int64_t hd : {33, 64, 80, 128})
      for (int64_t n : {1, 37}) {
        SCOPED_TRACE("kv_heads " + std::to_string(kv_heads) + " head_dim " + std::to_string(hd) + " n " +
                     std::to_string(n));
        const int64_t kvw = kv_heads * hd, stride = 2 * kvw + 5, slot0 = 5;
        std::vector<float> kv = normal(static_cast<size_t>((slot0 + n) * stride), g, 1.0f, 0.0f);
        float* row = kv.data() + slot0 * stride;
        // Head 0 of the first new row: +0 and -0 (ties between equal values); of the
        // second: a constant (a zero range); head 0 of the last: far from zero.
        for (int64_t j = 0; j < hd; ++j) row[j] = (j % 3 == 0) ? -0.0f : 0.0f;
        if (n > 1)
          for (int64_t j = 0; j < hd; ++j) row[stride + j] = 3.0f;
        for (int64_t j = 0; j < hd; ++j) kv[(slot0 + n - 1) * stride + kvw + j] += 40.0f;
        DeviceBytes dkv;
        upload(dkv, kv);
        Cache c;
        make_cache(c, e, kv_heads, hd, slot0 + n + 3);
        store_rows(c, kv, dkv, stride, slot0, n);
        if (HasFatalFailure()) return;
        same_planes(c);
      }
}

INSTANTIATE_TEST_SUITE_P(Elements, CudaKvStoreVsCpu, ::testing::ValuesIn(kElements),
                         [](const ::testing::TestParamInfo<ElementCase>& i) { return std::string(i.param.name); });

struct AttnCase {
  int64_t n;        // query rows
  int64_t len;      // cache slots (the last n are the new rows)
  bool no_visible;  // the row sees no slot
  int64_t heads, kv_heads, head_dim;
  bool unrotated;
  int64_t rot_dim;
  std::string what() const {
    return "n " + std::to_string(n) + " len " + std::to_string(len) + (no_visible ? " (sees none)" : "") +
           " heads " + std::to_string(heads) + "/" + std::to_string(kv_heads) + " head_dim " +
           std::to_string(head_dim) + (unrotated ? " unrotated rot_dim " + std::to_string(rot_dim) : " rotated");
  }
};

std::vector<AttnCase> attention_cases() {
  std::vector<AttnCase> cases;
  for (auto [heads, kv_heads] : {std::pair<int64_t, int64_t>{4, 4}, {8, 2}})
    for (int64_t hd : {64, 128})
      for (bool unrot : {false, true}) {
        const int64_t rot = unrot ? (hd == 64 ? 64 : 32) : 0;  // full and partial rotary
        for (int64_t len : {1, 7, 300, 4097}) cases.push_back({1, len, false, heads, kv_heads, hd, unrot, rot});
        cases.push_back({1, 7, true, heads, kv_heads, hd, unrot, rot});
        cases.push_back({37, 11 + 37, false, heads, kv_heads, hd, unrot, rot});
      }
  // An odd shape: head_dim 80 (int4-g32: groups of 32, 32, 16), GQA 3:1.
  for (bool unrot : {false, true}) {
    cases.push_back({1, 130, false, 6, 2, 80, unrot, unrot ? 48 : 0});
    cases.push_back({5, 20, false, 6, 2, 80, unrot, unrot ? 48 : 0});
  }
  return cases;
}

// The CPU backend's attention (engine/backend/cpu_backend.cc) on the host planes.
std::vector<float> cpu_attention(const Cache& c, const AttnCase& t, const std::vector<float>& q, int64_t q_stride,
                                 const std::vector<int64_t>& visible, const std::vector<float>& inv_freq,
                                 float scale) {
  const KvSlotLayout& L = c.layout;
  const int64_t kvw = L.heads * L.head_dim, rot = t.unrotated ? t.rot_dim : 0;
  std::vector<float> out(static_cast<size_t>(t.n * t.heads * t.head_dim));
  // Read only: the planes as kv_load_rows and attention_packed_range address them.
  const KvPlane hk = KvPlane::contiguous(const_cast<uint8_t*>(c.hk.data()), L.slot_bytes());
  const KvPlane hv = KvPlane::contiguous(const_cast<uint8_t*>(c.hv.data()), L.slot_bytes());
  if (kv_element_quantized(L.element)) {
    cpu::KvPackedPlanes planes{L, hk, hv, c.k_calib.data(), c.v_calib.data()};
    std::vector<float> cs;
    if (rot > 0) {
      cs.resize(static_cast<size_t>(t.len * rot));
      cpu::kv_rope_table(t.len, rot, inv_freq.data(), cs.data());
    }
    cpu::attention_packed_range(q.data(), q_stride, t.heads, planes, rot > 0 ? cs.data() : nullptr, rot,
                                visible.data(), scale, 0, t.n * t.heads, out.data(), cpu::KvIsa::kScalar);
  } else {
    std::vector<float> K(static_cast<size_t>(t.len * kvw)), V(K.size());
    cpu::kv_load_rows(hk, hv, L.element, 0, t.len, kvw, L.head_dim, rot, inv_freq.data(), K.data(),
                      V.data());
    cpu::attention_range(q.data(), q_stride, t.heads, t.kv_heads, t.head_dim, K.data(), V.data(), t.len,
                         visible.data(), scale, 0, t.n * t.heads, out.data());
  }
  return out;
}

void run_attention_case(const ElementCase& ec, const AttnCase& t, std::mt19937& g) {
  const int64_t kvw = t.kv_heads * t.head_dim, stride = 2 * kvw + 3;
  const int64_t q_stride = t.heads * t.head_dim + 7;
  // Keys offset from zero (the zero points matter), queries with sd 2 (a peaked softmax).
  std::vector<float> kv = normal(static_cast<size_t>(t.len * stride), g, 1.0f, 0.0f);
  for (int64_t s = 0; s < t.len; ++s)
    for (int64_t i = 0; i < kvw; ++i) kv[s * stride + i] += 0.25f;
  const std::vector<float> q = normal(static_cast<size_t>(t.n * q_stride), g, 2.0f, 0.0f);
  std::vector<int64_t> visible(static_cast<size_t>(t.n));
  for (int64_t r = 0; r < t.n; ++r) visible[r] = t.no_visible ? 0 : t.len - t.n + r + 1;
  std::vector<float> inv_freq(static_cast<size_t>(std::max<int64_t>(t.rot_dim / 2, 1)));
  for (size_t i = 0; i < inv_freq.size(); ++i)
    inv_freq[i] = std::pow(10000.0f, -2.0f * static_cast<float>(i) / static_cast<float>(std::max<int64_t>(t.rot_dim, 2)));
  const float scale = 1.0f / std::sqrt(static_cast<float>(t.head_dim));

  DeviceBytes dkv, dq, dvis, dfreq, dout, dws;
  upload(dkv, kv);
  upload(dq, q);
  upload(dvis, visible);
  upload(dfreq, inv_freq);
  Cache c;
  make_cache(c, ec.element, t.kv_heads, t.head_dim, t.len);
  if (::testing::Test::HasFatalFailure()) return;
  // The prefix, then the new rows, as a prefill or a decode step stores them.
  store_rows(c, kv, dkv, stride, 0, t.len - t.n);
  store_rows(c, kv, dkv, stride, t.len - t.n, t.n);
  if (::testing::Test::HasFatalFailure() || !same_planes(c)) return;  // attention would read other bytes

  const std::vector<float> ref = cpu_attention(c, t, q, q_stride, visible, inv_freq, scale);
  std::vector<float> got(ref.size());
  CUDA_OK(dout.alloc(got.size() * sizeof(float)));
  CUDA_OK(cudaMemset(dout.get(), 0xff, got.size() * sizeof(float)));  // NaN: every element must be written
  const size_t ws = attention_workspace_bytes(t.n, t.heads, t.head_dim, t.len);
  CUDA_OK(dws.alloc(ws));
  KvCacheView view = c.view(t.len);
  view.keys_unrotated = t.unrotated;
  const Status st = attention(nullptr, dq.as<float>(), t.n, q_stride, t.heads, t.kv_heads, t.head_dim, view,
                              dvis.as<int64_t>(), RopeTable{t.rot_dim, dfreq.as<float>()}, scale, dout.as<float>(),
                              dws.get(), ws);
  ASSERT_TRUE(st.ok()) << st.message();
  CUDA_OK(cudaDeviceSynchronize());
  download(dout, got);
  double max_ref = 0, max_err = 0;
  size_t worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref[i])));
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (!(err <= max_err)) {  // NaN sticks
      max_err = std::isnan(err) ? INFINITY : err;
      worst = i;
    }
  }
  const double rel = max_err / std::max(max_ref, 1e-3);
  EXPECT_LE(rel, ec.tol) << attention_kernel_name(view, t.n) << ": worst at " << worst << " (row "
                         << worst / (t.heads * t.head_dim) << ", head " << (worst / t.head_dim) % t.heads
                         << ", dim " << worst % t.head_dim << "): device " << got[worst] << " cpu " << ref[worst];
}

class CudaAttentionVsCpu : public ::testing::TestWithParam<ElementCase> {};

TEST_P(CudaAttentionVsCpu, MatchesCpuWithinTolerance) {
  GB_REQUIRE_GPU();
  std::mt19937 g(101 + static_cast<int>(GetParam().element));
  for (const AttnCase& t : attention_cases()) {
    SCOPED_TRACE(t.what());
    run_attention_case(GetParam(), t, g);
    if (HasFatalFailure()) return;
  }
}

// One decode and one prefill shape per element (GQA, unrotated keys: every fused
// path), for quick checks and for compute-sanitizer (memcheck, racecheck), which
// runs the kernels far slower: --gtest_filter='*OneShapePerElement*'.
TEST_P(CudaAttentionVsCpu, OneShapePerElement) {
  GB_REQUIRE_GPU();
  std::mt19937 g(202 + static_cast<int>(GetParam().element));
  for (const AttnCase& t : {AttnCase{1, 300, false, 8, 2, 64, true, 64}, AttnCase{37, 48, false, 8, 2, 64, true, 64}}) {
    SCOPED_TRACE(t.what());
    run_attention_case(GetParam(), t, g);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Elements, CudaAttentionVsCpu, ::testing::ValuesIn(kElements),
                         [](const ::testing::TestParamInfo<ElementCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace gb::kernels::cuda

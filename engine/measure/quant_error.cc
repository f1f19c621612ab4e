// The matmul error of a weight format (engine/measure/quant_error.h).
#include "engine/measure/quant_error.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <random>
#include <thread>

#include "kernels/cpu/packed/activations_w8a8.h"
#include "kernels/quantize/quantize_matrix.h"
#include "kernels/quantize/smoothquant.h"

namespace gb::engine {
namespace {

// W8A8 / LLM.int8(): X quantized per token (after SmoothQuant's 1 / s where the
// format smooths), W (times s) with the format's quantizer, both dequantized, and
// ||Xq Wq^T - X W^T|| in f64.
Result<QuantErrorFigures> activation_quant_error(const WeightFormat& format, const std::vector<float>& w, int64_t n,
                                                 const std::vector<float>& x, int64_t rows, int64_t cols,
                                                 const std::string& what, int threads, float threshold, double alpha) {
  std::vector<float> s(static_cast<size_t>(cols), 1.0f), inv(s.size(), 1.0f), ws = w;
  if (format.smooth) {
    std::vector<float> xa(static_cast<size_t>(cols), 0.0f);
    for (size_t i = 0; i < x.size(); ++i) xa[i % xa.size()] = std::max(xa[i % xa.size()], std::fabs(x[i]));
    s = kernels::smoothquant_factors(xa, kernels::column_absmax({&w}, cols), alpha);
    for (size_t j = 0; j < s.size(); ++j) inv[j] = 1.0f / s[j];
    for (size_t i = 0; i < ws.size(); ++i) ws[i] *= s[i % s.size()];
  }
  Result<kernels::QuantizedMatrix> q = kernels::quantize_matrix(quant_spec(format), ws.data(), n, cols, what);
  if (!q) return Error{"weight format '" + format.name + "': " + q.message()};
  const std::vector<float> wq = kernels::dequantize_matrix(*q);
  const kernels::ActivationQuant mode = format.activations == "int8"  ? kernels::ActivationQuant::kInt8
                                        : format.activations == "fp8" ? kernels::ActivationQuant::kFp8
                                                                      : kernels::ActivationQuant::kLlmInt8;
  kernels::cpu::TokenActivations t;
  kernels::cpu::quantize_tokens(x.data(), rows, cols, mode, threshold, format.smooth ? inv.data() : nullptr, &t);
  // Xq dequantized: scale * value(code), the outlier columns exact.
  std::vector<double> xq(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const uint8_t c = t.codes[static_cast<size_t>(r * t.stride + j)];
      const double v = mode == kernels::ActivationQuant::kFp8 ? kernels::fp8_e4m3_to_f32(c)
                                                               : static_cast<double>(static_cast<int8_t>(c));
      xq[static_cast<size_t>(r * cols + j)] = v * t.scales[static_cast<size_t>(r)];
    }
  const size_t no = t.outlier_cols.size();
  for (int64_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < no; ++i)
      xq[static_cast<size_t>(r * cols + t.outlier_cols[i])] = t.outliers[static_cast<size_t>(r) * no + i];

  QuantErrorFigures f;
  double dw = 0, ww = 0;
  for (size_t i = 0; i < w.size(); ++i) {  // the weights' own error, smoothing undone
    const double d = double{wq[i]} / s[i % s.size()] - w[i];
    dw += d * d;
    ww += double{w[i]} * w[i];
  }
  f.weight_rel_error = ww > 0 ? std::sqrt(dw / ww) : 0;
  const int tn = std::max(1, threads);
  std::vector<double> err2(static_cast<size_t>(tn)), ref2(static_cast<size_t>(tn));
  auto work = [&](int k) {
    double e2 = 0, r2 = 0;
    for (int64_t i = k; i < rows; i += tn)
      for (int64_t o = 0; o < n; ++o) {
        double y = 0, yq = 0;
        for (int64_t c = 0; c < cols; ++c) {
          y += double{x[static_cast<size_t>(i * cols + c)]} * w[static_cast<size_t>(o * cols + c)];
          yq += xq[static_cast<size_t>(i * cols + c)] * wq[static_cast<size_t>(o * cols + c)];
        }
        r2 += y * y;
        e2 += (yq - y) * (yq - y);
      }
    err2[static_cast<size_t>(k)] = e2;
    ref2[static_cast<size_t>(k)] = r2;
  };
  std::vector<std::thread> pool;
  for (int k = 1; k < tn; ++k) pool.emplace_back(work, k);
  work(0);
  for (auto& th : pool) th.join();
  double e2 = 0, r2 = 0;
  for (int k = 0; k < tn; ++k) {
    e2 += err2[static_cast<size_t>(k)];
    r2 += ref2[static_cast<size_t>(k)];
  }
  f.rel_error = r2 > 0 ? std::sqrt(e2 / r2) : 0;
  return f;
}

}  // namespace

Result<QuantShape> parse_quant_shape(std::string_view s) {
  const Error bad{"shape '" + std::string(s) + "': expected RxC with R, C >= 1, e.g. 16x512"};
  const size_t x = s.find('x');
  if (x == std::string_view::npos) return bad;
  QuantShape q;
  auto num = [](std::string_view t, int64_t& out) {
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return ec == std::errc() && p == t.data() + t.size() && out >= 1;
  };
  if (!num(s.substr(0, x), q.rows) || !num(s.substr(x + 1), q.cols)) return bad;
  if (q.rows > (1 << 20) || q.cols > (1 << 16)) return Error{"shape '" + std::string(s) + "': at most 1048576 x 65536"};
  return q;
}

std::vector<float> seeded_normal(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(d(g));
  return v;
}

Result<QuantErrorFigures> quant_error(const WeightFormat& format, const std::vector<float>& w, int64_t n,
                                      const std::vector<float>& x, int64_t rows, int64_t cols, const std::string& what,
                                      int threads, float llm_int8_threshold, double smooth_alpha) {
  if (format.activations != "f32" && !format.fake)
    return activation_quant_error(format, w, n, x, rows, cols, what, threads, llm_int8_threshold, smooth_alpha);
  Result<kernels::QuantizedMatrix> q = kernels::quantize_matrix(quant_spec(format), w.data(), n, cols, what);
  if (!q) return Error{"weight format '" + format.name + "': " + q.message()};
  std::vector<float> wq = kernels::dequantize_matrix(*q);
  if (format.fake)  // held in bf16 after the round trip, as the loader holds it
    for (float& v : wq) v = kernels::bf16_to_f32(kernels::f32_to_bf16(v));

  QuantErrorFigures f;
  double dw = 0, ww = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = double{wq[i]} - w[i];
    dw += d * d;
    ww += double{w[i]} * w[i];
  }
  f.weight_rel_error = ww > 0 ? std::sqrt(dw / ww) : 0;

  // E = X (Wq - W)^T and Y = X W^T in f64, row blocks of X over threads; the
  // differences are taken once, in f64.
  std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), dd(w.size());
  for (size_t i = 0; i < w.size(); ++i) dd[i] = double{wq[i]} - w[i];
  const int t = std::max(1, threads);
  std::vector<double> err2(static_cast<size_t>(t)), ref2(static_cast<size_t>(t));
  auto work = [&](int k) {
    double e2 = 0, r2 = 0;
    for (int64_t i = k; i < rows; i += t) {
      const double* xr = xd.data() + i * cols;
      for (int64_t o = 0; o < n; ++o) {
        const double* wr = wd.data() + o * cols;
        const double* dr = dd.data() + o * cols;
        double y0 = 0, y1 = 0, e0 = 0, e1 = 0;
        int64_t c = 0;
        for (; c + 2 <= cols; c += 2) {
          y0 += xr[c] * wr[c];
          y1 += xr[c + 1] * wr[c + 1];
          e0 += xr[c] * dr[c];
          e1 += xr[c + 1] * dr[c + 1];
        }
        for (; c < cols; ++c) {
          y0 += xr[c] * wr[c];
          e0 += xr[c] * dr[c];
        }
        const double y = y0 + y1, e = e0 + e1;
        r2 += y * y;
        e2 += e * e;
      }
    }
    err2[static_cast<size_t>(k)] = e2;
    ref2[static_cast<size_t>(k)] = r2;
  };
  std::vector<std::thread> pool;
  for (int k = 1; k < t; ++k) pool.emplace_back(work, k);
  work(0);
  for (auto& th : pool) th.join();
  double e2 = 0, r2 = 0;
  for (int k = 0; k < t; ++k) {
    e2 += err2[static_cast<size_t>(k)];
    r2 += ref2[static_cast<size_t>(k)];
  }
  f.rel_error = r2 > 0 ? std::sqrt(e2 / r2) : 0;
  return f;
}

}  // namespace gb::engine

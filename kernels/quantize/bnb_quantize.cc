// bitsandbytes' 4-bit quantizers and double quantization (kernels/quantize/bnb_quantize.h).
#include "kernels/quantize/bnb_quantize.h"

#include <algorithm>
#include <cmath>

#include "kernels/codecs/bnb4.h"

namespace gb::kernels {
namespace {

// The index of the value of `table` (n values) nearest to x, the first on a tie.
uint8_t nearest(float x, float (*value)(uint8_t), int n) {
  uint8_t best = 0;
  float best_d = std::fabs(x - value(0));
  for (int i = 1; i < n; ++i) {
    const float d = std::fabs(x - value(static_cast<uint8_t>(i)));
    if (d < best_d) {
      best_d = d;
      best = static_cast<uint8_t>(i);
    }
  }
  return best;
}

std::vector<float> make_dynamic_map() {
  // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), in float32
  // as torch computes it: linspace(0.1, 1, 2^i + 1) (the second half counted back
  // from the end), midpoints, times 10^(i - 6).
  std::vector<float> data;
  for (int i = 0; i < 7; ++i) {
    const int steps = (1 << i) + 1;
    const float start = 0.1f, end = 1.0f;
    const float step = (end - start) / static_cast<float>(steps - 1);
    std::vector<float> b(static_cast<size_t>(steps));
    const int halfway = steps / 2;
    for (int k = 0; k < steps; ++k)
      b[static_cast<size_t>(k)] = k < halfway ? start + step * static_cast<float>(k)
                                              : end - step * static_cast<float>(steps - k - 1);
    const float scale = static_cast<float>(std::pow(10.0, i - 6));
    for (int k = 0; k + 1 < steps; ++k) {
      const float mean = (b[static_cast<size_t>(k)] + b[static_cast<size_t>(k + 1)]) / 2.0f;
      data.push_back(scale * mean);
      data.push_back(-(scale * mean));
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  return data;
}

}  // namespace

uint8_t bnb_nf4_code(float x) { return nearest(x, nf4_value, 16); }

uint8_t bnb_fp4_code(float x) {
  // The magnitude's nearest code (first on a tie) with the sign bit for x < 0, except
  // that a value that rounds to zero is code 8 (-0) when positive and 0 when negative,
  // as bitsandbytes' CPU path stores it (measured: tests/data/bnb/ known answers).
  const uint8_t m = nearest(std::fabs(x), fp4_value, 8);
  if (m == 0) return x > 0 ? 8 : 0;
  return x < 0 ? static_cast<uint8_t>(m | 8) : m;
}

void bnb_quantize_4bit(bool nf4, const float* x, int64_t n, int64_t block, uint8_t* codes, float* absmax) {
  for (int64_t b = 0; b < n / block; ++b) {
    float amax = 0;
    for (int64_t k = 0; k < block; ++k) amax = std::max(amax, std::fabs(x[b * block + k]));
    absmax[b] = amax;
    const float inv = 1.0f / amax;
    for (int64_t k = 0; k < block; k += 2) {
      const float a = std::clamp(x[b * block + k] * inv, -1.0f, 1.0f);
      const float c = std::clamp(x[b * block + k + 1] * inv, -1.0f, 1.0f);
      const uint8_t qa = nf4 ? bnb_nf4_code(a) : bnb_fp4_code(a);
      const uint8_t qc = nf4 ? bnb_nf4_code(c) : bnb_fp4_code(c);
      codes[(b * block + k) / 2] = static_cast<uint8_t>(qa << 4 | qc);
    }
  }
}

const float* bnb_dynamic_map() {
  static const std::vector<float> map = make_dynamic_map();
  return map.data();
}

void bnb_double_quantize(const float* absmax, int64_t nb, uint8_t* codes, std::vector<float>* scales, float* offset) {
  double sum = 0;
  for (int64_t i = 0; i < nb; ++i) sum += absmax[i];
  *offset = static_cast<float>(sum / static_cast<double>(nb));
  const float* map = bnb_dynamic_map();
  scales->clear();
  for (int64_t b0 = 0; b0 < nb; b0 += 256) {
    const int64_t b1 = std::min(nb, b0 + 256);
    float amax = 0;
    for (int64_t i = b0; i < b1; ++i) amax = std::max(amax, std::fabs(absmax[i] - *offset));
    scales->push_back(amax);
    const float inv = 1.0f / amax;
    for (int64_t i = b0; i < b1; ++i) {
      const float v = std::clamp((absmax[i] - *offset) * inv, -1.0f, 1.0f);
      // Nearest value of the sorted map (the lower one on a tie).
      const float* hi = std::lower_bound(map, map + 256, v);
      int64_t q = hi - map;
      if (q == 256) q = 255;
      else if (q > 0 && (v - map[q - 1]) <= (map[q] - v)) q -= 1;
      codes[i] = static_cast<uint8_t>(q);
    }
  }
}

}  // namespace gb::kernels

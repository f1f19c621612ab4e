// bitsandbytes' 4-bit quantizers and double quantization (kernels/quantize/bnb_quantize.h).
#include "kernels/quantize/bnb_quantize.h"

#include <algorithm>
#include <cmath>

#include "kernels/codecs/group_quantize.h"

namespace gb::kernels {
namespace {

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

void bnb_quantize_4bit(bool nf4, const float* x, int64_t n, int64_t block, uint8_t* codes, float* absmax) {
  for (int64_t b = 0; b < n / block; ++b) {
    const float* xb = x + b * block;
    absmax[b] = quantize_bnb4_block(nf4, [xb](int64_t k) { return xb[k]; }, block, codes + b * block / 2);
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

// SmoothQuant's smoothing factors (kernels/quantize/smoothquant.h).
#include "kernels/quantize/smoothquant.h"

#include <algorithm>
#include <cmath>

namespace gb::kernels {

std::vector<float> smoothquant_factors(const std::vector<float>& x_absmax, const std::vector<float>& w_col_absmax,
                                       double alpha) {
  std::vector<float> s(x_absmax.size(), 1.0f);
  for (size_t j = 0; j < s.size() && j < w_col_absmax.size(); ++j)
    if (x_absmax[j] > 0 && w_col_absmax[j] > 0)
      s[j] = static_cast<float>(
          std::clamp(std::pow(double{x_absmax[j]}, alpha) / std::pow(double{w_col_absmax[j]}, 1 - alpha), 1e-5, 1e5));
  return s;
}

std::vector<float> column_absmax(const std::vector<const std::vector<float>*>& blocks, int64_t cols) {
  std::vector<float> m(static_cast<size_t>(cols), 0.0f);
  for (const std::vector<float>* b : blocks)
    for (size_t i = 0; i < b->size(); ++i)
      m[i % static_cast<size_t>(cols)] = std::max(m[i % static_cast<size_t>(cols)], std::fabs((*b)[i]));
  return m;
}

}  // namespace gb::kernels

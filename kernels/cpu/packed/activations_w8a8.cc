// Per-token activation quantization for W8A8 and LLM.int8() (activations_w8a8.h).
#include "kernels/cpu/packed/activations_w8a8.h"

#include <algorithm>
#include <cmath>

#include "kernels/codecs/fp8.h"

namespace gb::kernels::cpu {

void quantize_tokens(const float* x, int64_t rows, int64_t cols, ActivationQuant mode, float threshold,
                     const float* col_mul, TokenActivations* out) {
  TokenActivations& t = *out;
  t.mode = mode;
  t.rows = rows;
  t.cols = cols;
  t.stride = (cols + 31) / 32 * 32;
  t.codes.assign(static_cast<size_t>(rows * t.stride), 0);
  t.scales.assign(static_cast<size_t>(rows), 0.0f);
  t.outlier_cols.clear();
  t.outliers.clear();
  t.values.clear();
  const bool llm = mode == ActivationQuant::kLlmInt8;
  // LLM.int8(): a column is an outlier when any row of the batch has |x| >= threshold there.
  std::vector<uint8_t> outlier(static_cast<size_t>(llm ? cols : 0), 0);
  if (llm) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j)
        if (std::fabs(x[r * cols + j]) >= threshold) outlier[static_cast<size_t>(j)] = 1;
    for (int64_t j = 0; j < cols; ++j)
      if (outlier[static_cast<size_t>(j)]) t.outlier_cols.push_back(static_cast<int32_t>(j));
    const size_t no = t.outlier_cols.size();
    t.outliers.resize(static_cast<size_t>(rows) * no);
    for (int64_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < no; ++i) t.outliers[static_cast<size_t>(r) * no + i] = x[r * cols + t.outlier_cols[i]];
  }
  if (mode == ActivationQuant::kFp8) t.values.assign(static_cast<size_t>(rows * t.stride), 0.0f);
  const float qmax = mode == ActivationQuant::kFp8 ? kFp8E4m3Max : 127.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    auto value = [&](int64_t j) { return col_mul ? xr[j] * col_mul[j] : xr[j]; };
    float amax = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const float a = std::fabs(value(j));
      if (llm && a >= threshold) continue;  // the outlier elements stay out of the row's absmax
      amax = std::max(amax, a);
    }
    if (!(amax > 0)) continue;  // an all-zero row: scale 0, codes 0
    t.scales[static_cast<size_t>(r)] = amax / qmax;
    const float inv = qmax / amax;
    uint8_t* q = t.codes.data() + r * t.stride;
    for (int64_t j = 0; j < cols; ++j) {
      if (llm && outlier[static_cast<size_t>(j)]) continue;  // the outlier columns' codes are 0
      if (mode == ActivationQuant::kFp8) {
        q[j] = f32_to_fp8_e4m3(value(j) * inv);
        t.values[static_cast<size_t>(r * t.stride + j)] = fp8_e4m3_to_f32(q[j]);
      } else {
        const float c = std::clamp(std::nearbyint(value(j) * inv), -127.0f, 127.0f);
        q[j] = static_cast<uint8_t>(static_cast<int8_t>(c));
      }
    }
  }
}

}  // namespace gb::kernels::cpu

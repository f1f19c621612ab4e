// LLM.int8()'s float part (Dettmers et al. 2022; bitsandbytes' MatMul8bitLt): the
// input columns that hold an outlier (|x| >= threshold in some row of the batch,
// activations_w8a8.h) are multiplied in float with the same columns of the weights,
// dequantized from their int8 codes (bitsandbytes' int8_vectorwise_dequant of
// CB[:, outlier_cols]: an int8-llm matrix stores nothing more), and added to the
// int8 x int8 result of the other columns (linear_w8a8.cc). bitsandbytes multiplies
// this part in f16; here it is f32 (f64 in the reference). The outlier columns are
// few (bitsandbytes' paper: about 0.1% of the features), so this is a plain loop.
#include <vector>

#include "kernels/cpu/packed/packed_kernels.h"

namespace gb::kernels::cpu {

double reference_llm_int8_outliers(const TokenActivations& xq, int64_t m, const PackedMatrix& W, int64_t n) {
  const size_t no = xq.outlier_cols.size();
  if (no == 0) return 0;
  std::vector<float> w(static_cast<size_t>(W.cols));
  dequantize_row(W, n, w.data());
  double s = 0;
  for (size_t i = 0; i < no; ++i)
    s += double{xq.outliers[static_cast<size_t>(m) * no + i]} * double{w[static_cast<size_t>(xq.outlier_cols[i])]};
  return s;
}

void add_llm_int8_outliers(const TokenActivations& xq, const PackedMatrix& W, int64_t n0, int64_t n1, float* y,
                           int64_t ldy) {
  const size_t no = xq.outlier_cols.size();
  std::vector<float> wcol(no);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* w = W.row(n);
    const float s = static_cast<const float*>(W.scales)[n];
    for (size_t i = 0; i < no; ++i) {
      const uint8_t q = w[xq.outlier_cols[i]];
      wcol[i] = s * (W.codec == WeightCodec::kInt8 ? static_cast<float>(static_cast<int8_t>(q)) : fp8_e4m3_to_f32(q));
    }
    for (int64_t m = 0; m < xq.rows; ++m) {
      const float* o = xq.outliers.data() + static_cast<size_t>(m) * no;
      float acc = 0;
      for (size_t i = 0; i < no; ++i) acc += o[i] * wcol[i];
      y[m * ldy + n] += acc;
    }
  }
}

}  // namespace gb::kernels::cpu

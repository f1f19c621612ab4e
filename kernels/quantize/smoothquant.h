// SmoothQuant's smoothing factors (Xiao et al. 2023, eq. 4): per input channel j,
// s_j = max|X_j|^alpha / max|W_j|^(1 - alpha), from a calibration's activation
// absmax and the weights' column absmax over every output row of the layer; x is
// divided by s and W's column multiplied by it, which leaves X W^T unchanged and
// moves the activations' outliers into the weights. Host code; not the folding
// (engine/model/model.cc) nor the calibration (engine/measure/backends/smooth_calibration.h).
#pragma once

#include <cstdint>
#include <vector>

namespace gb::kernels {

// s_j as above, 1 where either absmax is 0, clamped to [1e-5, 1e5].
std::vector<float> smoothquant_factors(const std::vector<float>& x_absmax, const std::vector<float>& w_col_absmax,
                                       double alpha);

// The column absmax of row-major blocks of `cols` columns (each a [rows_i, cols] matrix).
std::vector<float> column_absmax(const std::vector<const std::vector<float>*>& blocks, int64_t cols);

}  // namespace gb::kernels

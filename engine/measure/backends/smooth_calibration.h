// SmoothQuant's calibration pass (Xiao et al. 2023): the model run unquantized over
// calibration token sequences while a recording wrapper of its backend keeps, for
// every layer's linear layers (q|k|v, o, up, down), the largest |x| of each input
// column. Model::load folds the result into the +smooth formats' weights
// (LoadOptions::smooth_absmax). Not the quantization itself, and host backends only
// (the wrapper reads the activations on the host).
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "engine/backend/backend.h"
#include "engine/model/model.h"
#include "engine/weights/weight_source.h"

namespace gb::engine {

// Loads `weights` as stored onto a recording wrapper of `backend` (a CPU backend),
// runs each sample (a token sequence) as one prefill step, and returns the
// per-column input absmax of every layer's linear layers. The model is freed
// before it returns.
Result<ActivationAbsmax> calibrate_activation_absmax(WeightSource& weights, Backend& backend,
                                                     const std::vector<std::vector<int32_t>>& samples);

}  // namespace gb::engine

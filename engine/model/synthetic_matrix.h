// A synthetic model's weight matrix made in the backend's memory, with no host copy
// of its elements (Model::load's path for synthetic sources): f32, f16 and bf16
// drawn there (Backend::fill_synthetic), the quantized formats the backend makes
// there drawn and quantized at once (Backend::quantize_synthetic; nf4/fp4's double
// quantization of the absmax on the host: 4 bytes per block of 64). The bytes are those
// the host path (draw in f32, kernels/quantize/quantize_matrix.h, upload) gives.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/backend/backend.h"
#include "engine/weights/weight_source.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::engine {

// The matrix and the buffers that hold its arrays.
struct SyntheticMatrix {
  PackedMatrix matrix;
  std::vector<std::unique_ptr<Buffer>> buffers;
  size_t bytes = 0;  // what the buffers hold
};

// Row blocks `names` of `w` (block i [rows[i], cols], concatenated as a fused layer
// is: each block keeps its own scales) in `spec`, made in b's memory. nullopt where
// that does not apply: a tensor that is not synthetic or not of that shape, a spec
// the backend does not make (a shape the host quantizer refuses: its
// error is the one to report), a backend that draws nothing; the caller then takes
// the host path. Errors: an allocation, a download.
Result<std::optional<SyntheticMatrix>> make_synthetic_matrix(Backend& b, const WeightSource& w,
                                                             const std::vector<std::string>& names,
                                                             const std::vector<int64_t>& rows, int64_t cols,
                                                             const kernels::QuantSpec& spec);

}  // namespace gb::engine

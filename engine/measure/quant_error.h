// The matmul error of a weight format (reference 004's 4.4 table): for X [R, C] and
// W [N, C], only W quantized with the format's own scale rule (the reference
// quantizer of kernels/quantize/, fake formats then rounded to bf16 as the model
// loader does), the figure is ||X Wq^T - X W^T||_F / ||X W^T||_F, computed in f64.
// Synthetic inputs are N(0,1) from a seed: X [R, C] and a square W [C, C]; on a
// model, W is one of its weight matrices. Not the job kind (quant_error_job.cc)
// nor the CLI's table (cli/quant_error_command.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/spec/formats.h"

namespace gb::engine {

// "RxC": X's rows and columns (both >= 1).
struct QuantShape {
  int64_t rows = 0;
  int64_t cols = 0;
  std::string str() const { return std::to_string(rows) + "x" + std::to_string(cols); }
};
Result<QuantShape> parse_quant_shape(std::string_view s);

struct QuantErrorFigures {
  double rel_error = 0;         // ||X Wq^T - X W^T||_F / ||X W^T||_F
  double weight_rel_error = 0;  // ||Wq - W||_F / ||W||_F
};

// W [n, cols] f32, X [rows, cols]; `what` names W in errors (a format whose groups
// do not divide cols). threads >= 1 share the products' rows.
// Formats that quantize activations (W8A8, int8-llm; not their fake: twins) quantize
// X too, per token, as the engine's CPU kernels do (kernels/cpu/packed/
// activations_w8a8.h; int8-llm's outlier columns at llm_int8_threshold kept exact),
// and the figure is ||Xq Wq^T - X W^T||_F / ||X W^T||_F; +smooth formats first
// smooth with s from X itself (the calibration is X) and alpha.
Result<QuantErrorFigures> quant_error(const WeightFormat& format, const std::vector<float>& w, int64_t n,
                                      const std::vector<float>& x, int64_t rows, int64_t cols, const std::string& what,
                                      int threads, float llm_int8_threshold = 6.0f, double smooth_alpha = 0.5);

// n values N(0,1) from `seed` (std::mt19937_64 and std::normal_distribution<double>,
// rounded to f32).
std::vector<float> seeded_normal(size_t n, uint64_t seed);

}  // namespace gb::engine

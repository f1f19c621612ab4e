// Reference 003's decode-latency model fitted to measured step times: the latency
// of the decode step that attends n cached tokens is latency(n) = (n - 1) / W + B,
// B the time to read the weights once (ms) and W the tokens of KV cache read per ms.
// An ordinary least-squares line through (n - 1, latency): slope 1 / W, intercept B.
// Arithmetic only (the decode_curve kind measures the points).
#pragma once

#include <span>

#include "engine/jobs/job_output.h"

namespace gb::engine {

struct DecodeFit {
  double B_ms = 0;           // intercept
  double W_tokens_per_ms = 0;  // 1 / slope; 0 when the slope is not positive (no KV cost seen)
  double slope_ms_per_token = 0;
  double r2 = 0;             // coefficient of determination of the line; 0 for fewer than 2 points
  int n = 0;
};

// Fits latency = (x - 1) / W + B to points (x = n, the tokens attended; y = ms).
// Fewer than two distinct x: slope 0, B the mean.
DecodeFit fit_decode_latency(std::span<const SeriesPoint> points);

}  // namespace gb::engine

// Summary statistics of a sample of timings (the step times of a `speed` job, the
// repeats of a measurement): mean, spread and percentiles. Plain arithmetic, no
// clock: the timing kinds are tested through these on known samples.
#pragma once

#include <span>
#include <vector>

namespace gb::engine {

// The p-th percentile (p in [0, 100]) of `sample` by linear interpolation between
// the two nearest ranks: rank h = (n - 1) p / 100 over the sorted values, value
// x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]). This is numpy's default
// (method "linear") and Excel's PERCENTILE.INC. 0 for an empty sample.
double percentile(std::span<const double> sample, double p);

struct SampleStats {
  int n = 0;
  double mean = 0;
  double min = 0;
  double max = 0;
  double stddev = 0;  // sample standard deviation (n - 1); 0 when n < 2
  double p50 = 0, p90 = 0, p99 = 0;
};

SampleStats sample_stats(std::span<const double> sample);

}  // namespace gb::engine

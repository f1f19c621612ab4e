// Summary statistics of timings (engine/measure/stats/sample_stats.h).
#include "engine/measure/stats/sample_stats.h"

#include <algorithm>
#include <cmath>

namespace gb::engine {
namespace {

double sorted_percentile(const std::vector<double>& x, double p) {
  if (x.empty()) return 0;
  const double h = static_cast<double>(x.size() - 1) * std::clamp(p, 0.0, 100.0) / 100.0;
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, x.size() - 1);
  return x[lo] + (h - static_cast<double>(lo)) * (x[hi] - x[lo]);
}

}  // namespace

double percentile(std::span<const double> sample, double p) {
  std::vector<double> x(sample.begin(), sample.end());
  std::sort(x.begin(), x.end());
  return sorted_percentile(x, p);
}

SampleStats sample_stats(std::span<const double> sample) {
  SampleStats s;
  if (sample.empty()) return s;
  std::vector<double> x(sample.begin(), sample.end());
  std::sort(x.begin(), x.end());
  s.n = static_cast<int>(x.size());
  double sum = 0;
  for (double v : x) sum += v;
  s.mean = sum / s.n;
  s.min = x.front();
  s.max = x.back();
  if (s.n > 1) {
    double ss = 0;
    for (double v : x) ss += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(ss / (s.n - 1));
  }
  s.p50 = sorted_percentile(x, 50);
  s.p90 = sorted_percentile(x, 90);
  s.p99 = sorted_percentile(x, 99);
  return s;
}

}  // namespace gb::engine

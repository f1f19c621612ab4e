// Summary statistics of timings against values worked by hand (and numpy's
// percentile(..., method="linear"), which gives the same).
#include "engine/measure/stats/sample_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace gb::engine {
namespace {

// The sample of Wikipedia's "Percentile" article (linear interpolation between
// closest ranks, C = 1), given unsorted: sorted 15 20 35 40 50.
const std::vector<double> kSample = {40, 15, 50, 35, 20};

TEST(Percentile, InterpolatesBetweenClosestRanks) {
  EXPECT_DOUBLE_EQ(percentile(kSample, 0), 15);
  EXPECT_DOUBLE_EQ(percentile(kSample, 25), 20);    // rank 1
  EXPECT_DOUBLE_EQ(percentile(kSample, 40), 29);    // rank 1.6: 20 + 0.6 x 15
  EXPECT_DOUBLE_EQ(percentile(kSample, 50), 35);
  EXPECT_DOUBLE_EQ(percentile(kSample, 90), 46);    // rank 3.6: 40 + 0.6 x 10
  EXPECT_DOUBLE_EQ(percentile(kSample, 99), 49.6);  // rank 3.96
  EXPECT_DOUBLE_EQ(percentile(kSample, 100), 50);
  EXPECT_DOUBLE_EQ(percentile(std::vector<double>{7}, 90), 7);
  EXPECT_DOUBLE_EQ(percentile(std::vector<double>{}, 50), 0);
}

TEST(SampleStats, MeanSpreadAndPercentiles) {
  const SampleStats s = sample_stats(kSample);
  EXPECT_EQ(s.n, 5);
  EXPECT_DOUBLE_EQ(s.mean, 32);
  EXPECT_DOUBLE_EQ(s.min, 15);
  EXPECT_DOUBLE_EQ(s.max, 50);
  // Squared deviations 289 + 144 + 9 + 64 + 324 = 830, over n - 1 = 4.
  EXPECT_DOUBLE_EQ(s.stddev, std::sqrt(830.0 / 4));
  EXPECT_DOUBLE_EQ(s.p50, 35);
  EXPECT_DOUBLE_EQ(s.p90, 46);
  EXPECT_DOUBLE_EQ(s.p99, 49.6);
  EXPECT_EQ(sample_stats(std::vector<double>{3}).stddev, 0);
}

}  // namespace
}  // namespace gb::engine

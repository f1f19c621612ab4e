// The decode-latency fit against synthetic points with known W and B.
#include "engine/measure/stats/decode_fit.h"

#include <gtest/gtest.h>

#include <vector>

namespace gb::engine {
namespace {

// Exact points of latency = (n - 1) / W + B: the fit returns W and B.
TEST(DecodeFit, RecoversKnownWAndBFromExactPoints) {
  const double W = 2500, B = 3.25;  // tokens/ms, ms
  std::vector<SeriesPoint> pts;
  for (int n = 1; n <= 10000; n += 37) pts.push_back({double(n), (n - 1) / W + B});
  const DecodeFit f = fit_decode_latency(pts);
  EXPECT_NEAR(f.W_tokens_per_ms, W, 1e-6 * W);
  EXPECT_NEAR(f.B_ms, B, 1e-9);
  EXPECT_NEAR(f.r2, 1, 1e-12);
  EXPECT_EQ(f.n, static_cast<int>(pts.size()));
}

// Noise that alternates +e / -e on consecutive points leaves the line nearly
// unchanged: over pairs (x, x + 1) the noise has zero mean and almost no
// correlation with x. Worked: slope error = sum(dx e_i) / sxx, bounded by e / (n/2)
// per pair here, far below the tolerance.
TEST(DecodeFit, AlternatingNoiseAveragesOut) {
  const double W = 400, B = 12;
  std::vector<SeriesPoint> pts;
  for (int n = 1; n <= 2000; ++n) pts.push_back({double(n), (n - 1) / W + B + (n % 2 ? 0.5 : -0.5)});
  const DecodeFit f = fit_decode_latency(pts);
  EXPECT_NEAR(f.W_tokens_per_ms, W, 0.01 * W);
  EXPECT_NEAR(f.B_ms, B, 0.01);
  EXPECT_GT(f.r2, 0.8);  // line variance 5^2/12 against noise variance 0.25: about 0.89
  EXPECT_LT(f.r2, 1);
}

// A flat curve (no KV cost measured) has no W; a single point gives B only.
TEST(DecodeFit, FlatOrSinglePointHasNoW) {
  std::vector<SeriesPoint> flat = {{1, 5}, {2, 5}, {3, 5}};
  DecodeFit f = fit_decode_latency(flat);
  EXPECT_EQ(f.W_tokens_per_ms, 0);
  EXPECT_DOUBLE_EQ(f.B_ms, 5);
  std::vector<SeriesPoint> one = {{7, 2}};
  f = fit_decode_latency(one);
  EXPECT_EQ(f.W_tokens_per_ms, 0);
  EXPECT_DOUBLE_EQ(f.B_ms, 2);
  EXPECT_EQ(fit_decode_latency({}).n, 0);
}

}  // namespace
}  // namespace gb::engine

// The stated limit on jobs per grid (200,000), checked from the axes' sizes before
// anything is expanded: grid_fuzz's first run ran out of memory on a grid whose
// points x repeats expanded to ~10^8 jobs. Not here: the other grid checks
// (grid_test.cc), the parser's size and depth limits (tests/common/json_parse_test.cc).
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "coordinator/grid.h"

namespace gb::coord {
namespace {

// {"seconds": [0, 1e-06, ...]} with n values.
std::string seconds_axis(int n) {
  std::string v;
  for (int i = 0; i < n; ++i) v += (i ? "," : "") + std::to_string(i * 1e-6);
  return R"({"seconds": [)" + v + "]}";
}

TEST(GridLimits, AGridOfTooManyJobsIsRefusedBeforeExpanding) {
  // 100,000 points (the point limit) x 1000 repeats: 10^8 jobs.
  const std::string huge =
      R"({"name": "huge", "axes": )" + seconds_axis(100000) + R"(, "measure": ["sleep"], "repeats": 1000})";
  const auto t0 = std::chrono::steady_clock::now();
  Result<Grid> g = parse_grid_text(huge, "huge.json");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.message().find("huge.json: $.axes: the grid would expand to 100000 points x 1000 jobs each"),
            std::string::npos)
      << g.message();
  EXPECT_NE(g.message().find("more than 200000 jobs"), std::string::npos) << g.message();
  EXPECT_LT(s, 5.0) << "refused only after expanding";

  // 201 points x 1000 repeats: one point past the limit; 200 x 1000 sleeps and a
  // theory-only kind (not repeated) on 2 points pass the bound.
  Result<Grid> over = parse_grid_text(
      R"({"name": "over", "axes": )" + seconds_axis(201) + R"(, "measure": ["sleep"], "repeats": 1000})", "o.json");
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.message().find("201 points x 1000 jobs each"), std::string::npos) << over.message();
  Result<Grid> small = parse_grid_text(
      R"({"name": "small", "axes": )" + seconds_axis(2) + R"(, "measure": ["sleep"], "repeats": 1000})", "s.json");
  ASSERT_TRUE(small.ok()) << small.message();
  EXPECT_EQ(small->jobs.size(), 2000u);
}

}  // namespace
}  // namespace gb::coord

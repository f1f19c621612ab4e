// The stored form of a series' points: exact round trips, null for non-finite
// values, and a clear error for a damaged text.
#include "coordinator/store/codecs/series_points.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace gb::coord {
namespace {

TEST(SeriesPoints, RoundTripsExactly) {
  const std::vector<engine::SeriesPoint> points = {
      {1, 0.857292659698971}, {101, 1.0 / 3}, {1e-300, -2.5e300}, {-0.0, 4096}, {10000, 5e-324}};
  const std::string text = encode_series_points(points);
  EXPECT_EQ(text.substr(0, 24), "[[1,0.857292659698971],[");
  auto back = decode_series_points(text, "t");
  ASSERT_TRUE(back.ok()) << back.message();
  ASSERT_EQ(back->size(), points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    EXPECT_EQ((*back)[i].x, points[i].x) << i;
    EXPECT_EQ((*back)[i].y, points[i].y) << i;
  }
  EXPECT_EQ(encode_series_points({}), "[]");
  auto empty = decode_series_points(" [ ] ", "t");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(SeriesPoints, NonFiniteIsNull) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::string text = encode_series_points({{1, inf}, {std::nan(""), 2}});
  EXPECT_EQ(text, "[[1,null],[null,2]]");
  auto back = decode_series_points(text, "t");
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_TRUE(std::isnan((*back)[0].y));
  EXPECT_TRUE(std::isnan((*back)[1].x));
  EXPECT_EQ((*back)[1].y, 2);
  // Text that SQLite's own JSON functions write (spaces, 1.0) reads too.
  auto sqlite_style = decode_series_points("[[1.0, 2.5], [2.0,null]]", "t");
  ASSERT_TRUE(sqlite_style.ok()) << sqlite_style.message();
  EXPECT_EQ((*sqlite_style)[1].x, 2);
}

TEST(SeriesPoints, DamagedTextIsAnErrorWithItsOffset) {
  for (const char* bad : {"", "[", "[[1,2]", "[[1,2],]", "[[1]]", "[[1,2,3]]", "[[1,inf]]", "[[1,2]] x",
                          "{\"x\":1}", "[[1e999,2]]", "[[nan,2]]"}) {
    auto r = decode_series_points(bad, "series s of run 7");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.message().find("series s of run 7: points at offset "), std::string::npos) << r.message();
  }
}

}  // namespace
}  // namespace gb::coord

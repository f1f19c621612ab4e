// `gridbench series`: a grid's series out of a database written here by the store
// (two jobs of a two-point grid, one with two series), in CSV and JSON, with and
// without --metric, against the points put in.
#include "cli/series_export.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/cli/cli_helpers.h"
#include "coordinator/grid/grid.h"

namespace gb::cli {
namespace {

using cli_testing::temp_dir;
using Json = nlohmann::json;
namespace fs = std::filesystem;

class SeriesExport : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::path(temp_dir("series_")) / "g.db").string();
    Result<std::unique_ptr<coord::JobStore>> s = coord::JobStore::open(path_);
    ASSERT_TRUE(s.ok()) << s.message();
    store_ = std::move(*s);
    grid_.name = "curves";
    grid_.axis_names = {"batch_size"};
    grid_.spec = nlohmann::ordered_json{{"name", "curves"}};
    for (int b : {1, 4}) {
      coord::GridJob j;
      j.hash = "h" + std::to_string(b);
      j.kind = "sleep";
      j.params = Json{{"seconds", 0}, {"batch_size", b}};
      grid_.jobs.push_back(j);
    }
    ASSERT_TRUE(store_->submit_grid(grid_, false).ok());
    for (int i = 0; i < 2; ++i) {
      auto lease = store_->lease_next("w", 60000, "curves");
      ASSERT_TRUE(lease.ok() && lease->has_value());
      coord::RunRecord r;
      const double b = (*lease)->hash == "h1" ? 1 : 4;
      r.series.push_back({"decode_latency", "tokens", "ms", {{1, 2.5 * b}, {2, 3.0 * b}}});
      if (b == 4) r.series.push_back({"decode_latency_fit", "tokens", "ms", {{1, 0.25}}});
      ASSERT_TRUE(store_->complete((*lease)->run_id, "w", r).ok());
    }
  }
  std::string path_;
  std::unique_ptr<coord::JobStore> store_;
  coord::Grid grid_;
};

TEST_F(SeriesExport, CsvHasOneRowPerPointWithTheAxes) {
  Result<std::string> csv = render_series(*store_, grid_, "decode_latency", SeriesFormat::kCsv);
  ASSERT_TRUE(csv.ok()) << csv.message();
  EXPECT_EQ(*csv,
            "job_hash,kind,repeat,batch_size,series,idx,x,y,x_unit,y_unit\n"
            "h1,sleep,0,1,decode_latency,0,1,2.5,tokens,ms\n"
            "h1,sleep,0,1,decode_latency,1,2,3,tokens,ms\n"
            "h4,sleep,0,4,decode_latency,0,1,10,tokens,ms\n"
            "h4,sleep,0,4,decode_latency,1,2,12,tokens,ms\n");
  Result<std::string> all = render_series(*store_, grid_, "", SeriesFormat::kCsv);
  ASSERT_TRUE(all.ok());
  EXPECT_NE(all->find("h4,sleep,0,4,decode_latency_fit,0,1,0.25,tokens,ms\n"), std::string::npos) << *all;
}

TEST_F(SeriesExport, JsonHasEachSeriesWithItsPoints) {
  Result<std::string> text = render_series(*store_, grid_, "decode_latency", SeriesFormat::kJson);
  ASSERT_TRUE(text.ok()) << text.message();
  const Json doc = Json::parse(*text);
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc[1]["job_hash"], "h4");
  EXPECT_EQ(doc[1]["params"]["batch_size"], 4);
  EXPECT_EQ(doc[1]["x"], (Json{1.0, 2.0}));
  EXPECT_EQ(doc[1]["y"], (Json{10.0, 12.0}));
  EXPECT_EQ(doc[1]["y_unit"], "ms");
}

TEST_F(SeriesExport, UnknownSeriesNameListsTheNamesThereAre) {
  Result<std::string> text = render_series(*store_, grid_, "nope", SeriesFormat::kCsv);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.message().find("decode_latency, decode_latency_fit"), std::string::npos) << text.message();
  EXPECT_FALSE(parse_series_format("md").ok());
}

}  // namespace
}  // namespace gb::cli

// The static dashboard from a hand-made grid, results and series: the page is
// written, holds every table and chart, escapes text and is well-formed.
#include "dashboard/dashboard.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace gb::dash {
namespace {

namespace fs = std::filesystem;
using coord::Grid;
using coord::ReportColumn;
using coord::ReportSpec;
using coord::ResultRow;
using coord::Table;

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

ReportColumn col(const std::string& metric, const std::string& label = "", int digits = -1,
                 double scale = 1) {
  ReportColumn c;
  c.metric = metric;
  c.label = label;
  c.digits = digits;
  c.scale = scale;
  return c;
}

ResultRow result(const std::string& hash, const coord::Json& params, const std::string& metric,
                 std::optional<double> value, const std::string& text = "") {
  ResultRow r;
  r.hash = hash;
  r.kind = "speed";
  r.params = params;
  r.metric = metric;
  r.value = value;
  r.text = text;
  r.unit = metric == "tpot_ms" ? "ms" : "";
  r.device = {{"name", "cpu-reference"}};
  r.engine_version = "0.1.0";
  return r;
}

struct Fixture {
  Grid grid;
  std::vector<ResultRow> results;
  SeriesByJob series;
};

Fixture make_fixture() {
  Fixture f;
  Grid& g = f.grid;
  g.name = "quant <demo> & \"friends\"";
  g.source = "experiments/demo.json";
  g.axis_names = {"weight_format", "kv_format"};
  g.measures = {"speed"};
  const char* wfs[] = {"f16", "int8-channel", "nf4-b64"};
  const char* kvs[] = {"f16", "int8"};
  int i = 0;
  for (const char* w : wfs) {
    for (const char* kv : kvs) {
      coord::Json p = {{"weight_format", w}, {"kv_format", kv}, {"model", "synthetic:tiny"}};
      g.points.push_back(p);
      coord::GridJob j;
      j.hash = "job" + std::to_string(i++);
      j.kind = "speed";
      j.params = p;
      g.jobs.push_back(j);
    }
  }
  ReportSpec s;
  s.title = "decode <latency>";
  s.rows = {"weight_format"};
  s.pivot = "kv_format";
  s.columns = {col("tpot_ms", "TPOT ms", 2), col("tok_per_s", "tok/s", 1), col("status")};
  s.baseline = {{"weight_format", "f16"}};
  g.reports = {s};
  ReportSpec s2;
  s2.title = "memory";
  s2.rows = {"weight_format", "kv_format"};
  s2.columns = {col("peak_mem", "peak MiB", 0, 1048576)};
  g.reports.push_back(s2);

  double tpot = 20;
  for (const auto& j : g.jobs) {
    f.results.push_back(result(j.hash, j.params, "tpot_ms", tpot));
    f.results.push_back(result(j.hash, j.params, "tok_per_s", 1000 / tpot));
    f.results.push_back(result(j.hash, j.params, "peak_mem", (2000 - 100 * tpot) * 1048576));
    tpot *= 0.8;
  }
  // One job ran out of memory: a text cell.
  f.results.push_back(result("job5", g.jobs[5].params, "status", std::nullopt, "oom <!>"));

  for (int k = 0; k < 3; ++k) {
    engine::Series s;
    s.name = "decode_latency";
    s.x_unit = "tokens";
    s.y_unit = "ms";
    for (int x = 1; x <= 200; ++x) s.points.push_back({double(x), 10.0 + k * 3 + x * 0.01 * (k + 1)});
    f.series["job" + std::to_string(k * 2)].push_back(s);
  }
  engine::Series other;
  other.name = "memory<curve>";
  other.x_unit = "batch";
  other.y_unit = "GiB";
  other.points = {{1, 1.5}, {2, 2.0}, {4, 3.1}, {8, 5.2}};
  f.series["job1"].push_back(other);
  return f;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gb_dashboard_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(DashboardTest, WritesSelfContainedPage) {
  Fixture f = make_fixture();
  auto tables = coord::build_tables(f.grid, f.results);
  ASSERT_TRUE(tables.ok()) << tables.message();
  fs::path out = dir_ / "nested" / "site";
  Status st = write_dashboard(f.grid, *tables, f.results, f.series, out.string());
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_TRUE(fs::exists(out / "index.html"));
  std::string html = read_file(out / "index.html");
  // To look at the page: GB_DASHBOARD_OUT=/some/dir gb_dashboard_tests.
  if (const char* keep = std::getenv("GB_DASHBOARD_OUT")) {
    ASSERT_TRUE(write_dashboard(f.grid, *tables, f.results, f.series, keep).ok());
  }

  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  // Escaped text: the grid name, table titles, cell text, series names.
  EXPECT_NE(html.find("quant &lt;demo&gt; &amp; &quot;friends&quot;"), std::string::npos);
  EXPECT_EQ(html.find("<demo>"), std::string::npos);
  EXPECT_NE(html.find("decode &lt;latency&gt;"), std::string::npos);
  EXPECT_NE(html.find("oom &lt;!&gt;"), std::string::npos);
  EXPECT_NE(html.find("memory&lt;curve&gt;"), std::string::npos);
  EXPECT_NE(html.find("experiments/demo.json"), std::string::npos);

  // The tables: headers and cells.
  EXPECT_NE(html.find("<th>f16 TPOT ms</th>"), std::string::npos);
  EXPECT_NE(html.find("<th>int8 tok/s</th>"), std::string::npos);
  EXPECT_NE(html.find("<th>peak MiB</th>"), std::string::npos);
  EXPECT_NE(html.find(">20.00<"), std::string::npos);
  EXPECT_NE(html.find("(-36.0%)"), std::string::npos);  // int8-channel/f16 vs f16/f16: 12.8 vs 20

  // Job counts.
  EXPECT_NE(html.find("<b>6</b><span>jobs</span>"), std::string::npos);

  // One <svg> per numeric column: table 1 has 2 pivot groups x (TPOT, tok/s) numeric
  // (status is text only), table 2 has one; plus two series charts.
  EXPECT_EQ(count(html, "<svg"), 4u + 1u + 2u);
  EXPECT_EQ(count(html, "<svg"), count(html, "</svg>"));
  EXPECT_EQ(count(html, "<table"), 2u);
  EXPECT_EQ(count(html, "<table"), count(html, "</table>"));
  EXPECT_EQ(count(html, "<tr"), count(html, "</tr>"));
  EXPECT_EQ(count(html, "<figure"), count(html, "</figure>"));
  EXPECT_EQ(count(html, "<text"), count(html, "</text>"));
  // Three jobs' decode_latency overlaid in one chart, each a polyline.
  EXPECT_GE(count(html, "<polyline"), 4u);

  // Nothing external: no scripts, no links to the network.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

TEST_F(DashboardTest, EmptyGridStillRenders) {
  Grid g;
  g.name = "empty";
  auto tables = coord::build_tables(g, {});
  ASSERT_TRUE(tables.ok());
  Status st = write_dashboard(g, *tables, {}, {}, dir_.string());
  ASSERT_TRUE(st.ok()) << st.message();
  std::string html = read_file(dir_ / "index.html");
  EXPECT_NE(html.find("<h1>empty</h1>"), std::string::npos);
  EXPECT_EQ(count(html, "<svg"), 0u);
  EXPECT_EQ(count(html, "<table"), count(html, "</table>"));
}

TEST_F(DashboardTest, UnwritableDirectoryIsAnError) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  Grid g;
  Status st = write_dashboard(g, {}, {}, {}, (dir_ / "file" / "sub").string());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("file"), std::string::npos);
}

TEST(BarChart, NegativeValuesAndTextCells) {
  Table t;
  t.title = "t";
  t.header = {"name", "delta"};
  t.key_columns = 1;
  auto cell = [](const std::string& text, std::optional<double> v) {
    coord::TableCell c;
    c.text = text;
    c.value = v;
    return c;
  };
  t.rows = {{cell("a", std::nullopt), cell("-5", -5.0)},
            {cell("b", std::nullopt), cell("12", 12.0)},
            {cell("c & d", std::nullopt), cell("oom", std::nullopt)}};
  std::string svg = bar_chart_svg(t, 1);
  ASSERT_FALSE(svg.empty());
  EXPECT_EQ(count(svg, "<rect"), 2u);
  EXPECT_NE(svg.find(">oom<"), std::string::npos);
  EXPECT_NE(svg.find("c &amp; d"), std::string::npos);
  EXPECT_EQ(bar_chart_svg(t, 0), "");  // the key column has no chart
}

TEST(LineChart, LegendPerSeries) {
  engine::Series a, b;
  a.name = b.name = "curve";
  a.points = {{0, 1}, {1, 2}, {2, 3}};
  b.points = {{0, 2}, {1, 1}};
  std::string svg = line_chart_svg("curve", {a, b}, {"first <1>", "second"});
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_NE(svg.find("first &lt;1&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">second<"), std::string::npos);
}

TEST(HtmlEscape, AllSpecials) { EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"); }

}  // namespace
}  // namespace gb::dash

// A grid's page from a hand-made grid, results, series and job states: every
// table (sortable, deltas marked, the jobs, device and engine behind each
// number), the plots, the failed jobs with their errors, the grid file; escaped
// text; nothing loaded from anywhere; well-formed; written atomically.
#include "dashboard/grid_page.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dashboard/dashboard.h"
#include "dashboard/html.h"
#include "dashboard/job_states.h"
#include "dashboard/plots/lines_plot.h"
#include "tests/dashboard/synthetic_results.h"

namespace gb::dash {
namespace {

namespace fs = std::filesystem;
using coord::Grid;
using coord::ReportColumn;
using coord::ReportSpec;
using coord::ResultRow;

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

ReportColumn col(const std::string& metric, const std::string& label = "", int digits = -1, double scale = 1) {
  ReportColumn c;
  c.metric = metric;
  c.label = label.empty() ? metric : label;
  c.digits = digits;
  c.scale = scale;
  return c;
}

ResultRow result(const std::string& hash, const coord::Json& params, const std::string& metric,
                 std::optional<double> value, const std::string& text = "") {
  ResultRow r = testing::result(hash, "speed", params, metric, value, metric == "tpot_ms" ? "ms" : "", text);
  return r;
}

// The quantization page of the old dashboard test, with job states added.
GridPage make_page() {
  GridPage page;
  Grid& g = page.grid;
  g.name = "quant <demo> & \"friends\"";
  g.source = "experiments/demo.json";
  g.spec = nlohmann::ordered_json{{"name", "quant"}, {"description", "formats <compared>"}};
  g.axis_names = {"weight_format", "kv_format"};
  g.measures = {"speed"};
  int i = 0;
  for (const char* w : {"f16", "int8-channel", "nf4-b64"}) {
    for (const char* kv : {"f16", "int8"}) {
      coord::Json p = {{"weight_format", w}, {"kv_format", kv}, {"model", "synthetic:tiny"}};
      g.points.push_back(p);
      coord::GridJob j;
      j.hash = "job" + std::to_string(i++);
      j.kind = "speed";
      j.params = p;
      g.jobs.push_back(j);
      coord::StoredJob sj;
      sj.hash = j.hash;
      sj.kind = "speed";
      sj.params = p;
      sj.state = coord::JobState::kSucceeded;
      sj.attempts = 1;
      page.jobs.push_back(sj);
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
  for (size_t k = 0; k + 1 < g.jobs.size(); ++k) {  // job5 has no results: it failed
    const auto& j = g.jobs[k];
    page.results.push_back(result(j.hash, j.params, "tpot_ms", tpot));
    page.results.push_back(result(j.hash, j.params, "tok_per_s", 1000 / tpot));
    page.results.push_back(result(j.hash, j.params, "peak_mem", (2000 - 100 * tpot) * 1048576));
    tpot *= 0.8;
  }
  page.results.push_back(result("job4", g.jobs[4].params, "status", std::nullopt, "oom <!>"));
  page.jobs[5].state = coord::JobState::kFailed;
  page.jobs[5].attempts = 3;
  page.jobs[5].error = "gridbench-job exited 1: <stderr> & more";

  for (int k = 0; k < 3; ++k) {
    engine::Series s;
    s.name = "decode_latency";
    s.x_unit = "tokens";
    s.y_unit = "ms";
    for (int x = 1; x <= 200; ++x) s.points.push_back({double(x), 10.0 + k * 3 + x * 0.01 * (k + 1)});
    page.series["job" + std::to_string(k * 2)].push_back(s);
  }
  engine::Series other{"memory<curve>", "batch", "GiB", {{1, 1.5}, {2, 2.0}, {4, 3.1}, {8, 5.2}}};
  page.series["job1"].push_back(other);
  page.updated_ms = 1735689600000;  // 2025-01-01 00:00 UTC
  auto tables = coord::build_tables(g, page.results);
  EXPECT_TRUE(tables.ok()) << tables.message();
  page.tables = *tables;
  return page;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class GridPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gb_grid_page_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(GridPageTest, HoldsEverySection) {
  GridPage page = make_page();
  std::string html = render_grid_page(page);
  // To look at the page: GB_DASHBOARD_OUT=/some/dir gb_dashboard_tests.
  if (const char* keep = std::getenv("GB_DASHBOARD_OUT")) {
    ASSERT_TRUE(write_page(keep, "index.html", html).ok());
  }

  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  // Escaped: the grid name, description, table titles, cell text, series names, errors.
  EXPECT_NE(html.find("<h1>quant &lt;demo&gt; &amp; &quot;friends&quot;</h1>"), std::string::npos);
  EXPECT_EQ(html.find("<demo>"), std::string::npos);
  EXPECT_NE(html.find("formats &lt;compared&gt;"), std::string::npos);
  EXPECT_NE(html.find("decode &lt;latency&gt;"), std::string::npos);
  EXPECT_NE(html.find("oom &lt;!&gt;"), std::string::npos);
  EXPECT_NE(html.find("memory&lt;curve&gt;"), std::string::npos);
  EXPECT_NE(html.find("gridbench-job exited 1: &lt;stderr&gt; &amp; more"), std::string::npos);
  EXPECT_EQ(html.find("<stderr>"), std::string::npos);
  EXPECT_NE(html.find("experiments/demo.json"), std::string::npos);
  EXPECT_NE(html.find("2025-01-01 00:00 UTC"), std::string::npos);

  // The tables: pivot values as column groups, sortable headers, numbers with
  // their sort value, deltas beside them, and the job/device/engine behind each.
  EXPECT_NE(html.find("<th class=\"group\" colspan=\"3\">int8</th>"), std::string::npos);
  EXPECT_NE(html.find("data-col=\"1\" title=\"f16 TPOT ms\">TPOT ms</th>"), std::string::npos);
  EXPECT_NE(html.find("<th class=\"sortable\" data-col=\"2\">peak MiB</th>"), std::string::npos);
  EXPECT_NE(html.find("data-v=\"20\" title=\"device Test CPU (cpu); engine 0.1.0; job job0\">20.00<"),
            std::string::npos);
  EXPECT_NE(html.find("<span class=\"delta\">(-36.0%)</span>"), std::string::npos);  // 12.8 vs 20
  EXPECT_EQ(count(html, "<table class=\"report sortable\">"), 2u);

  // Summary and jobs: counts by state; the failed job with its error.
  EXPECT_NE(html.find("<b>6</b><span>jobs</span>"), std::string::npos);
  EXPECT_NE(html.find("<div class=\"stat bad\"><b>1</b><span>failed</span>"), std::string::npos);
  const size_t failed = html.find("<table class=\"failed sortable\">");
  ASSERT_NE(failed, std::string::npos);
  EXPECT_NE(html.find("<code>job5</code>", failed), std::string::npos);
  EXPECT_NE(html.find("<details id=\"all-jobs\"><summary>All 6 jobs"), std::string::npos);

  // Plots: table 1 default grouped bars for TPOT and tok/s (status is text), table 2
  // peak MiB; the series as small multiples (both names).
  EXPECT_EQ(count(html, "<figure class=\"plot bars\""), 3u);
  EXPECT_EQ(count(html, "<figure class=\"plot lines\""), 2u);
  EXPECT_NE(html.find("peak MiB"), std::string::npos);

  // Well-formed enough: every element we open is closed.
  for (const char* tag : {"svg", "table", "tr", "figure", "text", "g", "details", "section", "p", "div"}) {
    EXPECT_EQ(count(html, std::string("<") + tag + ">") + count(html, std::string("<") + tag + " "),
              count(html, std::string("</") + tag + ">"))
        << tag;
  }
  // Self-contained: the one script is ours, nothing refers to the network.
  EXPECT_EQ(count(html, "<script"), 1u);
  EXPECT_NE(html.find(page_script()), std::string::npos);
  EXPECT_NE(html.find("Content-Security-Policy\" content=\"default-src 'none';"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find(" src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
}

TEST_F(GridPageTest, ReportPlotsReplaceTheDefaults) {
  GridPage page = make_page();
  coord::PlotSpec scatter;
  scatter.kind = coord::PlotKind::kScatter;
  scatter.x = "tpot_ms";
  scatter.y = "tok_per_s";
  scatter.color = "kv_format";
  page.grid.reports[0].plots = {scatter};
  page.grid.reports[0].plots_given = true;
  page.grid.reports[1].plots_given = true;  // and none for the second
  std::string html = render_grid_page(page);
  EXPECT_EQ(count(html, "<figure class=\"plot bars\""), 0u);
  EXPECT_EQ(count(html, "<figure class=\"plot scatter\""), 1u);
  EXPECT_EQ(count(html, "<circle data-s="), 5u);
}

TEST_F(GridPageTest, WithoutAStoreOrResults) {
  Grid g;
  g.name = "empty";
  auto tables = coord::build_tables(g, {});
  ASSERT_TRUE(tables.ok());
  GridPage page;
  page.grid = g;
  page.tables = *tables;
  std::string html = render_grid_page(page);
  EXPECT_NE(html.find("<h1>empty</h1>"), std::string::npos);
  EXPECT_EQ(count(html, "<svg"), 0u);
  EXPECT_NE(html.find("No results yet."), std::string::npos);
  EXPECT_NE(html.find("No job failed."), std::string::npos);

  // Jobs known only from the grid: with results "succeeded", else "unknown".
  GridPage p2 = make_page();
  p2.jobs.clear();
  html = render_grid_page(p2);
  EXPECT_NE(html.find("<b>5</b><span>succeeded</span>"), std::string::npos);
  EXPECT_NE(html.find("<b>1</b><span>unknown</span>"), std::string::npos);
}

TEST_F(GridPageTest, WritesAtomicallyAndSaysWhereItCannot) {
  GridPage page = make_page();
  fs::path out = dir_ / "nested" / "site";
  ASSERT_TRUE(write_page(out.string(), "index.html", render_grid_page(page)).ok());
  EXPECT_EQ(read_file(out / "index.html"), render_grid_page(page));
  EXPECT_FALSE(fs::exists(out / ".index.html.tmp"));

  std::ofstream(dir_ / "file") << "x";
  Status st = write_page((dir_ / "file" / "sub").string(), "index.html", "x");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("file"), std::string::npos);
}

// A 20,000-job grid: every table on its page shows at most kMaxPageRows rows and
// says where the rest is, so the page stays under 2 MB (without the caps it holds
// each of the 20,000 rows twice, in the report table and the job list); jobs.csv
// holds every job.
// A roofline grid of `models` x `contexts` jobs, one in 20 failed; with
// `series_points`, each succeeded job has a decode_latency series of that many points.
GridPage big_page(int kModels, int kContexts, int series_points = 0) {
  GridPage page;
  Grid& g = page.grid;
  g.name = "big";
  g.axis_names = {"model", "context"};
  g.measures = {"roofline"};
  nlohmann::ordered_json contexts = nlohmann::ordered_json::array();
  for (int c = 0; c < kContexts; ++c) contexts.push_back(512 + 8 * c);
  g.spec = nlohmann::ordered_json{{"name", "big"}, {"axes", {{"context", contexts}}}};
  for (int m = 0; m < kModels; ++m) {
    for (int c = 0; c < kContexts; ++c) {
      coord::Json p = {{"model", "model-" + std::to_string(m)}, {"context", 512 + 8 * c}, {"device", "rtx4090"}};
      g.points.push_back(p);
      coord::GridJob j;
      j.hash = "h" + std::to_string(1000000 + m * kContexts + c);
      j.kind = "roofline";
      j.params = p;
      g.jobs.push_back(j);
      coord::StoredJob sj;
      sj.hash = j.hash;
      sj.kind = "roofline";
      sj.params = p;
      sj.attempts = 1;
      sj.state = coord::JobState::kSucceeded;
      if (c % 20 == 19) {  // 1,000 failed jobs, each with a long error
        sj.state = coord::JobState::kFailed;
        sj.error = std::string(300, 'e');
      } else {
        ResultRow r = testing::result(j.hash, "roofline", p, "decode_latency_ms", 0.01 * c + m, "ms");
        page.results.push_back(r);
        r.metric = "max_context";
        r.value = 1000.0 * (m + 1);
        page.results.push_back(r);
        if (series_points > 0) {
          engine::Series lat{"decode_latency", "tokens", "ms", {}};
          for (int x = 0; x < series_points; ++x) lat.points.push_back({x * 10.0, m + 0.001 * c * x});
          page.series[j.hash].push_back(lat);
        }
      }
      page.jobs.push_back(sj);
    }
  }
  ReportSpec s;
  s.title = "decode";
  s.kind = "roofline";
  s.rows = {"model", "context"};
  s.columns = {col("decode_latency_ms", "latency", 3), col("max_context", "max context", 0)};
  g.reports = {s};
  auto tables = coord::build_tables(g, page.results, page.jobs);
  EXPECT_TRUE(tables.ok()) << tables.message();
  if (tables.ok()) page.tables = *tables;
  return page;
}

TEST_F(GridPageTest, ABigGridsPageStaysSmallAndLinksTheWholeTables) {
  constexpr int kModels = 10, kContexts = 2000, kJobs = kModels * kContexts;
  GridPage page = big_page(kModels, kContexts);
  const Grid& g = page.grid;
  ASSERT_EQ(page.tables.at(0).rows.size(), static_cast<size_t>(kJobs));

  const std::string html = render_grid_page(page);
  EXPECT_LT(html.size(), 2000000u) << html.size() << " bytes";
  EXPECT_NE(html.find("The first 500 of 20000 rows; all of them: <a href=\"report.csv\">"), std::string::npos);
  EXPECT_NE(html.find("The first 500 of 1000 failed jobs"), std::string::npos);
  EXPECT_NE(html.find("The first 500 of 20000 jobs; all of them: <a href=\"jobs.csv\">"), std::string::npos);
  EXPECT_NE(html.find("and 1950 more"), std::string::npos);  // the context axis' values
  // Every job in the CSV, with a header line.
  const std::string csv = jobs_csv(job_rows(g, page.jobs, page.results), g.axis_names);
  EXPECT_EQ(count(csv, "\r\n"), static_cast<size_t>(kJobs) + 1);
  EXPECT_EQ(csv.substr(0, csv.find("\r\n")), "job,kind,model,context,repeat,state,attempts,device,engine,error");
  EXPECT_EQ(count(csv, ",failed,1,"), 1000u);
}

// The default series plots of a big grid: a decode curve per job (10 models x 1,000
// contexts) would be 10 panels of 1,000 lines, a 15 MB page; bounded, the page of
// 10,000 curves is no larger than a few panels' worth more than that of 100, and
// says what it left out.
TEST_F(GridPageTest, ABigGridsSeriesPlotsAreBoundedAndSayWhatIsLeftOut) {
  const std::string small = render_grid_page(big_page(10, 10, 101));
  const GridPage page = big_page(10, 1000, 101);
  size_t curves = 0;
  for (const auto& [h, v] : page.series) curves += v.size();
  ASSERT_EQ(curves, 9500u);
  const std::string html = render_grid_page(page);
  EXPECT_LT(html.size(), 1500000u) << html.size() << " bytes";
  auto series_part = [](const std::string& page) {
    const size_t from = page.find("<h2 id=\"series\">"), to = page.find("<h2 id=\"jobs\">");
    return from < to && to != std::string::npos ? page.substr(from, to - from) : std::string();
  };
  const std::string series = series_part(html), small_series = series_part(small);
  ASSERT_FALSE(small_series.empty());
  EXPECT_LT(series.size(), 2 * small_series.size() + 50000) << series.size() << " against " << small_series.size();
  // A panel per model and context (one line each), 12 of them drawn, the first
  // and the last among them.
  EXPECT_EQ(count(series, "<g class=\"panel\">"), plots::kMaxPanels);
  EXPECT_NE(series.find("9488 more panels not drawn, with their 9488 lines (12 of 9500 drawn, evenly spaced"),
            std::string::npos);
  EXPECT_NE(series.find(">model-0 \u00b7 512</text>"), std::string::npos);
  EXPECT_NE(series.find(">model-9 \u00b7 8496</text>"), std::string::npos);
}

TEST(Html, EscapeAndSkeleton) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  std::string open = page_open("a <b>");
  EXPECT_NE(open.find("<title>a &lt;b&gt;</title>"), std::string::npos);
  EXPECT_EQ(open.substr(open.size() - 7), "<main>\n");
  std::string close = page_close();
  EXPECT_NE(close.find("<script>"), std::string::npos);
  EXPECT_EQ(close.substr(close.size() - 8), "</html>\n");
  EXPECT_EQ(format_time_ms(0), "");
  EXPECT_EQ(format_time_ms(86400000), "1970-01-02 00:00 UTC");
  EXPECT_EQ(sort_value(0.1), "0.1");
  EXPECT_EQ(sort_value(1e300), "1e+300");
}

}  // namespace
}  // namespace gb::dash

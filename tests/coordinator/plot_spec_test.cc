// The `plots` of a report section: what parses, and every error with its JSON
// path and the names it knows.
#include "coordinator/plot_spec.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "coordinator/grid/grid.h"
#include "engine/jobs/job_kinds.h"

namespace gb::coord {
namespace {
namespace plot_spec_test {

std::string grid_with_plots(const std::string& plots) {
  return R"({"name": "p", "axes": {"model": ["qwen1.5-0.5b", "qwen1.5-7b"], "weight_format": ["f16", "int4-g128"],
             "kv_format": ["f16", "int8"], "batch_size": [1, 8]},
   "fixed": {"device": "rtx4090", "dataset": "text:x.txt"},
   "measure": ["roofline", "ppl"],
   "report": [{"title": "t", "kind": "roofline", "rows": ["model", "kv_format", "batch_size"], "pivot": "weight_format",
               "columns": ["decode_B_ms"], "plots": )" +
         plots + "}]}";
}

std::vector<std::string> error_lines(const std::string& text) {
  Result<Grid> g = parse_grid_text(text, "g.json");
  std::vector<std::string> out;
  if (g.ok()) return out;
  std::string msg = g.message();
  size_t start = 0;
  while (start <= msg.size()) {
    size_t end = msg.find('\n', start);
    std::string line = msg.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (line.rfind("g.json: ", 0) == 0) line = line.substr(8);
    out.push_back(line);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// The job kinds as the registry lists them.
std::string known_kinds() {
  std::string s;
  for (const auto& k : engine::job_kinds()) s += (s.empty() ? "" : ", ") + k.name;
  return s;
}

std::string known_params() {
  std::string out;
  for (const auto& p : engine::job_params()) out += (out.empty() ? "" : ", ") + p.name;
  return out;
}

TEST(PlotSpec, ParsesEveryKind) {
  Result<Grid> g = parse_grid_text(grid_with_plots(R"([
      {"kind": "lines", "series": "decode_latency", "panel": "model", "color": "weight_format", "share_y": false},
      {"kind": "lines", "series": ["decode_step_ms", "decode_latency"], "measure": ["roofline", "ppl"]},
      {"kind": "lines", "x": "batch_size", "y": "kv_bytes_per_token", "color": "kv_format", "title": "002"},
      {"kind": "bars", "y": "decode_W_measured", "over": "decode_W_tokens_per_ms", "group": ["model", "kv_format"]},
      {"kind": "scatter", "x": "weight_bits", "y": "ppl", "color": "kv_format", "filter": {"batch_size": [1, 8]}}
    ])"),
                                   "g.json");
  ASSERT_TRUE(g.ok()) << g.message();
  const ReportSpec& r = g->reports.at(0);
  EXPECT_TRUE(r.plots_given);
  ASSERT_EQ(r.plots.size(), 5u);
  EXPECT_EQ(r.plots[0].kind, PlotKind::kLines);
  EXPECT_EQ(r.plots[0].series, std::vector<std::string>{"decode_latency"});
  EXPECT_EQ(r.plots[0].panel, "model");
  EXPECT_EQ(r.plots[0].color, "weight_format");
  EXPECT_EQ(r.plots[0].share_y, 0);
  EXPECT_EQ(r.plots[1].series, (std::vector<std::string>{"decode_step_ms", "decode_latency"}));
  EXPECT_EQ(r.plots[1].measure, (std::vector<std::string>{"roofline", "ppl"}));
  EXPECT_EQ(r.plots[1].share_y, -1);
  EXPECT_EQ(r.plots[2].x, "batch_size");
  EXPECT_EQ(r.plots[2].y, "kv_bytes_per_token");
  EXPECT_EQ(r.plots[2].title, "002");
  EXPECT_EQ(r.plots[3].kind, PlotKind::kBars);
  EXPECT_EQ(r.plots[3].over, "decode_W_tokens_per_ms");
  EXPECT_EQ(r.plots[3].group, (std::vector<std::string>{"model", "kv_format"}));
  EXPECT_EQ(r.plots[4].kind, PlotKind::kScatter);
  EXPECT_EQ(r.plots[4].filter, Json({{"batch_size", {1, 8}}}));
  EXPECT_EQ(plot_kind_name(PlotKind::kScatter), "scatter");

  // No `plots` key: defaults; an empty array: no plots.
  Result<Grid> none = parse_grid_text(grid_with_plots("[]"), "g.json");
  ASSERT_TRUE(none.ok()) << none.message();
  EXPECT_TRUE(none->reports[0].plots_given);
  EXPECT_TRUE(none->reports[0].plots.empty());
}

TEST(PlotSpec, ErrorsSayWhereAndWhatIsKnown) {
  const std::string p = "$.report[0].plots";
  EXPECT_EQ(error_lines(grid_with_plots(R"({"kind": "lines"})")),
            std::vector<std::string>{p + ": expected an array of plot objects ([] for none), got an object"});
  EXPECT_EQ(error_lines(grid_with_plots(R"([3, {"series": "x"}, {"kind": "pie"}])")),
            (std::vector<std::string>{p + "[0]: expected a plot object {kind, ...}, got 3",
                                      p + "[1]: missing required key 'kind' (one of: lines, bars, scatter)",
                                      p + "[2].kind: unknown plot kind (expected one of: lines, bars, scatter), "
                                          "got the string \"pie\""}));
  EXPECT_EQ(error_lines(grid_with_plots(R"([{"kind": "lines", "series": "s", "colour": "model", "panel": "modle",
                                            "color": "model", "share_y": "yes", "measure": ["speedo", "speed"]}])")),
            (std::vector<std::string>{
                p + "[0].colour: unknown key for a lines plot (expected one of: kind, title, series, x, y, over, "
                    "panel, color, measure, filter, share_y)",
                p + "[0].panel: unknown job parameter 'modle' (known: " + known_params() + ")",
                p + "[0].measure[0]: unknown job kind 'speedo' (known: " + known_kinds() + ")",
                p + "[0].measure[1]: job kind 'speed' is not measured by this grid (measure: roofline, ppl)",
                p + "[0].share_y: expected true or false, got the string \"yes\""}));
  EXPECT_EQ(error_lines(grid_with_plots(R"([{"kind": "lines", "x": "batch_size"},
                                            {"kind": "lines", "series": "s", "y": "m"},
                                            {"kind": "bars", "group": ["model", 3], "color": "model", "series": "s"},
                                            {"kind": "scatter", "y": "", "color": "model", "panel": "model",
                                             "filter": {"batch_size": 0, "colour": 1}}])")),
            (std::vector<std::string>{
                p + "[0]: a lines plot needs 'series' (series names) or both 'x' (a parameter or metric) and 'y' "
                    "(a metric)",
                p + "[1]: a lines plot draws either 'series' or 'y' against 'x', not both",
                p + "[2].series: unknown key for a bars plot (expected one of: kind, title, y, over, group, color, "
                    "measure, filter)",
                p + "[2].group[1]: expected a job parameter name, got 3",
                p + "[2]: missing required key 'y' (the metric the bars show)",
                p + "[2].color: 'model' is also in 'group'; expected another parameter",
                p + "[3].y: expected a metric or parameter name, got the string \"\"",
                p + "[3].filter.batch_size: " + engine::check_param("batch_size", 0).value_or("?"),
                p + "[3].filter.colour: unknown job parameter 'colour' (known: " + known_params() + ")",
                p + "[3]: a scatter plot needs both 'x' and 'y' (parameter or metric names)",
                p + "[3].panel: 'model' is also the 'color'; expected another parameter"}));
}

}  // namespace plot_spec_test
}  // namespace
}  // namespace gb::coord

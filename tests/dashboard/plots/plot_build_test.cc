// What the grid's report sections ask to draw, on synthetic stored results
// (tests/dashboard/synthetic_results.h): the default small multiples, measured
// lines solid beside dashed theory, reference 002's figure (memory against batch
// size, a line per KV format), 003's ratios (measured W over theory per model and
// format), a scatter pairing two job kinds, the defaults of a report section, and
// notes where a plot has nothing to draw.
#include "dashboard/plots/plot_build.h"

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "tests/dashboard/synthetic_results.h"

namespace gb::dash::plots {
namespace {

using coord::PlotKind;
using coord::PlotSpec;
using coord::ReportSpec;
using dash::testing::make_synthetic;
using dash::testing::Synthetic;

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

PlotSpec lines_of(std::vector<std::string> series) {
  PlotSpec s;
  s.kind = PlotKind::kLines;
  s.series = std::move(series);
  return s;
}

const Line* find_line(const LinesFigure& f, const LinePanel& p, const std::string& legend, bool theory) {
  for (const auto& l : p.lines)
    if (f.legend.at(l.legend) == legend && l.theory == theory) return &l;
  return nullptr;
}

TEST(PlotBuild, DefaultSeriesAreSmallMultiplesOfAtMostSixLines) {
  Synthetic s = make_synthetic();
  PlotSource src = make_plot_source(s.grid, s.results, s.series);
  std::string why;
  // 24 roofline series: a panel per model; weight_format x kv_format x batch_size
  // would be 12 lines a panel, so weight_format moves to the panels.
  LinesFigure f = build_lines(src, lines_of({"decode_latency"}), nullptr, &why);
  ASSERT_EQ(why, "");
  ASSERT_EQ(f.panels.size(), 4u);
  EXPECT_EQ(f.panels[0].title, "m-small \u00b7 f16");
  EXPECT_EQ(f.panels[3].title, "m-large \u00b7 int4-g128");
  for (const auto& p : f.panels) EXPECT_EQ(p.lines.size(), 6u) << p.title;
  EXPECT_EQ(f.legend.size(), 6u);
  EXPECT_EQ(f.legend[0], "f16 / 1");
  EXPECT_EQ(f.legend_title, "kv_format / batch_size");
  EXPECT_EQ(f.x_label, "tokens");
  EXPECT_EQ(f.y_label, "ms");
  // Theory only: nothing dashed; the models' ranges are 4x apart, so the panels
  // share the y axis too.
  std::string html = lines_figure_html(f);
  EXPECT_EQ(count(html, "<polyline"), 24u);
  EXPECT_EQ(count(html, "stroke-dasharray=\"5 3\""), 0u);
  EXPECT_NE(html.find("panels share both axes"), std::string::npos);

  // The speed jobs' series: one per model x weight_format x kv_format at batch 1.
  LinesFigure m = build_lines(src, lines_of({"decode_step_ms"}), nullptr, &why);
  ASSERT_EQ(m.panels.size(), 2u);
  EXPECT_EQ(m.panels[0].lines.size(), 4u);
  EXPECT_EQ(m.legend_title, "weight_format / kv_format");

  // Both, as the grid page draws them by default.
  std::string page = default_series_html(src, s.grid);
  EXPECT_EQ(count(page, "<figure class=\"plot lines\""), 2u);
}

TEST(PlotBuild, MeasuredSolidTheoryDashed) {
  Synthetic s = make_synthetic();
  PlotSource src = make_plot_source(s.grid, s.results, s.series);
  PlotSpec spec = lines_of({"decode_step_ms", "decode_latency"});
  spec.panel = "model";
  spec.color = "weight_format";
  spec.filter = {{"batch_size", 1}};
  std::string why;
  LinesFigure f = build_lines(src, spec, nullptr, &why);
  ASSERT_EQ(why, "");
  // kv_format also varies: with an explicit colour it splits the panels.
  ASSERT_EQ(f.panels.size(), 4u);
  EXPECT_EQ(f.panels[1].title, "m-small \u00b7 int8");
  EXPECT_EQ(f.legend, (std::vector<std::string>{"f16", "int4-g128"}));
  for (const auto& p : f.panels) {
    ASSERT_EQ(p.lines.size(), 4u);
    ASSERT_NE(find_line(f, p, "f16", false), nullptr);
    ASSERT_NE(find_line(f, p, "f16", true), nullptr);
    // The same colour for the measurement and its theory.
    EXPECT_EQ(find_line(f, p, "f16", false)->legend, find_line(f, p, "f16", true)->legend);
  }
  std::string html = lines_figure_html(f);
  EXPECT_EQ(count(html, "<polyline"), 16u);
  EXPECT_EQ(count(html, "stroke-dasharray=\"5 3\" stroke-linejoin"), 8u);  // the theory lines
  EXPECT_NE(html.find("dashed: theory, solid: measured"), std::string::npos);
}

// Reference 002's figure: memory against batch size, one line per KV format.
TEST(PlotBuild, MemoryAgainstBatchSizeAsIn002) {
  Synthetic s = make_synthetic();
  PlotSource src = make_plot_source(s.grid, s.results, s.series);
  PlotSpec spec;
  spec.kind = PlotKind::kLines;
  spec.x = "batch_size";
  spec.y = "kv_cache_bytes";
  spec.color = "kv_format";
  spec.measure = {"memory", "roofline"};
  spec.filter = {{"weight_format", "f16"}};
  std::string why;
  LinesFigure f = build_lines(src, spec, nullptr, &why);
  ASSERT_EQ(why, "");
  ASSERT_EQ(f.panels.size(), 2u);  // a panel per model (the default)
  EXPECT_EQ(f.panels[1].title, "m-large");
  EXPECT_EQ(f.x_label, "batch_size");
  EXPECT_EQ(f.y_label, "kv_cache_bytes (B)");
  for (size_t pi = 0; pi < 2; ++pi) {
    const LinePanel& p = f.panels[pi];
    const std::string& m = dash::testing::models()[pi];
    ASSERT_EQ(p.lines.size(), 4u) << p.title;
    for (const std::string kv : {"f16", "int8"}) {
      const Line* measured = find_line(f, p, kv, false);
      const Line* theory = find_line(f, p, kv, true);
      ASSERT_NE(measured, nullptr);
      ASSERT_NE(theory, nullptr);
      ASSERT_EQ(measured->points.size(), 3u);
      const int batches[] = {1, 4, 16};
      for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(measured->points[i].x, batches[i]);
        EXPECT_DOUBLE_EQ(measured->points[i].y, dash::testing::kv_cache_measured(m, kv, batches[i]));
        EXPECT_DOUBLE_EQ(theory->points[i].y, dash::testing::kv_cache_theory(m, kv, batches[i]));
      }
    }
  }
  // With a report column's scale, the values are drawn as the table prints them.
  ReportSpec report;
  coord::ReportColumn col;
  col.metric = "kv_cache_bytes";
  col.label = "KV MB";
  col.scale = 1e6;
  report.columns = {col};
  LinesFigure scaled = build_lines(src, spec, &report, &why);
  ASSERT_FALSE(scaled.panels.empty());
  EXPECT_EQ(scaled.y_label, "KV MB");
  EXPECT_DOUBLE_EQ(find_line(scaled, scaled.panels[0], "int8", true)->points[2].y, 16.0);
}

// Reference 003's ratios: measured W over theory per model and weight format. The
// measurement (a speed job) and the theory (a roofline job) pair by the bars' keys.
TEST(PlotBuild, RatioBarsAsIn003) {
  Synthetic s = make_synthetic();
  PlotSource src = make_plot_source(s.grid, s.results, s.series);
  PlotSpec spec;
  spec.kind = PlotKind::kBars;
  spec.y = "decode_W_measured";
  spec.over = "decode_W_tokens_per_ms";
  spec.measure = {"speed", "roofline"};
  spec.filter = {{"kv_format", "f16"}, {"batch_size", 1}};
  ReportSpec report;  // groups and bars from the section's rows and pivot
  report.rows = {"model"};
  report.pivot = "weight_format";
  std::string why;
  BarsFigure f = build_bars(src, spec, &report, &why);
  ASSERT_EQ(why, "");
  ASSERT_EQ(f.groups.size(), 2u);
  EXPECT_EQ(f.groups[0].label, "m-small");
  EXPECT_EQ(f.legend, (std::vector<std::string>{"f16", "int4-g128"}));
  for (const auto& g : f.groups) {
    ASSERT_EQ(g.bars.size(), 2u);
    for (const auto& b : g.bars) {
      ASSERT_TRUE(b.value.has_value());
      EXPECT_NEAR(*b.value, 0.8, 1e-12);
      EXPECT_EQ(b.text, "0.800");
    }
  }
  ASSERT_TRUE(f.reference.has_value());
  EXPECT_EQ(*f.reference, 1.0);
  std::string html = bars_figure_html(f);
  EXPECT_EQ(count(html, "<rect class=\"b\""), 4u);
  EXPECT_NE(html.find("class=\"ref\""), std::string::npos);

  // The plain metric, grouped by model and kv_format explicitly, a bar per weight format.
  PlotSpec plain;
  plain.kind = PlotKind::kBars;
  plain.y = "decode_W_tokens_per_ms";
  plain.group = {"model", "kv_format"};
  plain.color = "weight_format";
  plain.measure = {"roofline"};
  BarsFigure p = build_bars(src, plain, nullptr, &why);
  ASSERT_EQ(p.groups.size(), 4u);
  EXPECT_EQ(p.groups[1].label, "m-small \u00b7 int8");
  EXPECT_DOUBLE_EQ(*p.groups[3].bars[1].value, dash::testing::w_theory("m-large", "int4-g128"));
  EXPECT_FALSE(p.reference.has_value());
}

// Perplexity (ppl jobs) against bits per weight (roofline jobs): a point per
// configuration; the roofline's batch_size and the ppl job's dataset do not keep
// them apart, being parameters only one kind has.
TEST(PlotBuild, ScatterPairsTwoJobKinds) {
  Synthetic s = make_synthetic();
  PlotSource src = make_plot_source(s.grid, s.results, s.series);
  PlotSpec spec;
  spec.kind = PlotKind::kScatter;
  spec.x = "weight_bits";
  spec.y = "ppl";
  spec.color = "kv_format";
  spec.measure = {"roofline", "ppl"};
  std::string why;
  ScatterFigure f = build_scatter(src, spec, nullptr, &why);
  ASSERT_EQ(why, "");
  ASSERT_EQ(f.panels.size(), 1u);
  ASSERT_EQ(f.panels[0].points.size(), 8u);
  EXPECT_EQ(f.legend, (std::vector<std::string>{"f16", "int8"}));
  for (const auto& p : f.panels[0].points) {
    EXPECT_TRUE(p.x == 16.0 || p.x == 4.5) << p.x;
    EXPECT_NE(p.tip.find("model="), std::string::npos);
  }
  EXPECT_DOUBLE_EQ(f.panels[0].points[0].y, dash::testing::ppl_of("m-small", "f16", "f16"));
  EXPECT_EQ(f.x_label, "weight_bits (bit)");
  std::string html = scatter_figure_html(f);
  EXPECT_EQ(count(html, "<circle data-s="), 8u);

  spec.panel = "model";
  ScatterFigure panels = build_scatter(src, spec, nullptr, &why);
  ASSERT_EQ(panels.panels.size(), 2u);
  EXPECT_EQ(panels.panels[1].title, "m-large");
  EXPECT_EQ(panels.panels[1].points.size(), 4u);
}

TEST(PlotBuild, ReportSectionDefaultsAndNotes) {
  Synthetic s = make_synthetic();
  PlotSource src = make_plot_source(s.grid, s.results, s.series);
  ReportSpec report;
  report.kind = "roofline";
  report.rows = {"model", "batch_size"};
  report.pivot = "kv_format";
  coord::ReportColumn a, b, c;
  a.metric = "kv_cache_bytes";
  b.metric = "weight_bits";
  c.metric = "batch_size";  // a parameter column: no chart
  report.columns = {a, b, c};
  // Nothing said: grouped bars of each numeric column.
  std::string html = report_plots_html(src, report);
  EXPECT_EQ(count(html, "<figure class=\"plot bars\""), 2u);
  EXPECT_EQ(count(html, "<g class=\"lg\" data-s="), 4u);  // kv_format f16, int8 in each
  // An empty list: none.
  report.plots_given = true;
  EXPECT_EQ(report_plots_html(src, report), "");
  // A plot of a metric nothing has: a note naming what there is.
  PlotSpec missing;
  missing.kind = PlotKind::kBars;
  missing.y = "ttft_ms";
  report.plots = {missing};
  html = report_plots_html(src, report);
  EXPECT_EQ(count(html, "<figure"), 0u);
  EXPECT_NE(html.find("no result of the plotted jobs has the metric &#39;ttft_ms&#39; (metrics: kv_cache_bytes, "
                      "weight_bits, decode_W_tokens_per_ms)"),
            std::string::npos)
      << html;
  PlotSpec series = lines_of({"nope"});
  EXPECT_NE(plot_html(src, series, nullptr).find("no plotted job has a series named nope (series: decode_latency, "
                                                 "decode_step_ms)"),
            std::string::npos);
}

TEST(PlotBuild, NamesWithHtmlAreText) {
  Synthetic s = make_synthetic();
  for (auto& r : s.results) {
    if (r.metric == "weight_bits") r.metric = "<b>bits</b>";
    if (r.params->contains("kv_format") && r.params->at("kv_format") == "int8") {
      Json p = r.params;
      p["kv_format"] = "<i>int8</i>";
      r.params = p;
    }
  }
  PlotSource src = make_plot_source(s.grid, s.results, s.series);
  PlotSpec spec;
  spec.kind = PlotKind::kBars;
  spec.y = "<b>bits</b>";
  spec.group = {"model"};
  spec.color = "kv_format";
  std::string html = plot_html(src, spec, nullptr);
  EXPECT_NE(html.find("&lt;b&gt;bits&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(html.find("&lt;i&gt;int8&lt;/i&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_EQ(html.find("<i>"), std::string::npos);
}

}  // namespace
}  // namespace gb::dash::plots

// The SVG of each plot kind from hand-made figures: small multiples with their
// shared or separate y axes, panel and point caps, dashed theory, single points;
// grouped bars with text cells, negative values and a reference line; scatter
// points; escaping of every label; and the canvas helpers (ticks, ellipsis).
#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "dashboard/plots/bars_plot.h"
#include "dashboard/plots/lines_plot.h"
#include "dashboard/plots/scatter_plot.h"
#include "dashboard/plots/svg_canvas.h"

namespace gb::dash::plots {
namespace {
namespace plot_kinds_test {

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

Line line(size_t legend, double scale, bool theory = false, int points = 5) {
  Line l;
  l.legend = legend;
  l.theory = theory;
  for (int i = 0; i < points; ++i) l.points.push_back({double(i), scale * (1 + i)});
  return l;
}

LinesFigure two_panels(double second_scale) {
  LinesFigure f;
  f.title = "t";
  f.legend = {"a", "b"};
  f.panels = {{"p1", {line(0, 1), line(1, 2)}}, {"p2", {line(0, second_scale), line(1, second_scale)}}};
  return f;
}

// The y tick labels of the SVG, in order.
std::vector<std::string> y_ticks(const std::string& svg) {
  std::vector<std::string> out;
  const std::string open = "<text class=\"tick\" x=\"";
  for (size_t p = svg.find(open); p != std::string::npos; p = svg.find(open, p + 1)) {
    size_t end_attr = svg.find('>', p);
    if (svg.substr(p, end_attr - p).find("text-anchor=\"end\"") == std::string::npos) continue;
    out.push_back(svg.substr(end_attr + 1, svg.find('<', end_attr) - end_attr - 1));
  }
  return out;
}

TEST(LinesPlot, SharedYWhenRangesCompare) {
  LinesFigure near = two_panels(3);
  EXPECT_TRUE(panels_compare(near));
  std::string html = lines_figure_html(near);
  EXPECT_EQ(count(html, "<g class=\"panel\">"), 2u);
  EXPECT_NE(html.find("panels share both axes"), std::string::npos);
  std::vector<std::string> t = y_ticks(html);
  ASSERT_EQ(t.size() % 2, 0u);
  // Both panels carry the same y ticks.
  EXPECT_EQ(std::vector<std::string>(t.begin(), t.begin() + t.size() / 2),
            std::vector<std::string>(t.begin() + t.size() / 2, t.end()));

  LinesFigure far = two_panels(100);
  EXPECT_FALSE(panels_compare(far));
  html = lines_figure_html(far);
  EXPECT_NE(html.find("y scales differ"), std::string::npos);
  t = y_ticks(html);
  EXPECT_NE(std::vector<std::string>(t.begin(), t.begin() + t.size() / 2),
            std::vector<std::string>(t.begin() + t.size() / 2, t.end()));
  far.share_y = 1;  // asked for
  EXPECT_NE(lines_figure_html(far).find("panels share both axes"), std::string::npos);
}

TEST(LinesPlot, TheoryDashedOnlyBesideMeasurements) {
  LinesFigure f;
  f.legend = {"f16"};
  f.panels = {{"", {line(0, 1, true)}}};
  EXPECT_EQ(count(lines_figure_html(f), "stroke-dasharray"), 0u);
  f.panels[0].lines.push_back(line(0, 1.1, false));
  std::string html = lines_figure_html(f);
  EXPECT_EQ(count(html, "stroke-dasharray=\"5 3\" stroke-linejoin"), 1u);
  EXPECT_NE(html.find(">theory</text>"), std::string::npos);
  EXPECT_NE(html.find(">measured</text>"), std::string::npos);
}

TEST(LinesPlot, CapsPanelsAndPointsAndDrawsSinglePoints) {
  LinesFigure f;
  f.legend = {"x"};
  for (int i = 0; i < 15; ++i) f.panels.push_back({"panel " + std::to_string(i), {line(0, 1)}});
  std::string html = lines_figure_html(f);
  EXPECT_EQ(count(html, "<g class=\"panel\">"), kMaxPanels);
  EXPECT_NE(html.find("3 more panels not drawn"), std::string::npos);

  LinesFigure big;
  big.legend = {"long", "one"};
  big.panels = {{"", {line(0, 1, false, 5000), line(1, 1, false, 1)}}};
  html = lines_figure_html(big);
  const size_t p = html.find("points=\"");
  ASSERT_NE(p, std::string::npos);
  const std::string pts = html.substr(p + 8, html.find('"', p + 8) - p - 8);
  EXPECT_LE(count(pts, ","), kMaxLinePoints + 1);
  EXPECT_GE(count(pts, ","), kMaxLinePoints * 9 / 10);
  EXPECT_NE(html.find("long lines thinned"), std::string::npos);
  EXPECT_NE(html.find("<circle cx="), std::string::npos);  // the one-point line
  // A line with NaN points skips them.
  LinesFigure nan;
  nan.legend = {"n"};
  Line l = line(0, 1);
  l.points[2].y = std::numeric_limits<double>::quiet_NaN();
  nan.panels = {{"", {l}}};
  html = lines_figure_html(nan);
  EXPECT_EQ(html.find("nan"), std::string::npos);
}

// Thinning keeps each stretch's lowest and highest point: a one-point spike and
// dip in a 5,000-point line survive, and the ends stay where they were.
TEST(LinesPlot, ThinningKeepsSpikesAndEnds) {
  std::vector<LinePoint> pts;
  for (int i = 0; i < 5000; ++i) pts.push_back({double(i), 1.0 + 0.001 * (i % 7)});
  pts[2345].y = 50;
  pts[3001].y = -20;
  pts[10].y = std::numeric_limits<double>::quiet_NaN();
  const std::vector<LinePoint> t = thin_line(pts);
  ASSERT_LE(t.size(), kMaxLinePoints);
  EXPECT_GE(t.size(), kMaxLinePoints - 2);
  EXPECT_EQ(t.front().x, 0);
  EXPECT_EQ(t.back().x, 4999);
  bool spike = false, dip = false;
  for (size_t i = 0; i < t.size(); ++i) {
    ASSERT_TRUE(std::isfinite(t[i].y));
    if (i > 0) EXPECT_LT(t[i - 1].x, t[i].x);
    spike = spike || (t[i].x == 2345 && t[i].y == 50);
    dip = dip || (t[i].x == 3001 && t[i].y == -20);
  }
  EXPECT_TRUE(spike);
  EXPECT_TRUE(dip);
  // Short lines are kept as they are (less their non-finite points).
  EXPECT_EQ(thin_line(std::vector<LinePoint>(pts.begin(), pts.begin() + 20)).size(), 19u);

  LinesFigure f;
  f.legend = {"x"};
  Line l;
  l.points = pts;
  f.panels = {{"", {l}}};
  const std::string html = lines_figure_html(f);
  EXPECT_NE(html.find("long lines thinned to 400 points (the lowest and highest point of every stretch kept)"), std::string::npos);
}

// Past kMaxPanels, the panels drawn are spread from the first to the last; past
// kMaxPanelLines a panel's other lines are left out, and the legend lists only
// the colours drawn, at most kMaxLegend; the caption counts what is left out.
TEST(LinesPlot, BoundsPanelsLinesAndLegend) {
  EXPECT_EQ(drawn_panels(5), (std::vector<size_t>{0, 1, 2, 3, 4}));
  const std::vector<size_t> spread = drawn_panels(1000);
  ASSERT_EQ(spread.size(), kMaxPanels);
  EXPECT_EQ(spread.front(), 0u);
  EXPECT_EQ(spread.back(), 999u);
  for (size_t i = 1; i < spread.size(); ++i) EXPECT_GT(spread[i], spread[i - 1]);

  LinesFigure f;
  for (int i = 0; i < 2000; ++i) f.legend.push_back("c" + std::to_string(i));
  for (int p = 0; p < 100; ++p) {
    LinePanel panel{"panel " + std::to_string(p), {}};
    for (int k = 0; k < 20; ++k) panel.lines.push_back(line(static_cast<size_t>(p * 20 + k), 1 + k));
    f.panels.push_back(panel);
  }
  std::string html = lines_figure_html(f);
  EXPECT_EQ(count(html, "<g class=\"panel\">"), kMaxPanels);
  EXPECT_NE(html.find(">panel 0</text>"), std::string::npos);
  EXPECT_NE(html.find(">panel 99</text>"), std::string::npos);
  EXPECT_EQ(count(html, "<polyline"), kMaxPanels * 20);
  EXPECT_EQ(count(html, "<g class=\"lg\" data-s="), kMaxLegend);
  EXPECT_NE(html.find("88 more panels not drawn, with their 1760 lines (12 of 100 drawn"), std::string::npos);
  EXPECT_NE(html.find(std::to_string(kMaxPanels * 20 - kMaxLegend) + " more colours not listed in the legend"),
            std::string::npos);
  EXPECT_EQ(html.find("more lines not drawn"), std::string::npos);

  // One crowded panel: kMaxPanelLines of its 100 lines.
  LinesFigure crowded;
  crowded.legend = {"a", "b"};
  crowded.panels.push_back({"", {}});
  for (int k = 0; k < 100; ++k) crowded.panels[0].lines.push_back(line(static_cast<size_t>(k % 2), 1 + k));
  html = lines_figure_html(crowded);
  EXPECT_EQ(count(html, "<polyline"), kMaxPanelLines);
  EXPECT_NE(html.find(std::to_string(100 - kMaxPanelLines) + " more lines not drawn (at most 24 a panel"),
            std::string::npos);
}

TEST(LinesPlot, EscapesEveryLabel) {
  LinesFigure f;
  f.title = "<t>";
  f.x_label = "x&";
  f.y_label = "\"y\"";
  f.legend = {"<b>a</b>"};
  f.legend_title = "<k>";
  Line l = line(0, 1);
  l.tip = "<tip>";
  f.panels = {{"<p>", {l}}};
  std::string html = lines_figure_html(f);
  for (const char* raw : {"<t>", "<b>", "<p>", "<tip>", "<k>", "x&<", "\"y\""}) EXPECT_EQ(html.find(raw), std::string::npos) << raw;
  for (const char* esc : {"&lt;t&gt;", "&lt;b&gt;a&lt;/b&gt;", "&lt;p&gt;", "&lt;tip&gt;", "&lt;k&gt;", "x&amp;", "&quot;y&quot;"})
    EXPECT_NE(html.find(esc), std::string::npos) << esc;
}

TEST(BarsPlot, GroupsTextCellsNegativesAndReference) {
  BarsFigure f;
  f.title = "B <ms>";
  f.legend = {"f16", "int8"};
  f.groups = {{"a", {{2.0, "2", "a f16"}, {1.0, "1", "a int8"}}},
              {"b & c", {{-1.0, "-1", ""}, {std::nullopt, "oom", "b int8: oom"}}},
              {"d", {{3.0, "3", ""}, {}}}};
  f.reference = 1.0;
  std::string html = bars_figure_html(f);
  EXPECT_EQ(count(html, "<rect class=\"b\""), 4u);
  EXPECT_NE(html.find(">oom</text>"), std::string::npos);
  EXPECT_NE(html.find("b &amp; c"), std::string::npos);
  EXPECT_NE(html.find("B &lt;ms&gt;"), std::string::npos);
  EXPECT_NE(html.find("class=\"ref\""), std::string::npos);
  EXPECT_EQ(count(html, "<g class=\"lg\" data-s="), 2u);
  // A negative bar starts at zero and extends left: its x is left of the zero line's.
  EXPECT_NE(html.find(">-1</text>"), std::string::npos);

  BarsFigure many;
  many.legend = {"v"};
  for (int i = 0; i < 50; ++i) many.groups.push_back({"g" + std::to_string(i), {{double(i), std::to_string(i), ""}}});
  html = bars_figure_html(many);
  EXPECT_EQ(count(html, "<rect class=\"b\""), kMaxGroups);
  EXPECT_NE(html.find("the first 40 of 50 rows"), std::string::npos);
  EXPECT_EQ(count(html, "class=\"lg\""), 0u);  // one bar per group: no legend
}

TEST(ScatterPlot, PointsPanelsAndLegend) {
  ScatterFigure f;
  f.title = "ppl against bits";
  f.legend = {"f16", "int8"};
  f.panels = {{"m1", {{16, 10, 0, "<a>"}, {4.5, 10.3, 1, ""}}},
              {"m2", {{16, 2.5, 0, ""}, {std::nan(""), 1, 1, ""}}}};
  std::string html = scatter_figure_html(f);
  EXPECT_EQ(count(html, "<circle data-s="), 3u);
  EXPECT_EQ(count(html, "<g class=\"panel\">"), 2u);
  EXPECT_NE(html.find("&lt;a&gt;"), std::string::npos);
  EXPECT_NE(html.find("panels share both axes"), std::string::npos);
}

TEST(SvgCanvas, TicksAndText) {
  Ticks t = nice_ticks(0.3, 9.2, 5);
  EXPECT_EQ(t.lo, 0);
  EXPECT_EQ(t.hi, 10);
  EXPECT_EQ(t.values.size(), 6u);
  EXPECT_EQ(tick_label(20000, nice_ticks(0, 40000)), "20k");
  EXPECT_EQ(tick_label(2e9, nice_ticks(0, 4e10)), "2G");
  Ticks flat = nice_ticks(5, 5);
  EXPECT_LT(flat.lo, 5);
  EXPECT_GT(flat.hi, 5);
  EXPECT_EQ(ellipsize("abcdef", 4), "abc\u2026");
  EXPECT_EQ(ellipsize("\u00e9\u00e9\u00e9", 3), "\u00e9\u00e9\u00e9");
  EXPECT_EQ(text_chars("\u00e9t\u00e9"), 3u);
  EXPECT_EQ(num(1.26), "1.3");
  EXPECT_EQ(num(std::nan("")), "0.0");
}

}  // namespace plot_kinds_test
}  // namespace
}  // namespace gb::dash::plots

// Line plots as small multiples: one SVG with a panel per value of an axis, the
// lines of each panel coloured by a legend shared over the panels, measured lines
// solid and theory lines dashed (when both are drawn), the x axis shared by every
// panel and the y axis shared when the panels' ranges compare (or as asked).
// Draws what it is given; which lines and panels a grid gets is plot_build's.
#pragma once

#include <string>
#include <vector>

namespace gb::dash::plots {

struct LinePoint {
  double x = 0, y = 0;
};

struct Line {
  size_t legend = 0;     // index into LinesFigure::legend: its colour and label
  bool theory = false;   // drawn dashed when the figure also has measured lines
  std::string tip;       // hover text: which job(s) the line is
  std::vector<LinePoint> points;  // in x order; non-finite points are skipped
};

struct LinePanel {
  std::string title;
  std::vector<Line> lines;
  size_t lines_not_built = 0;  // past kMaxPanelLines, counted but not built (never drawn)
};

struct LinesFigure {
  std::string title;
  std::string x_label, y_label;
  std::vector<std::string> legend;  // one colour each, in this order
  std::string legend_title;         // what the legend's labels are ("weight_format / device")
  std::vector<std::string> legend_colours;  // one per legend entry; empty: the palette in order
  std::vector<LinePanel> panels;
  int share_y = -1;                 // 1 shared, 0 one per panel, -1 shared when ranges compare
  double reference_y = 0;           // a dashed reference line at this y (0: none)
};

// What one figure draws at most, whatever the grid's size (the caption says what
// is left out): a 100,000-job grid's page stays as large as a 1,000-job grid's.
constexpr size_t kMaxPanels = 12;       // past this, kMaxPanels panels evenly spaced over them
constexpr size_t kMaxPanelLines = 24;   // lines of a panel past this are left out
constexpr size_t kMaxLegend = 36;       // legend entries (of the lines drawn) past this are not listed
constexpr size_t kMaxLinePoints = 400;  // longer lines are thinned to this many vertices

// The SVG (a <figure> with a caption saying what is drawn and left out).
std::string lines_figure_html(const LinesFigure& fig);

// `points` without its non-finite points, and when more than kMaxLinePoints
// remain, thinned to at most that many: the first and the last, and in each of
// (kMaxLinePoints - 2) / 2 buckets of equal count between them the lowest and the
// highest point (in their order), so that spikes and dips survive the thinning.
std::vector<LinePoint> thin_line(const std::vector<LinePoint>& points);

// Which of `n` panels a figure draws: all, or kMaxPanels evenly spaced from the
// first to the last.
std::vector<size_t> drawn_panels(size_t n);

// Whether one y range fits all panels: every panel's largest |y| within a
// factor 10 of the others'.
bool panels_compare(const LinesFigure& fig);

}  // namespace gb::dash::plots

// What every SVG plot shares: coordinates as short numbers, "nice" axis ticks,
// text widths and ellipsis, the palette, the <svg> element, a panel's axes and
// grid, and the legend (each entry a .lg group with data-s, which the page's
// script toggles). Not a plot kind (lines_plot, bars_plot, scatter_plot).
#pragma once

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

namespace gb::dash::plots {

// Ten distinguishable colours (Tableau 10); colour(i) cycles through them.
const char* colour(size_t i);
constexpr size_t kPaletteSize = 10;
// Paired colours (Tableau 20): hue `pair` (cycling over 10), dark when `shade` is
// 0 and light when 1: for legends of two parameters, the second with two values.
const char* paired_colour(size_t pair, size_t shade);
// Dash pattern of the k-th time the palette wraps ("" first), for lines.
const char* wrap_dash(size_t i);

constexpr double kCharW = 6.3;  // rough width of one character at the plots' 11px font

// An SVG coordinate: one decimal.
std::string num(double v);
size_t text_chars(const std::string& s);  // code points
// Cuts `s` to at most `max_chars` code points, ending in an ellipsis when cut.
std::string ellipsize(const std::string& s, size_t max_chars);

struct Ticks {
  double lo = 0, hi = 1;
  std::vector<double> values;
};
// Ticks at 1, 2, 5 x 10^k covering [lo, hi] (widened when lo == hi).
Ticks nice_ticks(double lo, double hi, int target = 5);
// A tick's label: short, with k/M/G/T for large magnitudes.
std::string tick_label(double v, const Ticks& t);

// <svg ...> with a role and an accessible label (escaped here).
std::string svg_open(double w, double h, const std::string& label);

// A panel's plotting area and scales.
struct Frame {
  double x0 = 0, x1 = 1, y0 = 1, y1 = 0;  // pixel box: x0 left, x1 right, y0 bottom, y1 top
  Ticks xt, yt;
  double X(double v) const;
  double Y(double v) const;
};
// Grid lines, axes and tick labels of `f`; tick labels only where asked (panels
// that share an axis with a neighbour leave them out).
void draw_frame(std::ostringstream& os, const Frame& f, bool x_labels, bool y_labels);
// Width in pixels that y tick labels of `t` need.
double y_tick_width(const Ticks& t);

struct LegendEntry {
  std::string label;
  std::string swatch;  // SVG of a 22 x 10 swatch drawn at (0, -8)
  int series = -1;     // data-s for toggling; -1: not a toggle
};
// Lays entries out in rows of at most `width` pixels from (x, y); returns the
// height used.
double draw_legend(std::ostringstream& os, const std::vector<LegendEntry>& entries, double x, double y,
                   double width);
double legend_height(const std::vector<LegendEntry>& entries, double width);
std::string line_swatch(const char* colour, bool dashed, const char* dash = "");
std::string box_swatch(const char* colour);
std::string dot_swatch(const char* colour);

}  // namespace gb::dash::plots

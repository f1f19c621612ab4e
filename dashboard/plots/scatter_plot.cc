#include "dashboard/plots/scatter_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "dashboard/html.h"
#include "dashboard/plots/lines_plot.h"
#include "dashboard/plots/svg_canvas.h"

namespace gb::dash::plots {

namespace {

// Axis ticks with a little room around the points (a point on the frame is hard to see).
Ticks padded_ticks(double lo, double hi) {
  if (!(lo <= hi)) lo = 0, hi = 1;
  const double pad = (hi - lo) * 0.05;
  return nice_ticks(lo - pad, hi + pad, 5);
}

}  // namespace

std::string scatter_figure_html(const ScatterFigure& fig) {
  const size_t shown = std::min(fig.panels.size(), kMaxPanels);
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  size_t count = 0;
  for (size_t i = 0; i < shown; ++i) {
    for (const auto& p : fig.panels[i].points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x), ylo = std::min(ylo, p.y), yhi = std::max(yhi, p.y);
      ++count;
    }
  }
  const Ticks xt = padded_ticks(xlo, xhi), yt = padded_ticks(ylo, yhi);
  const double ytw = std::max(20.0, y_tick_width(yt));
  const size_t cols = std::max<size_t>(1, std::min<size_t>(shown, 3));
  const size_t rows = shown == 0 ? 0 : (shown + cols - 1) / cols;
  const double left = 20;
  const double panel_w = shown <= 1 ? 560 : std::min(390.0, 1150.0 / cols);
  const double width = left + cols * panel_w;
  const double plot_h = shown <= 1 ? 260 : 190, panel_h = 20 + plot_h + 24;

  std::vector<LegendEntry> legend;
  for (size_t i = 0; i < fig.legend.size(); ++i)
    legend.push_back({fig.legend[i], dot_swatch(colour(i)), static_cast<int>(i)});
  const double title_h = 22;
  const double legend_h = legend_height(legend, width - 8);
  const double top = title_h + legend_h + (legend_h > 0 ? 6 : 0);
  const double height = top + rows * panel_h + 22;

  std::ostringstream os;
  os << "<figure class=\"plot scatter\">\n" << svg_open(width, height, fig.title);
  os << "<text class=\"title\" x=\"4\" y=\"15\">" << html_escape(ellipsize(fig.title, 150)) << "</text>\n";
  draw_legend(os, legend, 4, title_h, width - 8);
  for (size_t pi = 0; pi < shown; ++pi) {
    const ScatterPanel& p = fig.panels[pi];
    const double ox = left + (pi % cols) * panel_w, oy = top + (pi / cols) * panel_h;
    Frame f;
    f.xt = xt;
    f.yt = yt;
    f.x0 = ox + ytw;
    f.x1 = ox + panel_w - 14;
    f.y1 = oy + 20;
    f.y0 = f.y1 + plot_h;
    os << "<g class=\"panel\">\n";
    if (!p.title.empty()) {
      os << "<text class=\"ptitle\" x=\"" << num(f.x0) << "\" y=\"" << num(oy + 13) << "\"><title>"
         << html_escape(p.title) << "</title>"
         << html_escape(ellipsize(p.title, static_cast<size_t>((f.x1 - f.x0) / 6.8))) << "</text>\n";
    }
    draw_frame(os, f, true, true);
    for (const auto& pt : p.points) {
      if (!std::isfinite(pt.x) || !std::isfinite(pt.y)) continue;
      os << "<circle data-s=\"" << pt.legend << "\" cx=\"" << num(f.X(pt.x)) << "\" cy=\"" << num(f.Y(pt.y))
         << "\" r=\"4\" fill=\"" << colour(pt.legend) << "\" fill-opacity=\"0.85\" stroke=\"#fff\" "
         << "stroke-width=\"0.8\"><title>" << html_escape(pt.tip) << "</title></circle>\n";
    }
    os << "</g>\n";
  }
  const double bottom = top + rows * panel_h;
  if (!fig.x_label.empty()) {
    os << "<text class=\"sub\" x=\"" << num(width / 2) << "\" y=\"" << num(bottom + 12)
       << "\" text-anchor=\"middle\">" << html_escape(fig.x_label) << "</text>\n";
  }
  if (!fig.y_label.empty() && rows > 0) {
    const double cy = top + rows * panel_h / 2;
    os << "<text class=\"sub\" x=\"12\" y=\"" << num(cy) << "\" text-anchor=\"middle\" transform=\"rotate(-90 12 "
       << num(cy) << ")\">" << html_escape(fig.y_label) << "</text>\n";
  }
  os << "</svg>\n";
  std::vector<std::string> notes;
  if (!fig.legend_title.empty() && !fig.legend.empty()) notes.push_back("colour: " + fig.legend_title);
  if (shown > 1) notes.push_back("panels share both axes");
  if (fig.panels.size() > shown) notes.push_back(std::to_string(fig.panels.size() - shown) + " more panels not drawn");
  if (count == 0) notes.push_back("no point has both values");
  if (!notes.empty()) {
    os << "<figcaption>";
    for (size_t i = 0; i < notes.size(); ++i) os << (i ? "; " : "") << html_escape(notes[i]);
    os << ".</figcaption>\n";
  }
  os << "</figure>\n";
  return os.str();
}

}  // namespace gb::dash::plots

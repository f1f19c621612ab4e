#include "dashboard/plots/lines_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "dashboard/html.h"
#include "dashboard/plots/svg_canvas.h"

namespace gb::dash::plots {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMaxWidth = 1270;

struct Range {
  double xlo = kInf, xhi = -kInf, ylo = kInf, yhi = -kInf;
  bool empty() const { return !(xlo <= xhi); }
  void add(const LinePoint& p) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) return;
    xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x);
    ylo = std::min(ylo, p.y), yhi = std::max(yhi, p.y);
  }
};

Range panel_range(const LinePanel& p) {
  Range r;
  for (const auto& l : p.lines)
    for (const auto& pt : l.points) r.add(pt);
  return r;
}

Ticks y_ticks(double lo, double hi, double reference) {
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (reference != 0) lo = std::min(lo, reference), hi = std::max(hi, reference);
  // From zero when the data are not far from it: honest slopes.
  if (lo > 0 && lo < 0.5 * hi) lo = 0;
  return nice_ticks(lo, hi, 4);
}

const char* legend_colour(const LinesFigure& fig, size_t i) {
  return i < fig.legend_colours.size() ? fig.legend_colours[i].c_str() : colour(i);
}

}  // namespace

bool panels_compare(const LinesFigure& fig) {
  double lo = kInf, hi = 0;
  for (const auto& p : fig.panels) {
    Range r = panel_range(p);
    if (r.empty()) continue;
    double m = std::max(std::fabs(r.ylo), std::fabs(r.yhi));
    if (m <= 0) continue;
    lo = std::min(lo, m), hi = std::max(hi, m);
  }
  return !(hi > 0) || hi <= 10 * lo;
}

std::string lines_figure_html(const LinesFigure& fig) {
  const size_t shown = std::min(fig.panels.size(), kMaxPanels);
  bool any_theory = false, any_measured = false, thinned = false;
  for (size_t i = 0; i < shown; ++i) {
    for (const auto& l : fig.panels[i].lines) {
      (l.theory ? any_theory : any_measured) = true;
      thinned = thinned || l.points.size() > kMaxLinePoints;
    }
  }
  const bool dash_theory = any_theory && any_measured;
  LinesFigure cut = fig;
  cut.panels.resize(shown);
  const bool shared_y = fig.share_y == 1 || (fig.share_y == -1 && panels_compare(cut));

  // Scales: x over every panel; y over every panel when shared.
  Range all;
  for (size_t i = 0; i < shown; ++i) {
    Range r = panel_range(fig.panels[i]);
    if (r.empty()) continue;
    all.add({r.xlo, r.ylo});
    all.add({r.xhi, r.yhi});
  }
  if (all.empty()) all = Range{0, 1, 0, 1};
  const Ticks xt = nice_ticks(all.xlo, all.xhi, 5);
  std::vector<Ticks> yts;
  for (size_t i = 0; i < shown; ++i) {
    Range r = shared_y ? all : panel_range(fig.panels[i]);
    if (r.empty()) r = all;
    yts.push_back(y_ticks(r.ylo, r.yhi, fig.reference_y));
  }
  double ytw = 20;
  for (const auto& t : yts) ytw = std::max(ytw, y_tick_width(t));

  const size_t cols = std::max<size_t>(1, std::min<size_t>(shown, 4));
  const size_t rows = shown == 0 ? 0 : (shown + cols - 1) / cols;
  const double left = 20;  // the rotated y label
  const double panel_w = std::min(560.0, (kMaxWidth - left) / cols);
  const double width = left + cols * panel_w;
  const double plot_h = shown == 1 ? 220 : 160, panel_h = 20 + plot_h + 24;

  std::vector<LegendEntry> legend;
  for (size_t i = 0; i < fig.legend.size(); ++i) {
    legend.push_back({fig.legend[i], line_swatch(legend_colour(fig, i), false, wrap_dash(i)), static_cast<int>(i)});
  }
  if (dash_theory) {
    legend.push_back({"measured", line_swatch("#59636e", false), -1});
    legend.push_back({"theory", line_swatch("#59636e", true), -1});
  }
  const double title_h = 22;
  const double legend_h = legend_height(legend, width - 8);
  const double top = title_h + legend_h + (legend_h > 0 ? 6 : 0);
  const double height = top + rows * panel_h + 22;

  std::ostringstream os;
  os << "<figure class=\"plot lines\">\n" << svg_open(width, height, fig.title);
  os << "<text class=\"title\" x=\"4\" y=\"15\">" << html_escape(ellipsize(fig.title, 150)) << "</text>\n";
  draw_legend(os, legend, 4, title_h, width - 8);

  for (size_t pi = 0; pi < shown; ++pi) {
    const LinePanel& p = fig.panels[pi];
    const double ox = left + (pi % cols) * panel_w, oy = top + (pi / cols) * panel_h;
    Frame f;
    f.xt = xt;
    f.yt = yts[pi];
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
    if (fig.reference_y != 0) {
      os << "<line class=\"ref\" x1=\"" << num(f.x0) << "\" y1=\"" << num(f.Y(fig.reference_y)) << "\" x2=\""
         << num(f.x1) << "\" y2=\"" << num(f.Y(fig.reference_y)) << "\"/>\n";
    }
    for (const auto& l : p.lines) {
      const char* c = legend_colour(fig, l.legend);
      const char* dash = dash_theory && l.theory ? "5 3" : wrap_dash(l.legend);
      const size_t stride = std::max<size_t>(1, (l.points.size() + kMaxLinePoints - 1) / kMaxLinePoints);
      std::ostringstream pts;
      size_t count = 0;
      const LinePoint* only = nullptr;
      for (size_t k = 0; k < l.points.size(); ++k) {
        if (k % stride != 0 && k + 1 != l.points.size()) continue;
        const LinePoint& pt = l.points[k];
        if (!std::isfinite(pt.x) || !std::isfinite(pt.y)) continue;
        pts << (count++ ? " " : "") << num(f.X(pt.x)) << "," << num(f.Y(pt.y));
        only = &pt;
      }
      if (count == 0) continue;
      os << "<g class=\"ln\" data-s=\"" << l.legend << "\">";
      if (count == 1) {
        os << "<circle cx=\"" << num(f.X(only->x)) << "\" cy=\"" << num(f.Y(only->y)) << "\" r=\"3\" fill=\""
           << c << "\">";
      } else {
        os << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.8\""
           << (*dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : std::string())
           << " stroke-linejoin=\"round\" points=\"" << pts.str() << "\">";
      }
      os << "<title>" << html_escape(l.tip) << "</title>" << (count == 1 ? "</circle>" : "</polyline>");
      // Points of short lines are marked, so that a single measurement shows.
      if (count > 1 && l.points.size() <= 24) {
        for (const auto& pt : l.points) {
          if (!std::isfinite(pt.x) || !std::isfinite(pt.y)) continue;
          os << "<circle cx=\"" << num(f.X(pt.x)) << "\" cy=\"" << num(f.Y(pt.y)) << "\" r=\"2.2\" fill=\"" << c
             << "\"/>";
        }
      }
      os << "</g>\n";
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
  if (!fig.legend_title.empty()) notes.push_back("colour: " + fig.legend_title);
  if (dash_theory) notes.push_back("dashed: theory, solid: measured");
  if (shown > 1) notes.push_back(shared_y ? "panels share both axes" : "panels share the x axis; y scales differ");
  if (fig.panels.size() > shown) {
    notes.push_back(std::to_string(fig.panels.size() - shown) + " more panels not drawn (at most " +
                    std::to_string(kMaxPanels) + "; a filter or panel in the report's plots picks others)");
  }
  if (thinned) notes.push_back("long lines thinned to " + std::to_string(kMaxLinePoints) + " points");
  if (shown == 0) notes.push_back("nothing to draw");
  if (!notes.empty()) {
    os << "<figcaption>";
    for (size_t i = 0; i < notes.size(); ++i) os << (i ? "; " : "") << html_escape(notes[i]);
    os << ".</figcaption>\n";
  }
  os << "</figure>\n";
  return os.str();
}

}  // namespace gb::dash::plots

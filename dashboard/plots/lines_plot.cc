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

std::vector<LinePoint> thin_line(const std::vector<LinePoint>& points) {
  std::vector<LinePoint> finite;
  finite.reserve(std::min(points.size(), kMaxLinePoints));
  for (const auto& p : points)
    if (std::isfinite(p.x) && std::isfinite(p.y)) finite.push_back(p);
  if (finite.size() <= kMaxLinePoints) return finite;
  const size_t inner = finite.size() - 2, buckets = (kMaxLinePoints - 2) / 2;
  std::vector<LinePoint> out;
  out.reserve(2 + 2 * buckets);
  out.push_back(finite.front());
  for (size_t b = 0; b < buckets; ++b) {
    const size_t lo = 1 + b * inner / buckets, hi = 1 + (b + 1) * inner / buckets;  // [lo, hi)
    if (lo >= hi) continue;
    size_t mn = lo, mx = lo;
    for (size_t i = lo + 1; i < hi; ++i) {
      if (finite[i].y < finite[mn].y) mn = i;
      if (finite[i].y > finite[mx].y) mx = i;
    }
    out.push_back(finite[std::min(mn, mx)]);
    if (mn != mx) out.push_back(finite[std::max(mn, mx)]);
  }
  out.push_back(finite.back());
  return out;
}

std::vector<size_t> drawn_panels(size_t n) {
  std::vector<size_t> out;
  if (n <= kMaxPanels) {
    for (size_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (size_t i = 0; i < kMaxPanels; ++i) out.push_back(i * (n - 1) / (kMaxPanels - 1));
  return out;
}

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

std::string lines_figure_html(const LinesFigure& whole) {
  // What is drawn: at most kMaxPanels panels of at most kMaxPanelLines lines of at
  // most kMaxLinePoints points each; the rest is counted for the caption.
  LinesFigure fig;
  fig.title = whole.title;
  fig.x_label = whole.x_label;
  fig.y_label = whole.y_label;
  fig.legend_title = whole.legend_title;
  fig.share_y = whole.share_y;
  fig.reference_y = whole.reference_y;
  size_t lines_left_out = 0, lines_in_panels_left_out = 0;
  bool thinned = false;
  const std::vector<size_t> picked = drawn_panels(whole.panels.size());
  for (size_t i = 0, next = 0; i < whole.panels.size(); ++i) {
    const LinePanel& p = whole.panels[i];
    if (next >= picked.size() || picked[next] != i) {
      lines_in_panels_left_out += p.lines.size() + p.lines_not_built;
      continue;
    }
    lines_left_out += p.lines_not_built;
    ++next;
    LinePanel cut;
    cut.title = p.title;
    for (size_t li = 0; li < p.lines.size(); ++li) {
      if (li == kMaxPanelLines) {
        lines_left_out += p.lines.size() - li;
        break;
      }
      const Line& l = p.lines[li];
      Line c;
      c.legend = l.legend;
      c.theory = l.theory;
      c.tip = l.tip;
      c.points = thin_line(l.points);
      thinned = thinned || (l.points.size() > kMaxLinePoints && c.points.size() < l.points.size());
      cut.lines.push_back(std::move(c));
    }
    fig.panels.push_back(std::move(cut));
  }
  const size_t shown = fig.panels.size();
  bool any_theory = false, any_measured = false;
  std::vector<bool> legend_used(whole.legend.size(), false);
  for (const auto& p : fig.panels) {
    for (const auto& l : p.lines) {
      (l.theory ? any_theory : any_measured) = true;
      if (l.legend < legend_used.size()) legend_used[l.legend] = true;
    }
  }
  const bool dash_theory = any_theory && any_measured;
  const bool shared_y = fig.share_y == 1 || (fig.share_y == -1 && panels_compare(fig));

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

  // The legend lists the colours of the lines drawn (a line keeps its entry's
  // index, so its colour is the same whatever else is left out).
  std::vector<LegendEntry> legend;
  size_t legend_left_out = 0;
  for (size_t i = 0; i < whole.legend.size(); ++i) {
    if (!legend_used[i]) continue;
    if (legend.size() == kMaxLegend) {
      ++legend_left_out;
      continue;
    }
    legend.push_back({whole.legend[i], line_swatch(legend_colour(whole, i), false, wrap_dash(i)), static_cast<int>(i)});
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
      const char* c = legend_colour(whole, l.legend);
      const char* dash = dash_theory && l.theory ? "5 3" : wrap_dash(l.legend);
      std::ostringstream pts;
      size_t count = 0;
      const LinePoint* only = nullptr;
      for (const LinePoint& pt : l.points) {  // finite, thinned (thin_line)
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
  if (whole.panels.size() > shown) {
    notes.push_back(std::to_string(whole.panels.size() - shown) + " more panels not drawn, with their " +
                    std::to_string(lines_in_panels_left_out) + " lines (" + std::to_string(shown) + " of " +
                    std::to_string(whole.panels.size()) +
                    " drawn, evenly spaced from the first to the last; a filter or panel in the report's plots "
                    "picks others)");
  }
  if (lines_left_out > 0) {
    notes.push_back(std::to_string(lines_left_out) + " more lines not drawn (at most " +
                    std::to_string(kMaxPanelLines) + " a panel; a filter or color in the report's plots picks others)");
  }
  if (legend_left_out > 0) notes.push_back(std::to_string(legend_left_out) + " more colours not listed in the legend");
  if (thinned) {
    notes.push_back("long lines thinned to " + std::to_string(kMaxLinePoints) +
                    " points (the lowest and highest point of every stretch kept)");
  }
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

#include "dashboard/plots/bars_plot.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "dashboard/html.h"
#include "dashboard/plots/svg_canvas.h"

namespace gb::dash::plots {

std::string bars_figure_html(const BarsFigure& fig) {
  const size_t shown = std::min(fig.groups.size(), kMaxGroups);
  const size_t nbars = std::max<size_t>(1, fig.legend.size());
  double lo = 0, hi = 0;
  size_t label_chars = 4, value_chars = 3;
  for (size_t g = 0; g < shown; ++g) {
    label_chars = std::max(label_chars, text_chars(fig.groups[g].label));
    for (const auto& b : fig.groups[g].bars) {
      if (b.value && std::isfinite(*b.value)) lo = std::min(lo, *b.value), hi = std::max(hi, *b.value);
      value_chars = std::max(value_chars, text_chars(b.text));
    }
  }
  if (fig.reference) lo = std::min(lo, *fig.reference), hi = std::max(hi, *fig.reference);
  const Ticks t = nice_ticks(lo, hi, 5);
  label_chars = std::min<size_t>(label_chars, 36);
  value_chars = std::min<size_t>(value_chars, 16);
  if (nbars > 4) value_chars = 2;  // no value labels (below): the plot takes the room

  // Bar thickness shrinks a little with many bars per group, never below 7 px.
  const double bar_h = nbars <= 2 ? 13 : nbars <= 4 ? 10 : 8;
  const double gap = 10;
  const bool labels = bar_h >= 10;
  const double group_h = nbars * bar_h + gap;
  const double width = 560;
  const double x0 = 10 + label_chars * kCharW, x1 = width - 10 - value_chars * kCharW;

  std::vector<LegendEntry> legend;
  if (fig.legend.size() > 1) {
    for (size_t i = 0; i < fig.legend.size(); ++i)
      legend.push_back({fig.legend[i], box_swatch(colour(i)), static_cast<int>(i)});
  }
  const double title_h = fig.value_label.empty() ? 22 : 36;
  const double legend_h = legend_height(legend, width - 8);
  const double top = title_h + legend_h + 6;
  const double plot_h = shown * group_h;
  const double height = top + plot_h + 26;
  Frame f;
  f.xt = t;
  f.x0 = x0;
  f.x1 = x1;
  f.y1 = top - 2;
  f.y0 = top + plot_h;

  std::ostringstream os;
  os << "<figure class=\"plot bars\">\n" << svg_open(width, height, fig.title);
  os << "<text class=\"title\" x=\"4\" y=\"15\">" << html_escape(ellipsize(fig.title, 80)) << "</text>\n";
  if (!fig.value_label.empty()) {
    os << "<text class=\"sub\" x=\"4\" y=\"30\">" << html_escape(ellipsize(fig.value_label, 80)) << "</text>\n";
  }
  draw_legend(os, legend, 4, title_h, width - 8);
  // Vertical grid lines and the value ticks at the bottom.
  for (double v : t.values) {
    const double x = f.X(v);
    os << "<line class=\"grid\" x1=\"" << num(x) << "\" y1=\"" << num(f.y1) << "\" x2=\"" << num(x) << "\" y2=\""
       << num(f.y0) << "\"/><text class=\"tick\" x=\"" << num(x) << "\" y=\"" << num(f.y0 + 15)
       << "\" text-anchor=\"middle\">" << html_escape(tick_label(v, t)) << "</text>\n";
  }
  const double zero = f.X(std::clamp(0.0, t.lo, t.hi));
  for (size_t g = 0; g < shown; ++g) {
    const BarGroup& grp = fig.groups[g];
    const double gy = top + g * group_h;
    os << "<text class=\"label\" x=\"" << num(x0 - 6) << "\" y=\"" << num(gy + nbars * bar_h / 2 + 4)
       << "\" text-anchor=\"end\"><title>" << html_escape(grp.label) << "</title>"
       << html_escape(ellipsize(grp.label, label_chars)) << "</text>\n";
    for (size_t b = 0; b < grp.bars.size() && b < nbars; ++b) {
      const Bar& bar = grp.bars[b];
      const double y = gy + b * bar_h;
      const double ty = y + bar_h / 2 + 3.5;
      if (bar.value && std::isfinite(*bar.value)) {
        const double xv = f.X(*bar.value);
        const double bx = std::min(xv, zero), bw = std::max(std::fabs(xv - zero), 0.8);
        os << "<g class=\"bar\" data-s=\"" << b << "\"><rect class=\"b\" x=\"" << num(bx) << "\" y=\"" << num(y + 0.5)
           << "\" width=\"" << num(bw) << "\" height=\"" << num(bar_h - 1) << "\" fill=\"" << colour(b)
           << "\"><title>" << html_escape(bar.tip) << "</title></rect>";
        // Values printed beside bars thick enough for the text; thinner ones have
        // them in their hover text only (printed, they would overlap).
        if (labels) {
          const double tx = *bar.value >= 0 ? std::max(xv, zero) + 3 : zero + 3;
          os << "<text class=\"value\" x=\"" << num(tx) << "\" y=\"" << num(ty) << "\" font-size=\"10\">"
             << html_escape(ellipsize(bar.text, value_chars)) << "</text>";
        }
        os << "</g>\n";
      } else if (!bar.text.empty()) {
        os << "<g class=\"bar\" data-s=\"" << b << "\"><text class=\"nonum\" x=\"" << num(zero + 3) << "\" y=\""
           << num(ty) << "\" font-size=\"" << (labels ? "10" : "8") << "\"><title>" << html_escape(bar.tip)
           << "</title>" << html_escape(ellipsize(bar.text, value_chars)) << "</text></g>\n";
      }
    }
  }
  os << "<line class=\"axis\" x1=\"" << num(zero) << "\" y1=\"" << num(f.y1) << "\" x2=\"" << num(zero)
     << "\" y2=\"" << num(f.y0) << "\"/><line class=\"axis\" x1=\"" << num(x0) << "\" y1=\"" << num(f.y0)
     << "\" x2=\"" << num(x1) << "\" y2=\"" << num(f.y0) << "\"/>\n";
  if (fig.reference) {
    const double x = f.X(*fig.reference);
    os << "<line class=\"ref\" x1=\"" << num(x) << "\" y1=\"" << num(f.y1) << "\" x2=\"" << num(x) << "\" y2=\""
       << num(f.y0) << "\"/>\n";
  }
  os << "</svg>\n";
  std::vector<std::string> notes;
  if (!fig.legend_title.empty() && fig.legend.size() > 1) notes.push_back("bars: " + fig.legend_title);
  if (fig.groups.size() > shown) {
    notes.push_back("the first " + std::to_string(shown) + " of " + std::to_string(fig.groups.size()) +
                    " rows (the table has them all)");
  }
  if (shown == 0) notes.push_back("no numbers to draw");
  if (!notes.empty()) {
    os << "<figcaption>";
    for (size_t i = 0; i < notes.size(); ++i) os << (i ? "; " : "") << html_escape(notes[i]);
    os << ".</figcaption>\n";
  }
  os << "</figure>\n";
  return os.str();
}

}  // namespace gb::dash::plots

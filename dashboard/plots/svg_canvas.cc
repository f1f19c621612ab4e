#include "dashboard/plots/svg_canvas.h"

#include <algorithm>
#include <cmath>

#include "coordinator/report.h"
#include "dashboard/html.h"

namespace gb::dash::plots {

namespace {
constexpr const char* kPalette[kPaletteSize] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr const char* kPaired[kPaletteSize][2] = {  // in kPalette's hue order
    {"#4e79a7", "#a0cbe8"}, {"#f28e2b", "#ffbe7d"}, {"#e15759", "#ff9d9a"}, {"#499894", "#86bcb6"},
    {"#59a14f", "#8cd17d"}, {"#b6992d", "#f1ce63"}, {"#b07aa1", "#d4a6c8"}, {"#d37295", "#fabfd2"},
    {"#9d7660", "#d7b5a6"}, {"#79706e", "#bab0ac"}};
constexpr const char* kDashes[] = {"", "6 3", "2 2", "8 3 2 3"};
constexpr double kLegendRow = 16;
constexpr double kSwatchW = 22;
}  // namespace

const char* colour(size_t i) { return kPalette[i % kPaletteSize]; }
const char* paired_colour(size_t pair, size_t shade) { return kPaired[pair % kPaletteSize][shade % 2]; }
const char* wrap_dash(size_t i) { return kDashes[(i / kPaletteSize) % (sizeof kDashes / sizeof kDashes[0])]; }

std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(1);
  os << (std::fabs(v) < 0.05 ? 0.0 : v);
  return os.str();
}

size_t text_chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string ellipsize(const std::string& s, size_t max_chars) {
  if (text_chars(s) <= max_chars || max_chars < 2) return s;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if ((c & 0xC0) != 0x80) {
      if (n == max_chars - 1) break;
      ++n;
    }
    out += s[i];
  }
  return out + "\u2026";
}

Ticks nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    if (lo >= 0 && lo - pad < 0) {
      lo = 0;
      hi += pad;
    } else {
      lo -= pad;
      hi += pad;
    }
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  Ticks t;
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  t.lo = first * step;
  t.hi = last * step;
  for (double i = first; i <= last + 1e-9; i += 1) {
    double v = i * step;
    if (std::fabs(v) < step * 1e-9) v = 0;
    t.values.push_back(v);
  }
  return t;
}

std::string tick_label(double v, const Ticks& t) {
  const double big = std::max(std::fabs(t.lo), std::fabs(t.hi));
  if (v == 0) return "0";
  if (big >= 1e13) return coord::format_number(v / 1e12) + "T";
  if (big >= 1e10) return coord::format_number(v / 1e9) + "G";
  if (big >= 1e7) return coord::format_number(v / 1e6) + "M";
  if (big >= 1e4) return coord::format_number(v / 1e3) + "k";
  return coord::format_number(v);
}

std::string svg_open(double w, double h, const std::string& label) {
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << num(w) << "\" height=\""
     << num(h) << "\" viewBox=\"0 0 " << num(w) << " " << num(h) << "\" role=\"img\" aria-label=\""
     << html_escape(label) << "\">\n<title>" << html_escape(label) << "</title>\n";
  return os.str();
}

double Frame::X(double v) const { return x0 + (v - xt.lo) / (xt.hi - xt.lo) * (x1 - x0); }
double Frame::Y(double v) const { return y0 - (v - yt.lo) / (yt.hi - yt.lo) * (y0 - y1); }

double y_tick_width(const Ticks& t) {
  size_t chars = 1;
  for (double v : t.values) chars = std::max(chars, tick_label(v, t).size());
  return chars * kCharW + 8;
}

void draw_frame(std::ostringstream& os, const Frame& f, bool x_labels, bool y_labels) {
  for (double v : f.yt.values) {
    const double y = f.Y(v);
    os << "<line class=\"grid\" x1=\"" << num(f.x0) << "\" y1=\"" << num(y) << "\" x2=\"" << num(f.x1)
       << "\" y2=\"" << num(y) << "\"/>";
    if (y_labels) {
      os << "<text class=\"tick\" x=\"" << num(f.x0 - 5) << "\" y=\"" << num(y + 4) << "\" text-anchor=\"end\">"
         << html_escape(tick_label(v, f.yt)) << "</text>";
    }
    os << "\n";
  }
  for (double v : f.xt.values) {
    const double x = f.X(v);
    os << "<line class=\"grid\" x1=\"" << num(x) << "\" y1=\"" << num(f.y1) << "\" x2=\"" << num(x)
       << "\" y2=\"" << num(f.y0) << "\"/><line class=\"axis\" x1=\"" << num(x) << "\" y1=\"" << num(f.y0)
       << "\" x2=\"" << num(x) << "\" y2=\"" << num(f.y0 + 4) << "\"/>";
    if (x_labels) {
      os << "<text class=\"tick\" x=\"" << num(x) << "\" y=\"" << num(f.y0 + 16) << "\" text-anchor=\"middle\">"
         << html_escape(tick_label(v, f.xt)) << "</text>";
    }
    os << "\n";
  }
  os << "<line class=\"axis\" x1=\"" << num(f.x0) << "\" y1=\"" << num(f.y0) << "\" x2=\"" << num(f.x1)
     << "\" y2=\"" << num(f.y0) << "\"/><line class=\"axis\" x1=\"" << num(f.x0) << "\" y1=\"" << num(f.y1)
     << "\" x2=\"" << num(f.x0) << "\" y2=\"" << num(f.y0) << "\"/>\n";
}

namespace {
double entry_width(const LegendEntry& e) { return kSwatchW + 6 + text_chars(ellipsize(e.label, 48)) * kCharW + 16; }
}  // namespace

double legend_height(const std::vector<LegendEntry>& entries, double width) {
  if (entries.empty()) return 0;
  double x = 0;
  int rows = 1;
  for (const auto& e : entries) {
    const double w = entry_width(e);
    if (x > 0 && x + w > width) {
      ++rows;
      x = 0;
    }
    x += w;
  }
  return rows * kLegendRow;
}

double draw_legend(std::ostringstream& os, const std::vector<LegendEntry>& entries, double x, double y,
                   double width) {
  if (entries.empty()) return 0;
  double cx = 0, cy = y + 11;
  for (const auto& e : entries) {
    const double w = entry_width(e);
    if (cx > 0 && cx + w > width) {
      cx = 0;
      cy += kLegendRow;
    }
    os << "<g class=\"lg\"";
    if (e.series >= 0) os << " data-s=\"" << e.series << "\"";
    os << " transform=\"translate(" << num(x + cx) << " " << num(cy) << ")\">" << e.swatch
       << "<text class=\"label\" x=\"" << num(kSwatchW + 5) << "\" y=\"0\"><title>" << html_escape(e.label)
       << "</title>" << html_escape(ellipsize(e.label, 48)) << "</text></g>\n";
    cx += w;
  }
  return cy - y + kLegendRow - 11;
}

std::string line_swatch(const char* c, bool dashed, const char* dash) {
  std::ostringstream os;
  os << "<line x1=\"0\" y1=\"-4\" x2=\"" << num(kSwatchW) << "\" y2=\"-4\" stroke=\"" << c
     << "\" stroke-width=\"2.5\"";
  if (dashed) os << " stroke-dasharray=\"5 3\"";
  else if (*dash) os << " stroke-dasharray=\"" << dash << "\"";
  os << "/>";
  return os.str();
}

std::string box_swatch(const char* c) {
  return std::string("<rect x=\"6\" y=\"-9\" width=\"10\" height=\"10\" rx=\"2\" fill=\"") + c + "\"/>";
}

std::string dot_swatch(const char* c) {
  return std::string("<circle cx=\"11\" cy=\"-4\" r=\"4\" fill=\"") + c + "\"/>";
}

}  // namespace gb::dash::plots

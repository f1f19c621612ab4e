#include "dashboard/dashboard.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/json_util.h"

namespace gb::dash {

namespace {

using coord::Table;
using coord::TableCell;

// ---------------------------------------------------------------- helpers

// Ten distinguishable colours (Tableau 10).
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);
// Dash patterns used once the colours run out.
constexpr const char* kDashes[] = {"", "6 3", "2 2", "8 3 2 3"};

constexpr double kCharW = 6.4;  // rough width of one character at the charts' 11px font

size_t text_width_chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// Cuts `s` to at most `max_chars` characters (UTF-8 aware), marking the cut.
std::string ellipsize(const std::string& s, size_t max_chars) {
  if (text_width_chars(s) <= max_chars || max_chars < 2) return s;
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

std::string num(double v) {  // SVG coordinates: one decimal is plenty
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(1);
  os << (std::fabs(v) < 0.05 ? 0.0 : v);
  return os.str();
}

struct Ticks {
  double lo = 0, hi = 1;
  std::vector<double> values;
};

// "Nice" ticks (1, 2, 5 x 10^k) covering [lo, hi].
Ticks nice_ticks(double lo, double hi, int target = 5) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    if (lo >= 0 && lo - pad < 0) {
      lo = 0;
      hi = hi + pad;
    } else {
      lo -= pad;
      hi += pad;
    }
  }
  double raw = (hi - lo) / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  Ticks t;
  double first = std::floor(lo / step + 1e-9);
  double last = std::ceil(hi / step - 1e-9);
  t.lo = first * step;
  t.hi = last * step;
  for (double i = first; i <= last + 1e-9; i += 1) {
    double v = i * step;
    if (std::fabs(v) < step * 1e-9) v = 0;
    t.values.push_back(v);
  }
  return t;
}

// Tick labels: short, with k/M/G for large magnitudes.
std::string tick_label(double v, const Ticks& t) {
  double big = std::max(std::fabs(t.lo), std::fabs(t.hi));
  if (v == 0) return "0";
  if (big >= 1e10) return coord::format_number(v / 1e9) + "G";
  if (big >= 1e7) return coord::format_number(v / 1e6) + "M";
  if (big >= 1e4) return coord::format_number(v / 1e3) + "k";
  return coord::format_number(v);
}

// The text of a cell without the " (+x.x%)" delta that build_tables appends.
std::string base_text(const TableCell& c) {
  if (c.delta_pct) {
    size_t p = c.text.rfind(" (");
    if (p != std::string::npos && !c.text.empty() && c.text.back() == ')') return c.text.substr(0, p);
  }
  return c.text;
}

std::string delta_of(const TableCell& c) {
  std::string b = base_text(c);
  return b.size() < c.text.size() ? c.text.substr(b.size() + 1) : "";
}

bool is_key_column(const Table& t, size_t col) {
  if (col < t.columns.size()) return t.columns[col].key;
  if (static_cast<int>(col) < t.key_columns) return true;
  return false;
}

bool column_has_numbers(const Table& t, size_t col) {
  if (is_key_column(t, col)) return false;
  for (const auto& r : t.rows) {
    if (col < r.size() && r[col].value && std::isfinite(*r[col].value)) return true;
  }
  return false;
}

std::string row_label(const Table& t, size_t r) {
  std::string out;
  const auto& row = t.rows[r];
  for (size_t i = 0; i < row.size() && i < t.header.size(); ++i) {
    if (!is_key_column(t, i)) continue;
    if (!out.empty()) out += " \u00b7 ";
    out += row[i].text.empty() ? "-" : row[i].text;
  }
  return out.empty() ? "row " + std::to_string(r + 1) : out;
}

std::string svg_open(double w, double h, const std::string& label) {
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << num(w)
     << "\" height=\"" << num(h) << "\" viewBox=\"0 0 " << num(w) << " " << num(h)
     << "\" role=\"img\" aria-label=\"" << html_escape(label) << "\">\n";
  return os.str();
}

// ---------------------------------------------------------------- the page

const char* kCss = R"css(
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg-alt: #f6f8fa; --accent: #4e79a7; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--fg); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.source { color: var(--muted); margin: 0 0 16px; }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.stat { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.stat b { display: block; font-size: 20px; }
.stat span { color: var(--muted); font-size: 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 10px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.table-wrap { overflow-x: auto; margin: 8px 0 12px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; white-space: nowrap; }
th { background: var(--bg-alt); text-align: left; font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.key { font-weight: 500; }
td.text { text-align: right; color: #b35900; }
td.missing { text-align: center; color: #aab2bb; }
.delta { color: var(--muted); font-size: 12px; margin-left: 4px; }
.charts { display: flex; flex-wrap: wrap; gap: 14px 18px; align-items: flex-start; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px 2px; background: #fff; }
svg.chart { display: block; font: 11px -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
svg.chart .title { font-size: 12.5px; font-weight: 600; fill: var(--fg); }
svg.chart .sub { fill: var(--muted); }
svg.chart .tick { fill: var(--muted); }
svg.chart .grid { stroke: #e6e9ed; stroke-width: 1; }
svg.chart .axis { stroke: #8c959f; stroke-width: 1; }
svg.chart .label { fill: var(--fg); }
svg.chart .value { fill: var(--fg); }
svg.chart .nonum { fill: #b35900; }
details { margin: 12px 0; }
details pre { background: var(--bg-alt); padding: 10px 12px; border-radius: 6px; overflow-x: auto; }
.empty { color: var(--muted); font-style: italic; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
)css";

std::string table_html(const Table& t) {
  std::ostringstream os;
  os << "<div class=\"table-wrap\"><table>\n<thead><tr>";
  for (const auto& h : t.header) os << "<th>" << html_escape(h) << "</th>";
  os << "</tr></thead>\n<tbody>\n";
  for (const auto& row : t.rows) {
    os << "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      const TableCell& c = row[i];
      if (is_key_column(t, i)) {
        os << "<td class=\"key\">" << html_escape(c.text) << "</td>";
      } else if (c.text.empty()) {
        os << "<td class=\"missing\">&ndash;</td>";
      } else if (!c.value) {
        os << "<td class=\"text\">" << html_escape(c.text) << "</td>";
      } else {
        os << "<td class=\"num\"";
        if (c.n > 1) {
          os << " title=\"mean of " << c.n << ", sd " << html_escape(coord::format_number(c.stddev))
             << "\"";
        }
        os << ">" << html_escape(base_text(c));
        std::string d = delta_of(c);
        if (!d.empty()) os << "<span class=\"delta\">" << html_escape(d) << "</span>";
        os << "</td>";
      }
    }
    os << "</tr>\n";
  }
  os << "</tbody>\n</table></div>\n";
  return os.str();
}

// A short legend label for each job: the values of the parameters that differ
// between the jobs shown together (in axis order), plus the repeat.
struct JobInfo {
  Json params = Json::object();
  int repeat = 0;
};

std::vector<std::string> legend_labels(const std::vector<std::string>& hashes,
                                       const std::map<std::string, JobInfo>& info,
                                       const std::vector<std::string>& axis_names,
                                       std::string* varying_out) {
  std::vector<const JobInfo*> jobs;
  for (const auto& h : hashes) {
    auto it = info.find(h);
    jobs.push_back(it == info.end() ? nullptr : &it->second);
  }
  std::vector<std::string> keys;
  std::set<std::string> seen;
  auto consider = [&](const std::string& k) {
    if (seen.count(k)) return;
    seen.insert(k);
    std::set<std::string> values;
    for (const auto* j : jobs) {
      values.insert(j && j->params.contains(k) ? canonical_json(j->params.at(k)) : "\x01");
    }
    if (values.size() > 1) keys.push_back(k);
  };
  for (const auto& a : axis_names) consider(a);
  std::set<std::string> others;
  for (const auto* j : jobs) {
    if (!j || !j->params.is_object()) continue;
    for (auto it = j->params.begin(); it != j->params.end(); ++it) others.insert(it.key());
  }
  for (const auto& k : others) consider(k);
  if (keys.empty()) {  // a single job (or identical ones): name it by its axes
    for (const auto& a : axis_names) {
      bool any = false;
      for (const auto* j : jobs) any = any || (j && j->params.contains(a));
      if (any) keys.push_back(a);
    }
  }
  if (varying_out) {
    *varying_out = "";
    for (const auto& k : keys) *varying_out += (varying_out->empty() ? "" : " / ") + k;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::string label;
    if (jobs[i]) {
      for (const auto& k : keys) {
        if (!label.empty()) label += " / ";
        label += jobs[i]->params.contains(k) ? coord::param_text(jobs[i]->params.at(k)) : "-";
      }
      if (jobs[i]->repeat > 0) label += " #" + std::to_string(jobs[i]->repeat);
    }
    if (label.empty()) label = hashes[i];
    out.push_back(label);
  }
  return out;
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string bar_chart_svg(const Table& t, size_t column) {
  if (column >= t.header.size() || !column_has_numbers(t, column)) return "";
  double scale = 1;
  std::string unit;
  if (column < t.columns.size()) {
    scale = t.columns[column].scale != 0 ? t.columns[column].scale : 1;
    if (scale == 1 && t.columns[column].suffix.empty()) unit = t.columns[column].unit;
  }
  struct Bar {
    std::string label;
    std::optional<double> v;
    std::string text;
  };
  std::vector<Bar> bars;
  double lo = 0, hi = 0;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    Bar b;
    b.label = row_label(t, r);
    if (column < t.rows[r].size()) {
      const TableCell& c = t.rows[r][column];
      if (c.value && std::isfinite(*c.value)) {
        b.v = *c.value / scale;
        lo = std::min(lo, *b.v);
        hi = std::max(hi, *b.v);
      }
      b.text = base_text(c);
    }
    bars.push_back(b);
  }
  Ticks ticks = nice_ticks(lo, hi, 5);

  size_t label_chars = 4, value_chars = 3;
  for (const auto& b : bars) {
    label_chars = std::max(label_chars, text_width_chars(b.label));
    value_chars = std::max(value_chars, text_width_chars(b.text));
  }
  label_chars = std::min<size_t>(label_chars, 34);
  value_chars = std::min<size_t>(value_chars, 18);
  const double width = 520;
  const double x0 = 12 + label_chars * kCharW;
  const double x1 = width - 10 - value_chars * kCharW;
  const double top = 38, pitch = 22, bar_h = 15;
  const double plot_h = bars.size() * pitch;
  const double height = top + plot_h + 28;
  auto X = [&](double v) { return x0 + (v - ticks.lo) / (ticks.hi - ticks.lo) * (x1 - x0); };

  std::ostringstream os;
  std::string title = t.header[column];
  os << svg_open(width, height, title + " by row");
  os << "<title>" << html_escape(title) << "</title>\n";
  os << "<text class=\"title\" x=\"4\" y=\"15\">" << html_escape(ellipsize(title, 70)) << "</text>\n";
  if (!unit.empty()) {
    os << "<text class=\"sub\" x=\"4\" y=\"29\">" << html_escape(unit) << "</text>\n";
  }
  for (double v : ticks.values) {
    double x = X(v);
    os << "<line class=\"grid\" x1=\"" << num(x) << "\" y1=\"" << num(top - 4) << "\" x2=\""
       << num(x) << "\" y2=\"" << num(top + plot_h) << "\"/>";
    os << "<text class=\"tick\" x=\"" << num(x) << "\" y=\"" << num(top + plot_h + 15)
       << "\" text-anchor=\"middle\">" << html_escape(tick_label(v, ticks)) << "</text>\n";
  }
  os << "<line class=\"axis\" x1=\"" << num(x0) << "\" y1=\"" << num(top + plot_h) << "\" x2=\""
     << num(x1) << "\" y2=\"" << num(top + plot_h) << "\"/>\n";
  double zero = X(0);
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    double y = top + i * pitch + (pitch - bar_h) / 2;
    double ty = y + bar_h / 2 + 4;
    os << "<text class=\"label\" x=\"" << num(x0 - 6) << "\" y=\"" << num(ty)
       << "\" text-anchor=\"end\"><title>" << html_escape(b.label) << "</title>"
       << html_escape(ellipsize(b.label, label_chars)) << "</text>";
    if (b.v) {
      double xv = X(*b.v);
      double bx = std::min(xv, zero), bw = std::max(std::fabs(xv - zero), 0.5);
      os << "<rect x=\"" << num(bx) << "\" y=\"" << num(y) << "\" width=\"" << num(bw)
         << "\" height=\"" << num(bar_h) << "\" rx=\"2\" fill=\"" << kPalette[0] << "\"><title>"
         << html_escape(b.label + ": " + b.text) << "</title></rect>";
      double tx = *b.v >= 0 ? xv + 4 : zero + 4;
      os << "<text class=\"value\" x=\"" << num(tx) << "\" y=\"" << num(ty) << "\">"
         << html_escape(ellipsize(b.text, value_chars)) << "</text>";
    } else if (!b.text.empty()) {
      os << "<text class=\"nonum\" x=\"" << num(zero + 4) << "\" y=\"" << num(ty) << "\">"
         << html_escape(ellipsize(b.text, value_chars)) << "</text>";
    }
    os << "\n";
  }
  if (lo < 0) {
    os << "<line class=\"axis\" x1=\"" << num(zero) << "\" y1=\"" << num(top - 4) << "\" x2=\""
       << num(zero) << "\" y2=\"" << num(top + plot_h) << "\"/>\n";
  }
  os << "</svg>\n";
  return os.str();
}

std::string line_chart_svg(const std::string& title, const std::vector<engine::Series>& series,
                           const std::vector<std::string>& labels) {
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  std::string x_unit, y_unit;
  for (const auto& s : series) {
    if (x_unit.empty()) x_unit = s.x_unit;
    if (y_unit.empty()) y_unit = s.y_unit;
    for (const auto& p : s.points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x);
      ylo = std::min(ylo, p.y), yhi = std::max(yhi, p.y);
    }
  }
  if (!std::isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  // Start the y axis at zero when the data are not far from it: honest slopes.
  if (ylo > 0 && ylo < 0.5 * yhi) ylo = 0;
  Ticks xt = nice_ticks(xlo, xhi, 6);
  Ticks yt = nice_ticks(ylo, yhi, 5);

  size_t ytick_chars = 1;
  for (double v : yt.values) ytick_chars = std::max(ytick_chars, tick_label(v, yt).size());
  const double width = 520;
  const double left = 22 + ytick_chars * kCharW + 8, right = 18, top = 30, plot_h = 220;
  const double x0 = left, x1 = width - right, y0 = top + plot_h, y1 = top;
  const double legend_top = y0 + 44;
  // The legend below the plot: two columns when there are many lines.
  const size_t legend_cols = series.size() > 8 ? 2 : 1;
  const size_t legend_rows = (series.size() + legend_cols - 1) / legend_cols;
  const double legend_x = legend_cols > 1 ? 12 : x0;
  const double legend_col_w = (width - 12 - legend_x) / legend_cols;
  const size_t legend_chars = static_cast<size_t>(std::max(8.0, (legend_col_w - 34) / 5.8));
  const double height = legend_top + 16 * legend_rows + 6;
  auto X = [&](double v) { return x0 + (v - xt.lo) / (xt.hi - xt.lo) * (x1 - x0); };
  auto Y = [&](double v) { return y0 - (v - yt.lo) / (yt.hi - yt.lo) * (y0 - y1); };

  std::ostringstream os;
  os << svg_open(width, height, title);
  os << "<title>" << html_escape(title) << "</title>\n";
  os << "<text class=\"title\" x=\"4\" y=\"15\">" << html_escape(ellipsize(title, 80)) << "</text>\n";
  for (double v : yt.values) {
    double y = Y(v);
    os << "<line class=\"grid\" x1=\"" << num(x0) << "\" y1=\"" << num(y) << "\" x2=\"" << num(x1)
       << "\" y2=\"" << num(y) << "\"/><text class=\"tick\" x=\"" << num(x0 - 5) << "\" y=\""
       << num(y + 4) << "\" text-anchor=\"end\">" << html_escape(tick_label(v, yt)) << "</text>\n";
  }
  for (double v : xt.values) {
    double x = X(v);
    os << "<line class=\"grid\" x1=\"" << num(x) << "\" y1=\"" << num(y1) << "\" x2=\"" << num(x)
       << "\" y2=\"" << num(y0) << "\"/><line class=\"axis\" x1=\"" << num(x) << "\" y1=\""
       << num(y0) << "\" x2=\"" << num(x) << "\" y2=\"" << num(y0 + 4) << "\"/><text class=\"tick\" x=\""
       << num(x) << "\" y=\"" << num(y0 + 16) << "\" text-anchor=\"middle\">"
       << html_escape(tick_label(v, xt)) << "</text>\n";
  }
  os << "<line class=\"axis\" x1=\"" << num(x0) << "\" y1=\"" << num(y0) << "\" x2=\"" << num(x1)
     << "\" y2=\"" << num(y0) << "\"/><line class=\"axis\" x1=\"" << num(x0) << "\" y1=\"" << num(y1)
     << "\" x2=\"" << num(x0) << "\" y2=\"" << num(y0) << "\"/>\n";
  if (!x_unit.empty()) {
    os << "<text class=\"sub\" x=\"" << num((x0 + x1) / 2) << "\" y=\"" << num(y0 + 32)
       << "\" text-anchor=\"middle\">" << html_escape(x_unit) << "</text>\n";
  }
  if (!y_unit.empty()) {
    double cy = (y0 + y1) / 2;
    os << "<text class=\"sub\" x=\"12\" y=\"" << num(cy) << "\" text-anchor=\"middle\" transform=\"rotate(-90 12 "
       << num(cy) << ")\">" << html_escape(y_unit) << "</text>\n";
  }
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const char* color = kPalette[i % kPaletteSize];
    const char* dash = kDashes[(i / kPaletteSize) % (sizeof(kDashes) / sizeof(kDashes[0]))];
    // At most ~1500 vertices per line: keep every k-th point and the last one.
    size_t stride = std::max<size_t>(1, s.points.size() / 1500);
    std::ostringstream pts;
    size_t count = 0;
    for (size_t k = 0; k < s.points.size(); ++k) {
      if (k % stride != 0 && k + 1 != s.points.size()) continue;
      const auto& p = s.points[k];
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      pts << (count++ ? " " : "") << num(X(p.x)) << "," << num(Y(p.y));
    }
    const std::string label = i < labels.size() ? labels[i] : s.name;
    if (count == 1) {
      const auto& p = s.points.front();
      os << "<circle cx=\"" << num(X(p.x)) << "\" cy=\"" << num(Y(p.y)) << "\" r=\"2.5\" fill=\""
         << color << "\"/>\n";
    } else if (count > 1) {
      os << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.6\""
         << (*dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : std::string())
         << " stroke-linejoin=\"round\" points=\"" << pts.str() << "\"><title>"
         << html_escape(label) << "</title></polyline>\n";
    }
    double ly = legend_top + 16 * (i % legend_rows);
    double lx = legend_x + legend_col_w * (i / legend_rows);
    os << "<line x1=\"" << num(lx) << "\" y1=\"" << num(ly - 4) << "\" x2=\"" << num(lx + 22)
       << "\" y2=\"" << num(ly - 4) << "\" stroke=\"" << color << "\" stroke-width=\"2.5\""
       << (*dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : std::string()) << "/>"
       << "<text class=\"label\" x=\"" << num(lx + 28) << "\" y=\"" << num(ly) << "\"><title>"
       << html_escape(label) << "</title>" << html_escape(ellipsize(label, legend_chars)) << (s.points.empty() ? " (no points)" : "")
       << "</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

std::string render_dashboard(const coord::Grid& grid, const std::vector<Table>& tables,
                             const std::vector<coord::ResultRow>& results,
                             const SeriesByJob& series) {
  // Jobs: from the grid, completed by what the results and series name.
  std::map<std::string, JobInfo> info;
  std::vector<std::string> job_order;
  for (const auto& j : grid.jobs) {
    if (info.emplace(j.hash, JobInfo{j.params, j.repeat}).second) job_order.push_back(j.hash);
  }
  std::set<std::string> with_results;
  std::set<std::string> devices, versions;
  for (const auto& r : results) {
    with_results.insert(r.hash);
    if (info.emplace(r.hash, JobInfo{r.params, r.repeat}).second) job_order.push_back(r.hash);
    if (r.device.is_object() && r.device.contains("name") && r.device["name"].is_string()) {
      devices.insert(r.device["name"].get<std::string>());
    }
    if (!r.engine_version.empty()) versions.insert(r.engine_version);
  }
  for (const auto& [h, s] : series) {
    if (info.emplace(h, JobInfo{}).second) job_order.push_back(h);
  }
  size_t total = grid.jobs.empty() ? info.size() : grid.jobs.size();
  size_t done = 0;
  std::map<std::string, std::pair<size_t, size_t>> by_kind;  // kind -> (jobs, with results)
  if (!grid.jobs.empty()) {
    for (const auto& j : grid.jobs) {
      bool has = with_results.count(j.hash) > 0;
      done += has;
      auto& k = by_kind[j.kind];
      ++k.first;
      k.second += has;
    }
  } else {
    done = with_results.size();
  }

  // Series grouped by name, in job order.
  std::vector<std::string> series_names;
  std::map<std::string, std::vector<std::pair<std::string, const engine::Series*>>> by_name;
  for (const auto& h : job_order) {
    auto it = series.find(h);
    if (it == series.end()) continue;
    for (const auto& s : it->second) {
      if (!by_name.count(s.name)) series_names.push_back(s.name);
      by_name[s.name].emplace_back(h, &s);
    }
  }
  size_t series_count = 0;
  for (const auto& [n, v] : by_name) series_count += v.size();

  std::ostringstream os;
  const std::string name = grid.name.empty() ? "gridbench" : grid.name;
  os << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
     << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
     << "<title>" << html_escape(name) << " \u2014 gridbench</title>\n<style>" << kCss
     << "</style>\n</head>\n<body>\n<main>\n";
  os << "<h1>" << html_escape(name) << "</h1>\n";
  if (!grid.source.empty()) {
    os << "<p class=\"source\">grid file <code>" << html_escape(grid.source) << "</code></p>\n";
  }

  os << "<div class=\"stats\">";
  auto stat = [&](const std::string& v, const std::string& what) {
    os << "<div class=\"stat\"><b>" << html_escape(v) << "</b><span>" << html_escape(what)
       << "</span></div>";
  };
  stat(std::to_string(total), "jobs");
  stat(std::to_string(done), "with results");
  stat(std::to_string(total >= done ? total - done : 0), "without results");
  stat(std::to_string(tables.size()), tables.size() == 1 ? "table" : "tables");
  stat(std::to_string(series_count), series_count == 1 ? "series" : "series");
  os << "</div>\n";

  os << "<dl class=\"facts\">\n";
  if (!grid.axis_names.empty()) {
    for (const auto& a : grid.axis_names) {
      std::vector<std::string> values;
      std::set<std::string> seen;
      for (const auto& p : grid.points) {
        if (!p.is_object() || !p.contains(a)) continue;
        std::string v = coord::param_text(p.at(a));
        if (seen.insert(v).second) values.push_back(v);
      }
      os << "<dt>" << html_escape(a) << "</dt><dd>";
      for (size_t i = 0; i < values.size(); ++i) {
        os << (i ? ", " : "") << "<code>" << html_escape(values[i]) << "</code>";
      }
      if (values.empty()) os << "&ndash;";
      os << "</dd>\n";
    }
  }
  if (!grid.measures.empty()) {
    os << "<dt>measures</dt><dd>";
    for (size_t i = 0; i < grid.measures.size(); ++i) {
      const auto& m = grid.measures[i];
      os << (i ? ", " : "") << html_escape(m);
      auto k = by_kind.find(m);
      if (k != by_kind.end()) os << " (" << k->second.second << "/" << k->second.first << ")";
    }
    os << "</dd>\n";
  }
  os << "<dt>repeats</dt><dd>" << grid.repeats << "</dd>\n";
  auto list = [&](const char* what, const std::set<std::string>& items) {
    if (items.empty()) return;
    os << "<dt>" << what << "</dt><dd>";
    bool first = true;
    for (const auto& s : items) {
      os << (first ? "" : ", ") << html_escape(s);
      first = false;
    }
    os << "</dd>\n";
  };
  list("devices", devices);
  list("engine", versions);
  os << "</dl>\n";
  if (!grid.spec.is_null() && !grid.spec.empty()) {
    os << "<details><summary>grid file</summary><pre>"
       << html_escape(grid.spec.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace))
       << "</pre></details>\n";
  }

  // Tables, each followed by a bar chart per numeric column.
  os << "<h2 id=\"tables\">Tables</h2>\n";
  if (tables.empty()) os << "<p class=\"empty\">No tables.</p>\n";
  for (size_t ti = 0; ti < tables.size(); ++ti) {
    const Table& t = tables[ti];
    os << "<section class=\"report\" id=\"table-" << ti + 1 << "\">\n<h3>" << html_escape(t.title) << "</h3>\n";
    if (t.rows.empty()) {
      os << "<p class=\"empty\">No results yet.</p>\n";
    }
    os << table_html(t);
    std::ostringstream charts;
    for (size_t c = 0; c < t.header.size(); ++c) {
      std::string svg = bar_chart_svg(t, c);
      if (!svg.empty()) charts << "<figure>\n" << svg << "</figure>\n";
    }
    if (!charts.str().empty()) os << "<div class=\"charts\">\n" << charts.str() << "</div>\n";
    os << "</section>\n";
  }

  // Series: one chart per name, the jobs overlaid.
  if (!series_names.empty()) {
    os << "<h2 id=\"series\">Series</h2>\n<div class=\"charts\">\n";
    for (const auto& n : series_names) {
      const auto& items = by_name[n];
      std::vector<std::string> hashes;
      std::vector<engine::Series> ss;
      for (const auto& [h, s] : items) {
        hashes.push_back(h);
        ss.push_back(*s);
      }
      std::string varying;
      auto labels = legend_labels(hashes, info, grid.axis_names, &varying);
      std::string title = n.empty() ? "series" : n;
      if (!varying.empty() && items.size() > 1) title += " by " + varying;
      os << "<figure>\n" << line_chart_svg(title, ss, labels) << "</figure>\n";
    }
    os << "</div>\n";
  }

  os << "<footer>Generated by gridbench. A static page: no scripts, nothing loaded from the network.</footer>\n";
  os << "</main>\n</body>\n</html>\n";
  return os.str();
}

Status write_dashboard(const coord::Grid& grid, const std::vector<Table>& tables,
                       const std::vector<coord::ResultRow>& results, const SeriesByJob& series,
                       const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Error{out_dir + ": cannot create directory: " + ec.message()};
  const fs::path path = fs::path(out_dir) / "index.html";
  std::string html = render_dashboard(grid, tables, results, series);
  const fs::path tmp = fs::path(out_dir) / ".index.html.tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Error{tmp.string() + ": cannot open for writing: " + std::strerror(errno)};
    f << html;
    f.flush();
    if (!f) return Error{tmp.string() + ": write failed: " + std::strerror(errno)};
  }
  fs::rename(tmp, path, ec);
  if (ec) return Error{path.string() + ": cannot write: " + ec.message()};
  return Status::Ok();
}

}  // namespace gb::dash

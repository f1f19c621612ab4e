#include "dashboard/plots/plot_build.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "common/json_util.h"
#include "common/strings.h"
#include "coordinator/report.h"
#include "dashboard/html.h"
#include "dashboard/plots/svg_canvas.h"

namespace gb::dash::plots {

namespace {

using coord::PlotKind;
using coord::PlotSpec;
using coord::ReportColumn;
using coord::ReportSpec;

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<std::string> minus(const std::vector<std::string>& v, const std::vector<std::string>& drop) {
  std::vector<std::string> out;
  for (const auto& s : v)
    if (!contains(drop, s)) out.push_back(s);
  return out;
}

Selection selection_of(const PlotSpec& spec, const ReportSpec* report) {
  Selection s;
  if (!spec.measure.empty()) s.kinds = spec.measure;
  else if (report && !report->kind.empty()) s.kinds = {report->kind};
  if (report && report->filter.is_object()) s.filter = report->filter;
  if (spec.filter.is_object())
    for (auto it = spec.filter.begin(); it != spec.filter.end(); ++it) s.filter[it.key()] = it.value();
  return s;
}

const ReportColumn* column_of(const ReportSpec* report, const std::string& metric) {
  if (!report) return nullptr;
  for (const auto& c : report->columns)
    if (c.metric == metric) return &c;
  return nullptr;
}

// "B ms" for a column with a label, else "decode_B_ms (ms)".
std::string metric_label(const ReportSpec* report, const std::string& metric, const std::string& unit) {
  const ReportColumn* c = column_of(report, metric);
  if (c && !c->label.empty() && c->label != metric) return c->label;
  const bool scaled = c && c->scale != 1;
  return unit.empty() || scaled ? metric : metric + " (" + unit + ")";
}

double scale_of(const ReportSpec* report, const std::string& metric) {
  const ReportColumn* c = column_of(report, metric);
  return c && c->scale > 0 ? c->scale : 1;
}

std::string unit_of(const std::vector<Cell>& cells, const std::string& metric) {
  for (const auto& c : cells) {
    auto it = c.metrics.find(metric);
    if (it != c.metrics.end() && !it->second.unit.empty()) return it->second.unit;
  }
  return "";
}

std::string value_name_label(const ReportSpec* report, const std::vector<Cell>& cells, const std::string& name) {
  if (is_param(name)) return name;
  return metric_label(report, name, unit_of(cells, name));
}

// y of a cell: the metric's mean (divided by its column's scale), or y / over.
std::optional<double> y_of(const Cell& c, const PlotSpec& spec, double scale) {
  std::optional<double> y = cell_value(c, spec.y);
  if (!y) return std::nullopt;
  if (spec.over.empty()) return *y / scale;
  std::optional<double> d = cell_value(c, spec.over);
  if (!d || *d == 0) return std::nullopt;
  return *y / *d;
}

std::string no_metric(const PlotSource& src, const Selection& sel, const std::string& name) {
  std::vector<std::string> known = metric_names(src, sel);
  if (known.size() > 40) known.resize(40), known.push_back("...");
  return "no result of the plotted jobs has the metric '" + name + "' (metrics: " +
         (known.empty() ? std::string("none") : join(known, ", ")) + ")";
}

// An index per distinct label, in order of first appearance.
struct Labels {
  std::vector<std::string> names;
  std::map<std::string, size_t> index;
  size_t of(const std::string& s) {
    auto [it, fresh] = index.emplace(s, names.size());
    if (fresh) names.push_back(s);
    return it->second;
  }
};

// Panel and colour parameters of a lines plot. Without an explicit colour, the
// varying parameters other than the panel's colour the lines; while a panel would
// get more than kMaxLinesPerPanel colours, the outermost moves to the panels, the
// last one too (a context axis of 1,000 values: a panel per model and context,
// each with its line, of which lines_figure_html draws kMaxPanels). With an
// explicit colour, the other varying parameters split panels.
struct LineKeys {
  std::vector<std::string> panel, color, points;  // points: what orders a line's points (x metric)
};

LineKeys line_keys(const PlotSpec& spec, const std::vector<Json>& params, const std::vector<std::string>& axes,
                   const std::vector<std::string>& except, bool x_is_metric) {
  LineKeys k;
  const std::vector<std::string> vary = intersect(varying_params(params, axes, except), common_params(params));
  if (!spec.panel.empty()) k.panel = {spec.panel};
  else if (contains(vary, "model")) k.panel = {"model"};
  if (!spec.color.empty()) {
    k.color = {spec.color};
    const auto rest = minus(minus(vary, k.panel), k.color);
    if (x_is_metric) k.points = rest;
    else k.panel.insert(k.panel.end(), rest.begin(), rest.end());
    return k;
  }
  if (x_is_metric) {  // one line per panel through every point, unless told to colour
    k.points = minus(vary, k.panel);
    return k;
  }
  k.color = minus(vary, k.panel);
  auto max_colours = [&]() {
    std::map<std::string, std::set<std::string>> per_panel;
    for (const auto& p : params) per_panel[values_label(p, k.panel)].insert(values_label(p, k.color));
    size_t m = 0;
    for (const auto& [_, s] : per_panel) m = std::max(m, s.size());
    return m;
  };
  while (!k.color.empty() && max_colours() > kMaxLinesPerPanel) {
    k.panel.push_back(k.color.front());
    k.color.erase(k.color.begin());
  }
  return k;
}

// Legend colours for two colour parameters whose second takes two values: one hue
// per value of the first, dark and light for the second (f16 / rtx4090 dark blue,
// f16 / h100-sxm light blue). Empty (the plain palette) otherwise.
std::vector<std::string> paired_colours(const std::vector<Json>& params, const std::vector<std::string>& keys,
                                        const std::vector<std::string>& legend) {
  if (keys.size() != 2) return {};
  Labels first, second;
  std::map<std::string, std::pair<size_t, size_t>> of;  // legend label -> (hue, shade)
  for (const auto& p : params) {
    const size_t a = first.of(values_label(p, {keys[0]})), b = second.of(values_label(p, {keys[1]}));
    of.emplace(values_label(p, keys, " / "), std::make_pair(a, b));
  }
  if (second.names.size() != 2 || first.names.size() > kPaletteSize) return {};
  std::vector<std::string> out;
  for (const auto& l : legend) {
    auto it = of.find(l);
    if (it == of.end()) return {};
    out.push_back(paired_colour(it->second.first, it->second.second));
  }
  return out;
}

LinesFigure series_lines(const PlotSource& src, const PlotSpec& spec, const ReportSpec* report, std::string* why) {
  LinesFigure fig;
  const Selection sel = selection_of(spec, report);
  const std::vector<Json> params = selected_series_params(src, sel, spec.series);
  if (params.empty()) {
    std::vector<std::string> known = series_names(src, sel);
    *why = "no plotted job has a series named " + join(spec.series, " or ") + " (series: " +
           (known.empty() ? std::string("none") : join(known, ", ")) + ")";
    return fig;
  }
  const LineKeys keys = line_keys(spec, params, src.axis_names, {}, false);
  const std::vector<std::string> vary = varying_params(params, src.axis_names);
  Labels panels, legend;
  std::map<size_t, LinePanel> by_panel;
  for (const auto& j : src.jobs) {
    auto it = src.series->find(j.hash);
    if (it == src.series->end() || !selects(sel, j.kind, j.params)) continue;
    for (const auto& s : it->second) {
      if (!contains(spec.series, s.name)) continue;
      if (fig.x_label.empty()) fig.x_label = s.x_unit;
      if (fig.y_label.empty()) fig.y_label = s.y_unit;
      // Its legend entry and panel even when it is only counted: the entries and
      // panels (and so the colours) are those of every line.
      const size_t legend_index =
          legend.of(keys.color.empty() ? s.name : values_label(j.params, keys.color, " / "));
      LinePanel& panel = by_panel[panels.of(values_label(j.params, keys.panel))];
      if (panel.lines.size() == kMaxPanelLines) {  // never drawn (20,000 jobs' curves): counted only
        ++panel.lines_not_built;
        continue;
      }
      Line l;
      l.legend = legend_index;
      l.theory = j.theory;
      l.tip = s.name + " \u2014 " + j.kind + " " + j.hash + (j.repeat ? " #" + std::to_string(j.repeat) : "") +
              (vary.empty() ? "" : ": " + params_tip(j.params, vary));
      for (const auto& p : s.points) l.points.push_back({p.x, p.y});
      panel.lines.push_back(std::move(l));
    }
  }
  for (size_t i = 0; i < panels.names.size(); ++i) {
    LinePanel p = std::move(by_panel[i]);
    p.title = keys.panel.empty() ? "" : panels.names[i];
    fig.panels.push_back(std::move(p));
  }
  fig.legend = legend.names;
  fig.legend_title = keys.color.empty() ? "" : join(keys.color, " / ");
  fig.legend_colours = paired_colours(params, keys.color, legend.names);
  fig.title = !spec.title.empty() ? spec.title
                                  : join(spec.series, ", ") + (keys.panel.empty() ? "" : " by " + join(keys.panel, " \u00b7 "));
  fig.share_y = spec.share_y;
  return fig;
}

LinesFigure metric_lines(const PlotSource& src, const PlotSpec& spec, const ReportSpec* report, std::string* why) {
  LinesFigure fig;
  const Selection sel = selection_of(spec, report);
  const bool x_param = is_param(spec.x);
  std::vector<std::string> metrics = {spec.y};
  if (!spec.over.empty()) metrics.push_back(spec.over);
  if (!x_param) metrics.push_back(spec.x);
  const std::vector<Json> params = selected_params(src, sel, metrics);
  const LineKeys keys = line_keys(spec, params, src.axis_names, x_param ? std::vector<std::string>{spec.x}
                                                                         : std::vector<std::string>{},
                                  !x_param);
  std::vector<std::string> cell_keys = keys.panel;
  cell_keys.insert(cell_keys.end(), keys.color.begin(), keys.color.end());
  cell_keys.insert(cell_keys.end(), keys.points.begin(), keys.points.end());
  if (x_param) cell_keys.push_back(spec.x);
  const std::vector<Cell> cells = make_cells(src, sel, cell_keys, /*by_theory=*/true, metrics);
  const double scale = spec.over.empty() ? scale_of(report, spec.y) : 1;

  struct Key {
    size_t panel, legend;
    bool theory;
    bool operator<(const Key& o) const {
      return std::tie(panel, legend, theory) < std::tie(o.panel, o.legend, o.theory);
    }
  };
  Labels panels, legend;
  std::map<Key, Line> lines;
  bool any_y = false;
  for (const auto& c : cells) {
    if (c.metrics.count(spec.y)) any_y = true;
    const std::optional<double> x = cell_value(c, spec.x), y = y_of(c, spec, scale);
    if (!x || !y) continue;
    const std::string colour_label = keys.color.empty() ? spec.y : values_label(c.params, keys.color, " / ");
    Key k{panels.of(values_label(c.params, keys.panel)), legend.of(colour_label), c.theory};
    Line& l = lines[k];
    l.legend = k.legend;
    l.theory = c.theory;
    l.tip = colour_label;
    l.points.push_back({*x, *y});
  }
  if (!any_y) {
    *why = no_metric(src, sel, spec.y);
    return fig;
  }
  if (lines.empty()) {
    *why = "no plotted result has both '" + spec.x + "' and '" + spec.y + "'" +
           (spec.over.empty() ? "" : " and '" + spec.over + "'");
    return fig;
  }
  fig.panels.resize(panels.names.size());
  for (size_t i = 0; i < panels.names.size(); ++i) fig.panels[i].title = keys.panel.empty() ? "" : panels.names[i];
  for (auto& [k, l] : lines) {
    std::sort(l.points.begin(), l.points.end(), [](const LinePoint& a, const LinePoint& b) { return a.x < b.x; });
    fig.panels[k.panel].lines.push_back(std::move(l));
  }
  fig.legend = legend.names;
  fig.legend_title = join(keys.color, " / ");
  fig.legend_colours = paired_colours(params, keys.color, legend.names);
  fig.x_label = value_name_label(report, cells, spec.x);
  fig.y_label = spec.over.empty() ? value_name_label(report, cells, spec.y) : spec.y + " / " + spec.over;
  if (!spec.over.empty()) fig.reference_y = 1;
  fig.title = !spec.title.empty() ? spec.title
                                  : fig.y_label + " against " + spec.x +
                                        (keys.panel.empty() ? "" : " by " + join(keys.panel, " \u00b7 "));
  fig.share_y = spec.share_y;
  return fig;
}

}  // namespace

LinesFigure build_lines(const PlotSource& src, const PlotSpec& spec, const ReportSpec* report, std::string* why) {
  std::string ignored;
  if (!why) why = &ignored;
  return spec.series.empty() ? metric_lines(src, spec, report, why) : series_lines(src, spec, report, why);
}

BarsFigure build_bars(const PlotSource& src, const PlotSpec& spec, const ReportSpec* report, std::string* why) {
  std::string ignored;
  if (!why) why = &ignored;
  BarsFigure fig;
  const Selection sel = selection_of(spec, report);
  std::vector<std::string> group = !spec.group.empty() ? spec.group : report ? report->rows : std::vector<std::string>{};
  const std::string colour = !spec.color.empty() ? spec.color : report ? report->pivot : "";
  group = minus(group, {colour});
  std::vector<std::string> keys = group;
  if (!colour.empty()) keys.push_back(colour);
  std::vector<std::string> metrics = {spec.y};
  if (!spec.over.empty()) metrics.push_back(spec.over);
  const std::vector<Cell> cells = make_cells(src, sel, keys, /*by_theory=*/false, metrics);
  const ReportColumn* col = spec.over.empty() ? column_of(report, spec.y) : nullptr;
  const double scale = spec.over.empty() ? scale_of(report, spec.y) : 1;

  Labels groups, bars;
  std::map<std::pair<size_t, size_t>, Bar> at;
  for (const auto& c : cells) {
    auto m = c.metrics.find(spec.y);
    if (m == c.metrics.end()) continue;
    Bar b;
    b.value = y_of(c, spec, scale);
    if (b.value) {
      b.text = spec.over.empty() ? coord::format_number(*b.value * scale, col ? col->digits : -1, scale,
                                                        col ? col->suffix : "", col && col->truncate)
                                 : coord::format_number(*b.value, 3);
    } else {
      b.text = m->second.text;
    }
    const std::string g = group.empty() ? "all" : values_label(c.params, group);
    const std::string v = colour.empty() ? spec.y : values_label(c.params, {colour});
    b.tip = g + (colour.empty() ? "" : " \u00b7 " + v) + ": " + b.text +
            (m->second.n > 1 ? " (mean of " + std::to_string(m->second.n) + ")" : "");
    at[{groups.of(g), bars.of(v)}] = std::move(b);
  }
  if (at.empty()) {
    *why = no_metric(src, sel, spec.y);
    return fig;
  }
  for (size_t g = 0; g < groups.names.size(); ++g) {
    BarGroup grp;
    grp.label = groups.names[g];
    for (size_t b = 0; b < bars.names.size(); ++b) {
      auto it = at.find({g, b});
      grp.bars.push_back(it == at.end() ? Bar{} : it->second);
    }
    fig.groups.push_back(std::move(grp));
  }
  fig.legend = bars.names;
  fig.legend_title = colour;
  const std::string unit = unit_of(cells, spec.y);
  if (spec.over.empty()) {
    const std::string label = metric_label(report, spec.y, unit);
    const ReportColumn* c = column_of(report, spec.y);
    const bool labelled = c && !c->label.empty() && c->label != spec.y;
    fig.title = !spec.title.empty() ? spec.title : label;
    // Under a column's own label, the metric it shows.
    fig.value_label = labelled ? spec.y + (unit.empty() || scale != 1 ? "" : ", " + unit) : "";
  } else {
    fig.title = !spec.title.empty() ? spec.title : spec.y + " / " + spec.over;
    fig.value_label = "ratio " + spec.y + " / " + spec.over + " (1: equal)";
    fig.reference = 1.0;
  }
  if (!group.empty()) fig.value_label += (fig.value_label.empty() ? "" : "; ") + std::string("rows: ") + join(group, " \u00b7 ");
  return fig;
}

ScatterFigure build_scatter(const PlotSource& src, const PlotSpec& spec, const ReportSpec* report,
                            std::string* why) {
  std::string ignored;
  if (!why) why = &ignored;
  ScatterFigure fig;
  const Selection sel = selection_of(spec, report);
  std::vector<std::string> metrics;
  for (const auto& n : {spec.x, spec.y})
    if (!is_param(n)) metrics.push_back(n);
  // Each point is one configuration: the parameters that vary among the results
  // with x or y and that all of them have (x and y may come from different kinds).
  const std::vector<Json> params = selected_params(src, sel, metrics);
  const std::vector<std::string> vary = intersect(varying_params(params, src.axis_names), common_params(params));
  std::vector<std::string> keys = vary;
  for (const auto& k : {spec.panel, spec.color})
    if (!k.empty() && !contains(keys, k)) keys.push_back(k);
  const std::vector<Cell> cells = make_cells(src, sel, keys, /*by_theory=*/false, metrics);
  const double xs = is_param(spec.x) ? 1 : scale_of(report, spec.x), ys = is_param(spec.y) ? 1 : scale_of(report, spec.y);
  Labels panels, legend;
  std::map<size_t, ScatterPanel> by_panel;
  bool any_x = is_param(spec.x), any_y = is_param(spec.y);
  for (const auto& c : cells) {
    any_x = any_x || c.metrics.count(spec.x);
    any_y = any_y || c.metrics.count(spec.y);
    const std::optional<double> x = cell_value(c, spec.x), y = cell_value(c, spec.y);
    if (!x || !y) continue;
    ScatterPoint p;
    p.x = *x / xs;
    p.y = *y / ys;
    p.legend = spec.color.empty() ? 0 : legend.of(values_label(c.params, {spec.color}));
    p.tip = params_tip(c.params, vary) + (vary.empty() ? "" : ": ") + spec.x + " " + coord::format_number(p.x) +
            ", " + spec.y + " " + coord::format_number(p.y);
    by_panel[panels.of(spec.panel.empty() ? "" : values_label(c.params, {spec.panel}))].points.push_back(p);
  }
  if (!any_x || !any_y) {
    *why = no_metric(src, sel, any_x ? spec.y : spec.x);
    return fig;
  }
  if (by_panel.empty()) {
    *why = "no plotted result has both '" + spec.x + "' and '" + spec.y + "'";
    return fig;
  }
  for (size_t i = 0; i < panels.names.size(); ++i) {
    ScatterPanel p = std::move(by_panel[i]);
    p.title = panels.names[i];
    fig.panels.push_back(std::move(p));
  }
  fig.legend = legend.names;
  fig.legend_title = spec.color;
  fig.x_label = value_name_label(report, cells, spec.x);
  fig.y_label = value_name_label(report, cells, spec.y);
  fig.title = !spec.title.empty() ? spec.title
                                  : fig.y_label + " against " + fig.x_label +
                                        (spec.panel.empty() ? "" : " by " + spec.panel);
  return fig;
}

std::string plot_html(const PlotSource& src, const PlotSpec& spec, const ReportSpec* report) {
  std::string why;
  std::string html;
  switch (spec.kind) {
    case PlotKind::kLines: {
      LinesFigure f = build_lines(src, spec, report, &why);
      if (why.empty()) html = lines_figure_html(f);
      break;
    }
    case PlotKind::kBars: {
      BarsFigure f = build_bars(src, spec, report, &why);
      if (why.empty()) html = bars_figure_html(f);
      break;
    }
    case PlotKind::kScatter: {
      ScatterFigure f = build_scatter(src, spec, report, &why);
      if (why.empty()) html = scatter_figure_html(f);
      break;
    }
  }
  if (!why.empty()) {
    std::string what = spec.title.empty() ? std::string(coord::plot_kind_name(spec.kind)) + " plot" : spec.title;
    html = "<p class=\"note\">" + html_escape(what) + ": " + html_escape(why) + ".</p>\n";
  }
  return html;
}

std::string report_plots_html(const PlotSource& src, const ReportSpec& report) {
  std::string out;
  if (report.plots_given) {
    for (const auto& p : report.plots) out += plot_html(src, p, &report);
    return out.empty() ? "" : "<div class=\"charts\">\n" + out + "</div>\n";
  }
  // Defaults: grouped bars of every column with numbers.
  PlotSpec probe;
  const Selection sel = selection_of(probe, &report);
  std::vector<std::string> metrics;
  if (!report.columns.empty()) {
    // A column of its own filter (or a derived one) is a slice of a metric that the
    // bars of the metric over the report's jobs would mix; it gets no default plot.
    for (const auto& c : report.columns)
      if (!contains(metrics, c.metric) && !is_param(c.metric) && c.filter.empty() && c.against().empty())
        metrics.push_back(c.metric);
  } else {
    metrics = metric_names(src, sel);
  }
  size_t drawn = 0, skipped = 0;
  for (const auto& m : metrics) {
    PlotSpec s;
    s.kind = PlotKind::kBars;
    s.y = m;
    std::string why;
    BarsFigure f = build_bars(src, s, &report, &why);
    size_t numbers = 0;
    for (const auto& g : f.groups)
      for (const auto& b : g.bars) numbers += b.value.has_value();
    if (!why.empty() || numbers < 2) continue;
    if (drawn == kMaxDefaultBarCharts) {
      ++skipped;
      continue;
    }
    out += bars_figure_html(f);
    ++drawn;
  }
  if (skipped > 0) {
    out += "<p class=\"note\">" + std::to_string(skipped) +
           " more columns are not drawn; the report's \"plots\" can name the ones to draw.</p>\n";
  }
  return out.empty() ? "" : "<div class=\"charts\">\n" + out + "</div>\n";
}

std::string default_series_html(const PlotSource& src, const coord::Grid& grid) {
  std::set<std::string> drawn;
  for (const auto& r : grid.reports)
    for (const auto& p : r.plots)
      if (p.kind == PlotKind::kLines) drawn.insert(p.series.begin(), p.series.end());
  std::string out;
  for (const auto& name : series_names(src, Selection{})) {
    if (drawn.count(name)) continue;
    PlotSpec s;
    s.kind = PlotKind::kLines;
    s.series = {name};
    out += plot_html(src, s, nullptr);
  }
  return out.empty() ? "" : "<div class=\"charts\">\n" + out + "</div>\n";
}

}  // namespace gb::dash::plots

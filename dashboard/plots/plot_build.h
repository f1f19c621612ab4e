// What a grid's page draws, from its report sections' `plots` (coordinator/
// plot_spec.h) or, where a section says nothing, sensible defaults: grouped bars
// of each numeric column (one group per table row, one bar per pivot value), and
// for every series name no plot draws, small multiples (a panel per model, at
// most six lines a panel: past that the colour parameters move to the panels, of
// which a figure draws at most kMaxPanels). Turns a PlotSpec and the results into the figure the
// plot kinds draw (lines_plot, bars_plot, scatter_plot).
//
// A plot inside a report section inherits the section's job kind and filter (its
// own `measure` and `filter` narrow or replace them); bars inherit its rows as
// groups and its pivot as bars, and a column's label, scale and digits when the
// plot shows that column's metric.
#pragma once

#include <string>
#include <vector>

#include "coordinator/grid/grid.h"
#include "dashboard/plots/bars_plot.h"
#include "dashboard/plots/lines_plot.h"
#include "dashboard/plots/plot_data.h"
#include "dashboard/plots/scatter_plot.h"

namespace gb::dash::plots {

constexpr size_t kMaxLinesPerPanel = 6;    // default panels are split further past this
constexpr size_t kMaxDefaultBarCharts = 12;  // per report section

// The figures (HTML) of one report section: its plots, or its default bars.
std::string report_plots_html(const PlotSource& src, const coord::ReportSpec& report);
// One small-multiples figure per series name that no lines plot of `grid` names.
std::string default_series_html(const PlotSource& src, const coord::Grid& grid);

// The figures of one plot, for tests. `report` may be null (a grid-wide plot).
// When there is nothing to draw, the figure is empty and `why` says why.
LinesFigure build_lines(const PlotSource& src, const coord::PlotSpec& spec, const coord::ReportSpec* report,
                        std::string* why);
BarsFigure build_bars(const PlotSource& src, const coord::PlotSpec& spec, const coord::ReportSpec* report,
                      std::string* why);
ScatterFigure build_scatter(const PlotSource& src, const coord::PlotSpec& spec, const coord::ReportSpec* report,
                            std::string* why);
// The HTML of one plot: its figure, or a note saying why there is none.
std::string plot_html(const PlotSource& src, const coord::PlotSpec& spec, const coord::ReportSpec* report);

}  // namespace gb::dash::plots

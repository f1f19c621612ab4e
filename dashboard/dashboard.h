// The static HTML dashboard: one self-contained page (inline CSS and SVG, no
// scripts, nothing fetched from the network) with a grid's summary, its report
// tables, a horizontal bar chart per numeric table column and a line chart per
// series name (the series of several jobs overlaid, with a legend).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coordinator/grid.h"
#include "coordinator/store/job_store.h"
#include "coordinator/report.h"
#include "engine/jobs/job_kinds.h"

namespace gb::dash {

// Series of each job's current result, by job hash.
using SeriesByJob = std::map<std::string, std::vector<engine::Series>>;

// The page as a string.
std::string render_dashboard(const coord::Grid& grid, const std::vector<coord::Table>& tables,
                             const std::vector<coord::ResultRow>& results,
                             const SeriesByJob& series);

// Writes render_dashboard(...) to out_dir/index.html, creating out_dir as needed.
Status write_dashboard(const coord::Grid& grid, const std::vector<coord::Table>& tables,
                       const std::vector<coord::ResultRow>& results, const SeriesByJob& series,
                       const std::string& out_dir);

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view s);

// The pieces of the page, for reuse and tests: an SVG bar chart of one table
// column ("" when the column holds no number), and an SVG line chart of several
// series of one name, `labels[i]` naming `series[i]` in the legend.
std::string bar_chart_svg(const coord::Table& table, size_t column);
std::string line_chart_svg(const std::string& title, const std::vector<engine::Series>& series,
                           const std::vector<std::string>& labels);

}  // namespace gb::dash

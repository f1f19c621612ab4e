// One grid's page: its name, description and facts (axes, measures, devices,
// engine versions, last update), each report table followed by its plots, the
// series plots, the jobs' states with every failed job's error, and the grid
// file. One self-contained HTML file (dashboard/html.h). Reading the store and
// writing files is dashboard.h's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/grid/grid.h"
#include "coordinator/report.h"
#include "coordinator/store/job_store.h"
#include "dashboard/plots/plot_data.h"

namespace gb::dash {

struct GridPage {
  coord::Grid grid;
  std::vector<coord::Table> tables;  // build_tables(grid, results, jobs)
  std::vector<coord::ResultRow> results;
  SeriesByJob series;
  std::vector<coord::StoredJob> jobs;  // states and errors; empty when not from a store
  int64_t updated_ms = 0;              // the grid's last submission (0: unknown)
  std::string index_href;              // link back to the index of all grids ("" : none)
};

std::string render_grid_page(const GridPage& page);

// The report sections the tables were built from: the grid's, or the one default
// section build_tables uses when the grid has none.
std::vector<coord::ReportSpec> report_sections(const coord::Grid& grid);

}  // namespace gb::dash

// The dashboard's files: reading what a grid's page shows from the store, and
// writing pages atomically (a temporary file renamed over the old one, so that a
// reader never sees half a page). The pages themselves are grid_page.h and
// index_page.h; the report files (report.md/.csv/.json) are the CLI's.
//
// Layout written by `gridbench dashboard --db FILE --out DIR`:
//   DIR/index.html         every grid (index_page.h)
//   DIR/GRID/index.html    one grid's page (grid_page.h), with its report files
// and by `gridbench dashboard GRID --out DIR` (and `gridbench run`): DIR/index.html,
// that grid's page.
#pragma once

#include <string>

#include "common/status.h"
#include "coordinator/grid/grid.h"
#include "coordinator/store/job_store.h"
#include "dashboard/grid_page.h"
#include "dashboard/index_page.h"

namespace gb::dash {

// The grid's results, tables, series and jobs, read from `store`.
Result<GridPage> read_grid_page(coord::JobStore& store, const coord::Grid& grid);

// The index row of a grid: its summary, and what its page shows (null when the
// page could not be made).
IndexEntry index_entry(const coord::GridSummary& summary, const GridPage* page);

// Writes `text` to dir/file through a temporary file and a rename, creating dir.
Status write_page(const std::string& dir, const std::string& file, const std::string& text);

// The folder of a grid's page inside an index's folder: the name itself when it
// is a plain file name (letters, digits, '.', '_', '-', not "." or ".."), else
// the name with other bytes replaced by '_' and its hash appended.
std::string page_folder(const std::string& grid_name);

}  // namespace gb::dash

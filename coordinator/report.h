// Report tables: a grid's `report` sections rendered from its stored results as
// pivot tables (rows = parameters, columns = metrics, optionally spread over one
// pivot parameter), with the mean over repeats and, where a baseline is given, the
// delta of each numeric cell against the baseline row, in md, csv or json.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "coordinator/grid/grid.h"
#include "coordinator/store/job_store.h"

namespace gb::coord {

struct TableCell {
  std::string text;             // as printed
  std::optional<double> value;  // mean, unscaled; nullopt for text cells
  int n = 0;                    // repeats averaged
  double stddev = 0;
  std::optional<double> delta_pct;  // against the baseline row
};

// What one column of a built table holds (build_tables fills it; a hand-made table
// may leave `columns` empty, readers then treat every column as data).
struct TableColumn {
  bool key = false;         // a row parameter (the row's label), not a measurement
  bool metric = false;      // a metric (else a parameter value or a row key)
  std::string name;         // the metric or parameter name
  std::string label;        // the column's label without the pivot value
  std::string pivot_value;  // the column group's pivot value ("" without pivot)
  std::string unit;         // the metric's unit as stored (first one seen)
  double scale = 1;         // printed value = value / scale
  std::string suffix;       // appended to printed numbers
};

struct Table {
  std::string title;
  std::vector<std::string> header;
  std::vector<std::vector<TableCell>> rows;
  std::vector<TableColumn> columns;  // one per header entry, or empty
  int key_columns = 0;               // leading columns that are row parameters
  bool job_failures = false;         // the "Failed jobs" list (failures_table), not a report
};

// Prints `value` / `scale` the way report cells do: `digits` decimals rounded half
// away from zero (floored when `truncate`), or with digits < 0 integers as integers
// and other numbers to 4 significant digits; `suffix` appended.
std::string format_number(double value, int digits = -1, double scale = 1,
                          const std::string& suffix = "", bool truncate = false);

// A parameter value as a table prints it: strings bare, numbers in their shortest
// form, null as "".
std::string param_text(const Json& v);

// Builds the tables of the grid's report sections from `rows`. A grid without
// report sections gets default_reports(grid) (coordinator/report_check.h).
Result<std::vector<Table>> build_tables(const Grid& grid, const std::vector<ResultRow>& rows);

// The same with the grid's jobs (JobStore::grid_jobs, in grid order), so that jobs
// that did not succeed show: one that ended failed, timeout, oom or invalid without a
// result (an older result of a rerun still counts) fills the cells its kind's metrics
// would fill with its state ("failed", "timeout", "oom", "invalid"), and the last table,
// "Failed jobs", lists every job that ended so with its state, attempts, parameters
// and last error (on one line, at most 400 characters). Pending and running jobs
// leave their cells empty.
Result<std::vector<Table>> build_tables(const Grid& grid, const std::vector<ResultRow>& rows,
                                        const std::vector<StoredJob>& jobs);

// Whether `job` ended failed, timeout, oom or invalid.
bool ended_without_success(const StoredJob& job);

// `rows` in the order of `jobs`, with a value-less row whose text is the job's
// state for each metric of each job that ended without success and has no result
// rows (see build_tables above).
std::vector<ResultRow> with_outcomes(const std::vector<ResultRow>& rows, const std::vector<StoredJob>& jobs);

// The "Failed jobs" table of `jobs` (no rows when none ended without success).
Table failures_table(const std::vector<StoredJob>& jobs);

enum class TableFormat { kMarkdown, kCsv, kJson };
Result<TableFormat> parse_table_format(const std::string& s);
std::string render_tables(const std::vector<Table>& tables, TableFormat format);

}  // namespace gb::coord

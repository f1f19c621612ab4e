// `gridbench series GRID`: the series (curves such as decode_curve's
// decode_latency, speed's decode_step_ms, roofline's decode_latency) of a grid's
// current results out of the database, as one CSV table or a JSON document. Not
// here: the metric tables (coordinator/report.h) and the dashboard's plots.
#pragma once

#include <string>

#include "common/status.h"
#include "coordinator/grid/grid.h"
#include "coordinator/store/job_store.h"

namespace gb::cli {

enum class SeriesFormat { kCsv, kJson };

// "csv" or "json"; the error names both.
Result<SeriesFormat> parse_series_format(const std::string& s);

// Every series of every job of `grid` that has a current result, in grid order;
// only those named `name` when it is not empty (an error when no job has one: it
// lists the names there are). CSV: one row per point, columns job_hash, kind,
// repeat, the grid's axes, series, idx, x, y, x_unit, y_unit. JSON: an array of
// {job_hash, kind, repeat, params, series, x_unit, y_unit, x: [...], y: [...]}.
Result<std::string> render_series(coord::JobStore& store, const coord::Grid& grid, const std::string& name,
                                  SeriesFormat format);

}  // namespace gb::cli

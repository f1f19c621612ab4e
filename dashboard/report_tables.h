// A report table (coordinator/report.h) as HTML: sortable by any column (the
// page's script; without it the rows keep the report's order), pivot values as a
// grouped header, baseline deltas beside their numbers, text cells ("oom")
// marked, and on every number the jobs, devices and engine versions behind it
// (its title attribute). Not the table's content: coordinator/report.cc builds it.
#pragma once

#include <string>
#include <vector>

#include "coordinator/grid/grid.h"
#include "coordinator/report.h"
#include "coordinator/store/job_store.h"

namespace gb::dash {

// `spec` is the report section `table` was built from (for the provenance of its
// cells); null when unknown (then cells name no jobs).
std::string report_table_html(const coord::Table& table, const coord::ReportSpec* spec,
                              const std::vector<coord::ResultRow>& results);

// A device record as pages name it: "AMD EPYC 7B13 (cpu)" for a measured one
// (its kind in brackets), "rtx4090 (theory)" for the spec a theory-only job used.
std::string device_label(const coord::Json& device, bool theory = false);
// The device behind a result (theory when its job kind is theory-only).
std::string result_device(const coord::ResultRow& r);

}  // namespace gb::dash

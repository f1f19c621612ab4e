// What a report section may show, checked against the jobs its grid expands to
// (parse_grid runs it after expansion), and the rules report tables share with it:
// which jobs a report looks at, and the rows of the default tables.
//
// A report never mixes what it should not: a cell averages the repeats of one job
// and nothing else, so two different jobs (other parameters, or other kinds that
// report the same metric) that would land in one cell are an error naming the
// parameter that tells them apart, unless the report lists it in `average_over`.
// A column names a metric some job kind of the report reports (or a parameter); a
// baseline names values of its row or pivot parameters that some job has; a filter
// (the report's, a column's own, and a derived column's other values) matches
// some job. Not here: parsing the report's keys (coordinator/grid/grid.cc) or
// building the tables (coordinator/report.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/grid/grid.h"

namespace gb::coord {

// One problem: the JSON path ("$.report[1].columns[0].metric") and what is wrong.
struct ReportProblem {
  std::string path;
  std::string what;
};

// Checks `spec`, parsed from `doc` (the report's object in the grid file) at `path`
// ("$.report" or "$.report[i]"), against the grid's `jobs`.
std::vector<ReportProblem> check_report(const ReportSpec& spec, const nlohmann::ordered_json& doc,
                                        const std::string& path, const std::vector<GridJob>& jobs);

// Whether a job of `kind` with `params` belongs in the table of `spec`: its kind
// (when the report names one) and its filter.
bool report_takes(const ReportSpec& spec, const std::string& kind, const Json& params);
// Whether `params` has every value `filter` names (an array: any of its values);
// a filter that is not an object takes everything. report_takes' parameter half.
bool filter_takes(const Json& filter, const Json& params);

// The reports a grid without report sections gets: one table, or one per job kind
// when it measures several (titled "NAME: KIND"), each with rows = the axes its
// jobs take, then every other parameter whose value differs between its jobs, so
// that no cell mixes jobs; columns = every metric seen.
std::vector<ReportSpec> default_reports(const Grid& grid);

}  // namespace gb::coord

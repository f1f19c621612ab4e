// A grid page's jobs section: how many jobs are in each state, the jobs that
// failed (failed, oom, timeout, cancelled) with their errors, and the list of all
// jobs (collapsed) with their parameters, device and engine version; and the same
// list as CSV. Reads the
// store's records; does not query the store itself.
#pragma once

#include <string>
#include <vector>

#include "coordinator/grid/grid.h"
#include "coordinator/store/job_store.h"

namespace gb::dash {

// The jobs of a grid as a page shows them. When `jobs` is empty (a page made
// without a store), the grid's jobs stand in, in state "succeeded" when they have
// results and "unknown" otherwise.
struct JobRow {
  std::string hash, kind, state, error, device, engine;
  coord::Json params;
  int repeat = 0;
  int attempts = 0;
};
std::vector<JobRow> job_rows(const coord::Grid& grid, const std::vector<coord::StoredJob>& jobs,
                             const std::vector<coord::ResultRow>& results);

// Jobs per state, in the store's state order.
std::vector<std::pair<std::string, size_t>> state_counts(const std::vector<JobRow>& rows);

// At most kMaxPageRows (html.h) of the failed jobs and of all jobs, each capped
// list linking jobs.csv.
std::string job_states_html(const std::vector<JobRow>& rows, const std::vector<std::string>& axis_names);

// Every job as CSV (RFC 4180; the columns of the page's list of all jobs, with
// attempts and error): the jobs.csv written beside a grid's page.
std::string jobs_csv(const std::vector<JobRow>& rows, const std::vector<std::string>& axis_names);

}  // namespace gb::dash

// The stored form of a run's metrics (the `metrics` column of `results_data`): a
// JSON array of [name, value, unit, text] in the order the job reported them,
// `[["ppl",12.5,"",""],["note",null,"","text"]]`, a value in its shortest
// round-trip form and null where it is absent or not finite. One row per run
// instead of one per metric: a roofline job's 19 metrics are one insert, and
// 20,000 of them 20,000 rows to read, not 380,000. The `results` view expands it
// again, a row per metric (json_each), for SQL.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/jobs/job_output.h"

namespace gb::coord {

// The metrics as stored: valid JSON whatever the strings hold (bytes that are not
// UTF-8 become U+FFFD, as the store's other JSON columns have them).
std::string encode_run_metrics(const std::vector<engine::Metric>& metrics);

// Parses a stored `metrics` text. Error (naming `what`) for anything but an array
// of [string, number or null, string, string].
Result<std::vector<engine::Metric>> decode_run_metrics(std::string_view text, const std::string& what);

}  // namespace gb::coord

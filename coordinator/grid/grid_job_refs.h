// Job references in grid files: a parameter value "job:KIND" names the output of
// the grid's measure KIND at the same point. Only one exists: kv_calibration
// "job:kv_calibrate", the calibration that int8-calib KV caches read, made by the
// grid's own kv_calibrate job. Here: which references a grid document may hold
// (checked before anything expands) and which jobs take one. Not here: how a
// reference becomes its dependency's hash (expand_jobs, coordinator/grid/grid.cc) and how
// the store runs a job after its dependency (coordinator/store/job_store_dependencies.cc).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/json_util.h"

namespace gb::coord {

inline constexpr std::string_view kJobRefPrefix = "job:";

// KIND of a "job:KIND" string value (in the store: the HASH of "job:HASH");
// nullopt for any other value.
std::optional<std::string> job_ref(const Json& v);

// Every bad reference of the grid document `doc` (in axes, fixed, include and the
// measures' own parameters), as (path, what): a reference given to a parameter
// other than kv_calibration, one to anything but "job:kv_calibrate", one in a grid
// without a kv_calibrate measure (`measures`), and one among the kv_calibrate
// measure's own parameters (a calibration depends on no job).
std::vector<std::pair<std::string, std::string>> check_job_refs(const nlohmann::ordered_json& doc,
                                                                 const std::vector<std::string>& measures);

// A job's parameters (projected onto its kind) without a "job:" kv_calibration
// unless its kv_format is int8-calib: a calibration is for that format alone, so a
// grid may cross f16, int8 and int8-calib on one kv_format axis.
void drop_unused_job_refs(Json& params);

}  // namespace gb::coord

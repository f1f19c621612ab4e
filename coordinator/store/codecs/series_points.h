// The stored form of a series' points (the `points` column of `series_data`): a
// JSON array of [x, y] pairs, `[[1,0.52],[2,0.53]]`, numbers in their shortest
// round-trip form, a non-finite coordinate as null. One row per series instead of
// one per point: a roofline job's 101-point curve is one insert, and a 10,000-step
// decode curve one row to read. The `series` view expands it again, a row per
// point (json_each), for SQL.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/jobs/job_output.h"

namespace gb::coord {

// The points as stored.
std::string encode_series_points(const std::vector<engine::SeriesPoint>& points);

// Parses a stored `points` text; a null coordinate reads as NaN. Error (naming
// `what` and the offset) for anything but an array of two-number arrays.
Result<std::vector<engine::SeriesPoint>> decode_series_points(std::string_view text, const std::string& what);

}  // namespace gb::coord

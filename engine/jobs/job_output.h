// What a job produces: metrics, series and the device record, as RESULT.json
// carries them (worker/job_spec.h) and the store keeps them; and the progress
// callback long jobs report through.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace gb::engine {

using Json = nlohmann::json;

// One measured number. A value-less metric carries text instead (e.g. "oom" for a
// context that does not fit, "none" for a knee that does not exist).
struct Metric {
  std::string name;
  std::optional<double> value;
  std::string unit;
  std::string text;
};

inline Metric value_metric(std::string name, double value, std::string unit) {
  return Metric{std::move(name), value, std::move(unit), ""};
}
inline Metric text_metric(std::string name, std::string text, std::string unit) {
  return Metric{std::move(name), std::nullopt, std::move(unit), std::move(text)};
}

struct SeriesPoint {
  double x = 0;
  double y = 0;
};

struct Series {
  std::string name;
  std::string x_unit;
  std::string y_unit;
  std::vector<SeriesPoint> points;
};

// A file a job hands over with its figures (kv_calibrate's calibration):
// gridbench-job writes `content` to `name` beside RESULT.json and sets the text of
// the text metric `metric` (which the job reports with the bare name) to the
// file's absolute path.
struct OutputFile {
  std::string metric;
  std::string name;  // a plain file name, no directory
  std::string content;
};

struct JobOutput {
  std::vector<Metric> metrics;
  std::vector<Series> series;
  std::vector<OutputFile> files;
  Json device = Json::object();  // the device the figures came from (theory: the spec used)
};

// Called by long jobs with a fraction in [0, 1] and a short message.
using ProgressFn = std::function<void(double fraction, const std::string& message)>;

}  // namespace gb::engine

// A grid's series out of the database (cli/series_export.h).
#include "cli/series_export.h"

#include <set>
#include <sstream>

#include "coordinator/report.h"

namespace gb::cli {
namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string number(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

}  // namespace

Result<SeriesFormat> parse_series_format(const std::string& s) {
  if (s == "csv") return SeriesFormat::kCsv;
  if (s == "json") return SeriesFormat::kJson;
  return Error{"expected csv or json, got '" + s + "'"};
}

Result<std::string> render_series(coord::JobStore& store, const coord::Grid& grid, const std::string& name,
                                  SeriesFormat format) {
  Result<std::vector<coord::StoredJob>> jobs = store.grid_jobs(grid.name);
  if (!jobs.ok()) return jobs.error();
  std::ostringstream csv;
  if (format == SeriesFormat::kCsv) {
    csv << "job_hash,kind,repeat";
    for (const auto& a : grid.axis_names) csv << "," << csv_field(a);
    csv << ",series,idx,x,y,x_unit,y_unit\n";
  }
  nlohmann::ordered_json doc = nlohmann::ordered_json::array();
  std::set<std::string> seen;
  int64_t matched = 0;
  for (const coord::StoredJob& job : *jobs) {
    if (job.result_run_id == 0) continue;
    Result<std::vector<engine::Series>> all = store.job_series(job.id);
    if (!all.ok()) return all.error();
    for (const engine::Series& s : *all) {
      seen.insert(s.name);
      if (!name.empty() && s.name != name) continue;
      ++matched;
      if (format == SeriesFormat::kJson) {
        nlohmann::ordered_json xs = nlohmann::ordered_json::array(), ys = nlohmann::ordered_json::array();
        for (const engine::SeriesPoint& p : s.points) {
          xs.push_back(p.x);
          ys.push_back(p.y);
        }
        doc.push_back({{"job_hash", job.hash}, {"kind", job.kind}, {"repeat", job.repeat}, {"params", job.params},
                       {"series", s.name}, {"x_unit", s.x_unit}, {"y_unit", s.y_unit}, {"x", xs}, {"y", ys}});
        continue;
      }
      std::string prefix = csv_field(job.hash) + "," + csv_field(job.kind) + "," + std::to_string(job.repeat);
      for (const auto& a : grid.axis_names) {
        auto it = job.params.find(a);
        prefix += "," + csv_field(it == job.params.end() ? "" : coord::param_text(*it));
      }
      for (size_t i = 0; i < s.points.size(); ++i)
        csv << prefix << "," << csv_field(s.name) << "," << i << "," << number(s.points[i].x) << ","
            << number(s.points[i].y) << "," << csv_field(s.x_unit) << "," << csv_field(s.y_unit) << "\n";
    }
  }
  if (!name.empty() && matched == 0) {
    std::string names;
    for (const auto& n : seen) names += (names.empty() ? "" : ", ") + n;
    return Error{"grid '" + grid.name + "' has no series named '" + name + "' (its series: " +
                 (names.empty() ? "none" : names) + ")"};
  }
  if (format == SeriesFormat::kJson) return doc.dump(2) + "\n";
  return csv.str();
}

}  // namespace gb::cli

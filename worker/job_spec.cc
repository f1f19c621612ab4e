#include "worker/job_spec.h"

#include "common/json_parse.h"
#include "engine/jobs/job_kinds.h"
#include "engine/jobs/job_params.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gb::worker {

std::string_view job_status_name(JobStatus s) {
  switch (s) {
    case JobStatus::kSucceeded: return "succeeded";
    case JobStatus::kFailed: return "failed";
    case JobStatus::kOom: return "oom";
    case JobStatus::kInvalid: return "invalid";
  }
  return "?";
}

std::string engine_version() { return GRIDBENCH_BUILD_ID; }

Json job_spec_to_json(const JobSpec& spec) {
  return Json{{"kind", spec.kind}, {"hash", spec.hash}, {"repeat", spec.repeat}, {"params", spec.params}};
}

Result<JobSpec> job_spec_from_json(const Json& j, const std::string& where) {
  if (!j.is_object()) return Error{where + ": $: expected an object"};
  JobSpec s;
  if (!j.contains("kind") || !j["kind"].is_string()) return Error{where + ": $.kind: expected a string"};
  s.kind = j["kind"].get<std::string>();
  if (j.contains("hash")) {
    if (!j["hash"].is_string()) return Error{where + ": $.hash: expected a string"};
    s.hash = j["hash"].get<std::string>();
  }
  if (j.contains("repeat")) {
    // A repeat past int's range would be cut to another repeat (4294967296 read as 0).
    const Json& r = j["repeat"];
    if (!r.is_number_integer() || (r.is_number_unsigned() ? r.get<uint64_t>() > uint64_t{INT32_MAX}
                                                          : r.get<int64_t>() < 0 || r.get<int64_t>() > INT32_MAX))
      return Error{where + ": $.repeat: expected an integer from 0 to " + std::to_string(INT32_MAX) + ", got " +
                   r.dump()};
    s.repeat = j["repeat"].get<int>();
  }
  if (j.contains("params")) {
    if (!j["params"].is_object()) return Error{where + ": $.params: expected an object"};
    s.params = j["params"];
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "kind" && it.key() != "hash" && it.key() != "repeat" && it.key() != "params")
      return Error{where + ": $." + it.key() + ": unknown key (expected kind, hash, repeat, params)"};
  }
  return s;
}

namespace {

std::string params_path(const std::string& name) {
  const bool ident = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                     });
  return ident ? "$.params." + name : "$.params[" + Json(name).dump() + "]";
}

}  // namespace

std::string job_spec_problems(const JobSpec& spec, const std::string& where) {
  const engine::JobKind* kind = engine::find_job_kind(spec.kind);
  if (kind == nullptr) {
    std::string known;
    for (const auto& k : engine::job_kinds()) known += (known.empty() ? "" : ", ") + k.name;
    return where + ": $.kind: unknown job kind '" + spec.kind + "' (known: " + known + ")";
  }
  std::string out;
  auto add = [&](const std::string& path, const std::string& what) {
    out += (out.empty() ? "" : "\n") + where + ": " + path + ": " + what;
  };
  for (const auto& r : kind->required) {
    if (!spec.params.contains(r)) add("$.params", "job kind '" + kind->name + "' needs parameter '" + r + "'");
  }
  for (auto it = spec.params.begin(); it != spec.params.end(); ++it) {
    if (engine::find_param(it.key()) == nullptr) {
      std::string known;
      for (const auto* names : {&kind->required, &kind->optional})
        for (const auto& n : *names) known += (known.empty() ? "" : ", ") + n;
      add(params_path(it.key()), "unknown parameter '" + it.key() + "' (" + kind->name + " takes: " + known + ")");
    } else if (auto problem = engine::check_param(it.key(), it.value())) {
      add(params_path(it.key()), *problem);
    }
  }
  return out;
}

Json job_result_to_json(const JobResult& r) {
  Json metrics = Json::array();
  for (const auto& m : r.output.metrics) {
    metrics.push_back({{"name", m.name},
                       {"value", m.value ? Json(*m.value) : Json(nullptr)},
                       {"unit", m.unit},
                       {"text", m.text}});
  }
  Json series = Json::array();
  for (const auto& s : r.output.series) {
    Json pts = Json::array();
    for (const auto& p : s.points) pts.push_back({p.x, p.y});
    series.push_back({{"name", s.name}, {"x_unit", s.x_unit}, {"y_unit", s.y_unit}, {"points", pts}});
  }
  return Json{{"status", job_status_name(r.status)}, {"error", r.error},
              {"metrics", metrics},                  {"series", series},
              {"device", r.output.device},           {"engine_version", r.engine_version},
              {"wall_ms", r.wall_ms}};
}

Result<JobResult> job_result_from_json(const Json& j, const std::string& where) {
  try {
    JobResult r;
    std::string st = j.at("status").get<std::string>();
    if (st == "succeeded") r.status = JobStatus::kSucceeded;
    else if (st == "failed") r.status = JobStatus::kFailed;
    else if (st == "oom") r.status = JobStatus::kOom;
    else if (st == "invalid") r.status = JobStatus::kInvalid;
    else return Error{where + ": $.status: expected succeeded, failed, oom or invalid, got '" + st + "'"};
    r.error = j.value("error", "");
    for (const auto& m : j.value("metrics", Json::array())) {
      engine::Metric metric;
      metric.name = m.at("name").get<std::string>();
      if (m.contains("value") && !m["value"].is_null()) metric.value = m["value"].get<double>();
      metric.unit = m.value("unit", "");
      metric.text = m.value("text", "");
      r.output.metrics.push_back(std::move(metric));
    }
    for (const auto& s : j.value("series", Json::array())) {
      engine::Series series;
      series.name = s.at("name").get<std::string>();
      series.x_unit = s.value("x_unit", "");
      series.y_unit = s.value("y_unit", "");
      for (const auto& p : s.at("points")) series.points.push_back({p.at(0).get<double>(), p.at(1).get<double>()});
      r.output.series.push_back(std::move(series));
    }
    r.output.device = j.value("device", Json::object());
    r.engine_version = j.value("engine_version", "");
    r.wall_ms = j.value("wall_ms", 0.0);
    return r;
  } catch (const Json::exception& e) {
    return Error{where + ": malformed result: " + e.what()};
  }
}

Result<Json> read_json_file(const std::string& path) {
  // JOB.json is small; RESULT.json may carry long series.
  JsonLimits limits;
  limits.max_bytes = 64 * kMiB;
  return gb::read_json_file(path, limits);
}

Status write_json_file(const std::string& path, const Json& j) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Error{tmp + ": cannot write: " + std::strerror(errno)};
    out << j.dump(2) << "\n";
    if (!out) return Error{tmp + ": write failed: " + std::strerror(errno)};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Error{path + ": cannot rename from " + tmp + ": " + std::strerror(errno)};
  return Status::Ok();
}

}  // namespace gb::worker

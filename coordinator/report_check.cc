// Report sections against the grid's jobs (coordinator/report_check.h).
#include "coordinator/report_check.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "common/json_util.h"
#include "common/strings.h"
#include "engine/jobs/job_kinds.h"

namespace gb::coord {
namespace {

using OJson = nlohmann::ordered_json;

constexpr size_t kMaxListed = 12;  // values named in a message

// A parameter value as messages show it: strings bare, others as JSON.
std::string shown(const Json& v) {
  if (v.is_null()) return "(absent)";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string listed(const std::vector<Json>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    if (out.size() == kMaxListed) {
      out.push_back("...");
      break;
    }
    out.push_back(shown(v));
  }
  return join(out);
}

Json param_of(const Json& params, const std::string& name) {
  if (params.is_object()) {
    auto it = params.find(name);
    if (it != params.end()) return *it;
  }
  return nullptr;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The known name closest to `name` when it is a likely typo, else "".
std::string closest(const std::string& name, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 3;  // at most 2 edits (case differences are free)
  for (const auto& k : known) {
    const size_t d = edit_distance(name, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

// The distinct values `name` takes over `jobs`, in order of first appearance.
std::vector<Json> values_of(const std::vector<const GridJob*>& jobs, const std::string& name) {
  std::vector<Json> out;
  for (const GridJob* j : jobs) {
    Json v = param_of(j->params, name);
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(std::move(v));
  }
  return out;
}

// The kinds of `jobs`, in order of first appearance.
std::vector<const engine::JobKind*> kinds_of(const std::vector<const GridJob*>& jobs) {
  std::vector<const engine::JobKind*> out;
  for (const GridJob* j : jobs) {
    const engine::JobKind* k = engine::find_job_kind(j->kind);
    if (k != nullptr && std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  }
  return out;
}

// The path of column i's metric name: "columns[i]" for a bare name, else
// "columns[i].metric".
std::string column_path(const OJson& doc, const std::string& path, size_t i) {
  std::string p = json_path_index(path + ".columns", i);
  auto it = doc.find("columns");
  if (it != doc.end() && it->is_array() && i < it->size() && (*it)[i].is_object()) p += ".metric";
  return p;
}

// Two different jobs in one cell: the parameters that tell them apart.
std::vector<std::string> differing(const GridJob& a, const GridJob& b, const std::vector<std::string>& ignored) {
  std::set<std::string> names;
  for (const Json* p : {&a.params, &b.params}) {
    for (auto it = p->begin(); it != p->end(); ++it) names.insert(it.key());
  }
  std::vector<std::string> out;
  for (const auto& n : names) {
    if (contains(ignored, n)) continue;
    if (param_of(a.params, n) != param_of(b.params, n)) out.push_back(n);
  }
  return out;
}

}  // namespace

bool report_takes(const ReportSpec& spec, const std::string& kind, const Json& params) {
  if (!spec.kind.empty() && kind != spec.kind) return false;
  return filter_takes(spec.filter, params);
}

bool filter_takes(const Json& filter, const Json& params) {
  if (!filter.is_object()) return true;
  for (auto it = filter.begin(); it != filter.end(); ++it) {
    if (!params.is_object() || !params.contains(it.key())) return false;
    const Json& have = params.at(it.key());
    if (it.value().is_array()) {  // any of the listed values
      bool any = false;
      for (const auto& want : it.value()) any = any || have == want;
      if (!any) return false;
    } else if (!(have == it.value())) {
      return false;
    }
  }
  return true;
}

std::vector<ReportProblem> check_report(const ReportSpec& spec, const OJson& doc, const std::string& path,
                                        const std::vector<GridJob>& all) {
  std::vector<ReportProblem> out;
  std::vector<const GridJob*> jobs;
  for (const GridJob& j : all) {
    if (report_takes(spec, j.kind, j.params)) jobs.push_back(&j);
  }
  if (jobs.empty()) {
    if (!spec.filter.empty()) {
      out.push_back({path + ".filter", "matches no job of this report" +
                                           (spec.kind.empty() ? std::string() : " (kind " + spec.kind + ")") +
                                           ": its table would be empty"});
    }
    return out;
  }
  const std::vector<const engine::JobKind*> kinds = kinds_of(jobs);

  // Columns: metrics some kind of the report reports, or parameters.
  std::vector<std::string> shown_metrics, shown_params;
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    const std::string& name = spec.columns[i].metric;
    bool reported = false;
    for (const auto* k : kinds) reported = reported || engine::kind_reports(*k, name);
    if (reported) {
      if (!contains(shown_metrics, name)) shown_metrics.push_back(name);
      continue;
    }
    if (engine::find_param(name) != nullptr) {
      if (!contains(shown_params, name)) shown_params.push_back(name);
      continue;
    }
    std::vector<std::string> known, per_kind;
    for (const auto* k : kinds) {
      known.insert(known.end(), k->metrics.begin(), k->metrics.end());
      per_kind.push_back(k->name + " metrics: " + join(k->metrics));
    }
    const std::string guess = closest(name, known);
    out.push_back({column_path(doc, path, i),
                   "no job kind of this report reports metric '" + name + "'" +
                       (guess.empty() ? "" : " (did you mean '" + guess + "'?)") + "; known: " +
                       join(per_kind, "; ") + "; or the name of a job parameter"});
  }
  if (spec.columns.empty()) {
    for (const auto* k : kinds) {
      for (const auto& m : k->metrics) {
        if (!contains(shown_metrics, m)) shown_metrics.push_back(m);
      }
    }
  }

  // Baseline: row or pivot values some job has.
  if (spec.baseline.is_object()) {
    bool keys_ok = true;
    for (auto it = spec.baseline.begin(); it != spec.baseline.end(); ++it) {
      const std::string p = json_path_key(path + ".baseline", it.key());
      if (it.key() != spec.pivot && !contains(spec.rows, it.key())) {
        out.push_back({p, "'" + it.key() + "' is neither one of the rows (" +
                              (spec.rows.empty() ? std::string("none") : join(spec.rows)) + ") nor the pivot (" +
                              (spec.pivot.empty() ? std::string("none") : spec.pivot) + ")"});
        keys_ok = false;
        continue;
      }
      const std::vector<Json> values = values_of(jobs, it.key());
      if (std::find(values.begin(), values.end(), it.value()) == values.end()) {
        out.push_back({p, shown(it.value()) + " matches no job of this report (" + it.key() +
                              " values: " + listed(values) + ")"});
        keys_ok = false;
      }
    }
    if (keys_ok && spec.baseline.size() > 1) {
      bool any = false;
      for (const GridJob* j : jobs) {
        bool all_match = true;
        for (auto it = spec.baseline.begin(); it != spec.baseline.end(); ++it)
          all_match = all_match && param_of(j->params, it.key()) == it.value();
        any = any || all_match;
      }
      if (!any) out.push_back({path + ".baseline", "matches no job of this report (each value exists, not together)"});
    }
  }

  // No cell may hold two different jobs (repeats of one job are averaged).
  std::vector<std::string> ignored = spec.average_over;
  std::map<std::string, const GridJob*> cell_job;  // cell -> first job in it
  std::set<std::string> reported_names;
  bool kinds_reported = false;
  auto cell_of = [&](const GridJob& j, const std::string& what) {
    Json key = Json::array();
    for (const auto& r : spec.rows) key.push_back(param_of(j.params, r));
    key.push_back(spec.pivot.empty() ? Json(nullptr) : param_of(j.params, spec.pivot));
    key.push_back(what);
    return canonical_json(key);
  };
  auto conflict = [&](const GridJob& first, const GridJob& other, const std::string& what) {
    if (first.kind != other.kind) {
      if (kinds_reported) return;
      kinds_reported = true;
      out.push_back({path, "cells would mix job kinds " + first.kind + " and " + other.kind + " (both report '" +
                               what + "'): give the report a `kind`"});
      return;
    }
    for (const auto& name : differing(first, other, ignored)) {
      if (!reported_names.insert(name).second) continue;
      out.push_back({path, "cells would average jobs that differ in '" + name + "' (" +
                               listed(values_of(jobs, name)) +
                               "); a cell averages the repeats of one job only: add '" + name +
                               "' to rows, make it the pivot, filter on one value, or list it in average_over"});
    }
  };
  // What each cell shows: a metric of the jobs a column's filter takes (a derived
  // column twice: its own filter and its other one), keyed by column.
  struct Shown {
    std::string what;  // "metric:NAME@COLUMN[.minus|.over]"
    std::string metric;
    Json filter;
    std::string path;  // of the filter, for "matches no job"
  };
  std::vector<Shown> shown;
  if (spec.columns.empty()) {
    for (const auto& m : shown_metrics) shown.push_back({"metric:" + m, m, Json::object(), ""});
  }
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    const ReportColumn& c = spec.columns[i];
    if (!contains(shown_metrics, c.metric)) continue;
    const std::string at = "@" + std::to_string(i);
    const std::string cpath = json_path_index(path + ".columns", i);
    shown.push_back({"metric:" + c.metric + at, c.metric, c.filter, cpath + ".filter"});
    const Json& o = c.against();
    if (o.empty()) continue;
    const std::string key = !c.minus.empty() ? ".minus" : !c.over.empty() ? ".over" : ".vs";
    Json other = c.filter;
    for (auto it = o.begin(); it != o.end(); ++it) other[it.key()] = it.value();
    shown.push_back({"metric:" + c.metric + at + key, c.metric, other, cpath + key});
  }
  auto column_takes = [](const Json& filter, const GridJob& j) {
    ReportSpec probe;
    probe.filter = filter;
    return report_takes(probe, j.kind, j.params);
  };
  for (const Shown& s : shown) {
    if (s.filter.empty()) continue;
    bool any = false;
    for (const GridJob* j : jobs) any = any || column_takes(s.filter, *j);
    if (!any) out.push_back({s.path, "matches no job of this report: the column would be empty"});
  }
  for (const GridJob* j : jobs) {
    const engine::JobKind* k = engine::find_job_kind(j->kind);
    if (k == nullptr) continue;
    for (const Shown& s : shown) {
      if (!engine::kind_reports(*k, s.metric) || !column_takes(s.filter, *j)) continue;
      auto [it, fresh] = cell_job.emplace(cell_of(*j, s.what), j);
      if (fresh) continue;
      const GridJob& first = *it->second;
      if (first.kind == j->kind && first.params == j->params) continue;  // repeats of one job
      conflict(first, *j, s.metric);
    }
    for (const auto& p : shown_params) {
      auto [it, fresh] = cell_job.emplace(cell_of(*j, "param:" + p), j);
      if (fresh) continue;
      if (param_of(it->second->params, p) != param_of(j->params, p) && !contains(ignored, p) &&
          reported_names.insert(p).second) {
        out.push_back({path, "cells would show several values of '" + p + "' (" + listed(values_of(jobs, p)) +
                                 "): add '" + p + "' to rows or filter on one value"});
      }
    }
  }
  return out;
}

std::vector<ReportSpec> default_reports(const Grid& grid) {
  std::vector<std::string> kinds = grid.measures;
  if (kinds.size() <= 1) kinds = {""};
  std::vector<ReportSpec> out;
  for (const auto& kind : kinds) {
    ReportSpec spec;
    spec.title = grid.name.empty() ? "results" : grid.name;
    if (!kind.empty()) {
      spec.title += ": " + kind;
      spec.kind = kind;
    }
    std::vector<const GridJob*> jobs;
    for (const GridJob& j : grid.jobs) {
      if (kind.empty() || j.kind == kind) jobs.push_back(&j);
    }
    if (jobs.empty()) {
      spec.rows = grid.axis_names;
      out.push_back(std::move(spec));
      continue;
    }
    for (const auto& a : grid.axis_names) {
      bool taken = false;
      for (const GridJob* j : jobs) taken = taken || (j->params.is_object() && j->params.contains(a));
      if (taken) spec.rows.push_back(a);
    }
    std::vector<std::string> others;
    for (const GridJob* j : jobs) {
      if (!j->params.is_object()) continue;
      for (auto it = j->params.begin(); it != j->params.end(); ++it) {
        if (!contains(spec.rows, it.key()) && !contains(others, it.key())) others.push_back(it.key());
      }
    }
    for (const auto& o : others) {
      if (values_of(jobs, o).size() > 1) spec.rows.push_back(o);
    }
    out.push_back(std::move(spec));
  }
  return out;
}

}  // namespace gb::coord

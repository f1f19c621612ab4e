#include "dashboard/job_states.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "dashboard/html.h"
#include "dashboard/plots/plot_data.h"
#include "dashboard/report_tables.h"

namespace gb::dash {

namespace {

constexpr const char* kStateOrder[] = {"pending", "leased",  "running", "succeeded", "failed",
                                       "oom",     "invalid", "timeout", "cancelled"};

bool failed_state(const std::string& s) {
  return s == "failed" || s == "oom" || s == "invalid" || s == "timeout" || s == "cancelled";
}

std::string state_badge(const std::string& s) {
  return "<span class=\"state " + html_escape(s) + "\">" + html_escape(s) + "</span>";
}

}  // namespace

std::vector<JobRow> job_rows(const coord::Grid& grid, const std::vector<coord::StoredJob>& jobs,
                             const std::vector<coord::ResultRow>& results) {
  std::map<std::string, const coord::ResultRow*> first_result;
  const std::string* last = nullptr;
  for (const auto& r : results) {
    if (last == nullptr || *last != r.hash) first_result.emplace(r.hash, &r);  // a job's rows come in a row
    last = &r.hash;
  }
  std::vector<JobRow> out;
  auto fill = [&](JobRow& row) {
    auto it = first_result.find(row.hash);
    if (it == first_result.end()) return;
    row.device = result_device(*it->second);
    row.engine = it->second->engine_version;
  };
  if (!jobs.empty()) {
    for (const auto& j : jobs) {
      JobRow row;
      row.hash = j.hash;
      row.kind = j.kind;
      row.state = std::string(coord::state_name(j.state));
      row.error = j.error;
      row.params = j.params.is_object() ? j.params
                                        : (j.params_json.empty() ? coord::Json::object() : coord::Json::parse(j.params_json, nullptr, false));
      if (row.params.is_discarded()) row.params = coord::Json::object();
      row.repeat = j.repeat;
      row.attempts = j.attempts;
      fill(row);
      out.push_back(std::move(row));
    }
    return out;
  }
  for (const auto& j : grid.jobs) {
    JobRow row;
    row.hash = j.hash;
    row.kind = j.kind;
    row.params = j.params;
    row.repeat = j.repeat;
    row.state = first_result.count(j.hash) ? "succeeded" : "unknown";
    fill(row);
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<std::pair<std::string, size_t>> state_counts(const std::vector<JobRow>& rows) {
  std::map<std::string, size_t> n;
  for (const auto& r : rows) ++n[r.state];
  std::vector<std::pair<std::string, size_t>> out;
  for (const char* s : kStateOrder) {
    auto it = n.find(s);
    if (it != n.end()) out.emplace_back(s, it->second), n.erase(it);
  }
  for (const auto& [s, c] : n) out.emplace_back(s, c);
  return out;
}

std::string job_states_html(const std::vector<JobRow>& rows, const std::vector<std::string>& axis_names) {
  std::vector<coord::Json> params;
  for (const auto& r : rows) params.push_back(r.params);
  std::vector<std::string> vary = plots::varying_params(params, axis_names);

  std::ostringstream os;
  os << "<p class=\"states\">";
  if (rows.empty()) os << "<span class=\"empty\">No jobs.</span>";
  bool first = true;
  for (const auto& [s, n] : state_counts(rows)) {
    os << (first ? "" : " ") << state_badge(s) << " " << n;
    first = false;
  }
  os << "</p>\n";

  std::vector<const JobRow*> failed;
  for (const auto& r : rows)
    if (failed_state(r.state)) failed.push_back(&r);
  os << "<h3 id=\"failed\">Failed jobs</h3>\n";
  if (failed.empty()) {
    os << "<p class=\"empty\">No job failed.</p>\n";
  } else {
    os << "<div class=\"table-wrap\"><table class=\"failed sortable\">\n<thead><tr>";
    int col = 0;
    for (const char* h : {"job", "kind", "state", "attempts"})
      os << "<th class=\"sortable\" data-col=\"" << col++ << "\">" << h << "</th>";
    for (const auto& v : vary) os << "<th class=\"sortable\" data-col=\"" << col++ << "\">" << html_escape(v) << "</th>";
    os << "<th>error</th></tr></thead>\n<tbody>\n";
    const size_t shown_failed = std::min(failed.size(), kMaxPageRows);
    for (size_t fi = 0; fi < shown_failed; ++fi) {
      const JobRow* r = failed[fi];
      os << "<tr><td><code>" << html_escape(r->hash) << "</code></td><td>" << html_escape(r->kind) << "</td><td>"
         << state_badge(r->state) << "</td><td class=\"num\" data-v=\"" << r->attempts << "\">" << r->attempts
         << "</td>";
      for (const auto& v : vary) os << "<td>" << html_escape(plots::values_label(r->params, {v})) << "</td>";
      os << "<td class=\"err\"><div>"
         << (r->error.empty() ? "<span class=\"empty\">no error recorded</span>" : html_escape(r->error))
         << "</div></td></tr>\n";
    }
    os << "</tbody>\n</table></div>\n";
    if (shown_failed < failed.size()) {
      os << capped_note(shown_failed, failed.size(), "failed jobs", {"jobs.csv", "report.csv"});
    }
  }

  os << "<details id=\"all-jobs\"><summary>All " << rows.size() << " jobs: parameters, state, device and engine"
     << "</summary>\n<div class=\"table-wrap" << (rows.size() > 30 ? " tall" : "")
     << "\"><table class=\"jobs sortable\">\n<thead><tr>";
  int col = 0;
  for (const char* h : {"job", "kind"}) os << "<th class=\"sortable\" data-col=\"" << col++ << "\">" << h << "</th>";
  for (const auto& v : vary) os << "<th class=\"sortable\" data-col=\"" << col++ << "\">" << html_escape(v) << "</th>";
  for (const char* h : {"repeat", "state", "device", "engine"})
    os << "<th class=\"sortable\" data-col=\"" << col++ << "\">" << h << "</th>";
  os << "</tr></thead>\n<tbody>\n";
  const size_t shown = std::min(rows.size(), kMaxPageRows);
  for (size_t ri = 0; ri < shown; ++ri) {
    const JobRow& r = rows[ri];
    os << "<tr><td><code>" << html_escape(r.hash) << "</code></td><td>" << html_escape(r.kind) << "</td>";
    for (const auto& v : vary) {
      const coord::Json pv = plots::param_value(r.params, v);
      os << "<td" << (pv.is_number() ? " data-v=\"" + sort_value(pv.get<double>()) + "\"" : std::string()) << ">"
         << html_escape(plots::values_label(r.params, {v})) << "</td>";
    }
    os << "<td data-v=\"" << r.repeat << "\">" << r.repeat << "</td><td>" << state_badge(r.state) << "</td><td>"
       << html_escape(r.device) << "</td><td>" << html_escape(r.engine) << "</td></tr>\n";
  }
  os << "</tbody>\n</table></div>\n";
  if (shown < rows.size()) os << capped_note(shown, rows.size(), "jobs", {"jobs.csv"});
  os << "</details>\n";
  return os.str();
}

std::string jobs_csv(const std::vector<JobRow>& rows, const std::vector<std::string>& axis_names) {
  std::vector<coord::Json> params;
  for (const auto& r : rows) params.push_back(r.params);
  const std::vector<std::string> vary = plots::varying_params(params, axis_names);
  auto field = [](const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  std::string out = "job,kind";
  for (const auto& v : vary) out += "," + field(v);
  out += ",repeat,state,attempts,device,engine,error\r\n";
  for (const auto& r : rows) {
    out += field(r.hash) + "," + field(r.kind);
    for (const auto& v : vary) out += "," + field(plots::values_label(r.params, {v}));
    out += "," + std::to_string(r.repeat) + "," + field(r.state) + "," + std::to_string(r.attempts) + "," +
           field(r.device) + "," + field(r.engine) + "," + field(r.error) + "\r\n";
  }
  return out;
}

}  // namespace gb::dash

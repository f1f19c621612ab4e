#include "dashboard/grid_page.h"

#include <algorithm>
#include <future>
#include <map>
#include <set>
#include <sstream>

#include "dashboard/html.h"
#include "dashboard/job_states.h"
#include "dashboard/plots/plot_build.h"
#include "dashboard/report_tables.h"

namespace gb::dash {

std::vector<coord::ReportSpec> report_sections(const coord::Grid& grid) {
  if (!grid.reports.empty()) return grid.reports;
  coord::ReportSpec d;  // as build_tables makes it
  d.title = grid.name.empty() ? "results" : grid.name;
  d.rows = grid.axis_names;
  return {d};
}

std::string render_grid_page(const GridPage& page) {
  const coord::Grid& grid = page.grid;
  const std::string name = grid.name.empty() ? "gridbench" : grid.name;
  const std::vector<JobRow> jobs = job_rows(grid, page.jobs, page.results);
  const plots::PlotSource src = plots::make_plot_source(grid, page.results, page.series);
  const std::vector<coord::ReportSpec> sections = report_sections(grid);

  std::set<std::string> devices, engines;
  const coord::ResultRow* last = nullptr;
  for (const auto& r : page.results) {
    // Rows sharing the last one's device and build (a job's, mostly a grid's) add nothing.
    if (last != nullptr && &last->device.get() == &r.device.get() && last->engine_version == r.engine_version)
      continue;
    last = &r;
    devices.insert(result_device(r));
    if (!r.engine_version.empty()) engines.insert(r.engine_version);
  }
  size_t series_count = 0;
  for (const auto& [h, v] : page.series) series_count += v.size();
  // The page's three large parts from const inputs, side by side: the series plots
  // and the jobs table on threads of their own while this one writes the tables and
  // their plots (20,000 jobs: each part a few hundred ms).
  std::future<std::string> series_part =
      std::async(std::launch::async, [&] { return plots::default_series_html(src, grid); });
  std::future<std::string> jobs_part =
      std::async(std::launch::async, [&] { return job_states_html(jobs, grid.axis_names); });

  std::ostringstream os;
  os << page_open(name + " \u2014 gridbench");
  if (!page.index_href.empty()) {
    os << "<p class=\"crumbs\"><a href=\"" << html_escape(page.index_href) << "\">\u2190 all grids</a></p>\n";
  }
  os << "<h1>" << html_escape(name) << "</h1>\n";
  if (grid.spec.is_object() && grid.spec.contains("description") && grid.spec["description"].is_string()) {
    os << "<p class=\"lead\">" << html_escape(grid.spec["description"].get<std::string>()) << "</p>\n";
  }
  if (!grid.source.empty()) os << "<p class=\"source\">grid file <code>" << html_escape(grid.source) << "</code></p>\n";
  // The contents line names the series section only where it has plots: written
  // once they are done, between the head and the rest.
  const std::string head = os.str();
  os.str("");

  // Summary.
  os << "<div class=\"stats\">";
  auto stat = [&](const std::string& v, const std::string& what, bool bad = false) {
    os << "<div class=\"stat" << (bad ? " bad" : "") << "\"><b>" << html_escape(v) << "</b><span>"
       << html_escape(what) << "</span></div>";
  };
  stat(std::to_string(jobs.size()), "jobs");
  for (const auto& [s, n] : state_counts(jobs)) {
    stat(std::to_string(n), s, s == "failed" || s == "timeout" || s == "oom" || s == "invalid");
  }
  // The report's "Failed jobs" table is the Jobs section here, with each error.
  size_t n_report_tables = 0;
  for (const auto& t : page.tables) n_report_tables += !t.job_failures;
  stat(std::to_string(n_report_tables), n_report_tables == 1 ? "table" : "tables");
  stat(std::to_string(series_count), "series");
  os << "</div>\n<dl class=\"facts\">\n";
  for (const auto& a : grid.axis_names) {
    std::vector<std::string> values;
    std::set<std::string> seen;
    for (const auto& p : grid.points) {
      if (!p.is_object() || !p.contains(a)) continue;
      std::string v = coord::param_text(p.at(a));
      if (seen.insert(v).second) values.push_back(v);
    }
    os << "<dt>" << html_escape(a) << "</dt><dd>";
    const size_t shown = std::min(values.size(), kMaxAxisValues);
    for (size_t i = 0; i < shown; ++i) os << (i ? ", " : "") << "<code>" << html_escape(values[i]) << "</code>";
    if (shown < values.size()) os << " and " << values.size() - shown << " more";
    if (values.empty()) os << "&ndash;";
    os << "</dd>\n";
  }
  if (!grid.measures.empty()) {
    std::map<std::string, std::pair<size_t, size_t>> by_kind;  // kind -> (succeeded, jobs)
    for (const auto& j : jobs) {
      auto& k = by_kind[j.kind];
      ++k.second;
      k.first += j.state == "succeeded";
    }
    os << "<dt>measures</dt><dd>";
    for (size_t i = 0; i < grid.measures.size(); ++i) {
      const auto& m = grid.measures[i];
      os << (i ? ", " : "") << html_escape(m);
      auto k = by_kind.find(m);
      if (k != by_kind.end()) os << " (" << k->second.first << "/" << k->second.second << " succeeded)";
    }
    os << "</dd>\n";
  }
  os << "<dt>repeats</dt><dd>" << grid.repeats << "</dd>\n";
  auto list = [&](const char* what, const std::set<std::string>& items) {
    if (items.empty()) return;
    os << "<dt>" << what << "</dt><dd>";
    bool first = true;
    for (const auto& s : items) {
      os << (first ? "" : ", ") << html_escape(s);
      first = false;
    }
    os << "</dd>\n";
  };
  list("devices", devices);
  list("engine", engines);
  if (page.updated_ms > 0) os << "<dt>updated</dt><dd>" << html_escape(format_time_ms(page.updated_ms)) << "</dd>\n";
  os << "</dl>\n";

  // Each table and its plots.
  os << "<h2 id=\"tables\">Tables and plots</h2>\n";
  if (n_report_tables == 0) os << "<p class=\"empty\">No tables.</p>\n";
  for (size_t ti = 0; ti < page.tables.size(); ++ti) {
    const coord::Table& t = page.tables[ti];
    if (t.job_failures) continue;
    const coord::ReportSpec* spec = ti < sections.size() ? &sections[ti] : nullptr;
    os << "<section class=\"report\" id=\"table-" << ti + 1 << "\">\n<h3>" << html_escape(t.title) << "</h3>\n";
    if (t.rows.empty()) os << "<p class=\"empty\">No results yet.</p>\n";
    else os << report_table_html(t, spec, page.results);
    if (spec) os << plots::report_plots_html(src, *spec);
    os << "</section>\n";
  }
  const std::string series_html = series_part.get();
  if (!series_html.empty()) os << "<h2 id=\"series\">Series</h2>\n" << series_html;

  os << "<h2 id=\"jobs\">Jobs</h2>\n" << jobs_part.get();
  os << "<h2 id=\"grid-file\">Grid file</h2>\n";
  if (!grid.spec.is_null() && !grid.spec.empty()) {
    os << "<details><summary>" << html_escape(grid.source.empty() ? "the grid" : grid.source) << "</summary><pre>"
       << html_escape(grid.spec.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace))
       << "</pre></details>\n";
  } else {
    os << "<p class=\"empty\">Not stored.</p>\n";
  }
  os << page_close();
  std::string nav = "<nav class=\"toc\"><a href=\"#tables\">Tables and plots</a>";
  if (!series_html.empty()) nav += "<a href=\"#series\">Series</a>";
  nav += "<a href=\"#jobs\">Jobs</a><a href=\"#grid-file\">Grid file</a></nav>\n";
  return head + nav + os.str();
}

}  // namespace gb::dash

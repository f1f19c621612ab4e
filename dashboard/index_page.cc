#include "dashboard/index_page.h"

#include <sstream>

#include "dashboard/html.h"

namespace gb::dash {

namespace {
constexpr const char* kStates[] = {"pending", "leased",  "running", "succeeded", "failed",
                                   "oom",     "invalid", "timeout", "cancelled"};
}  // namespace

std::string render_index_page(const std::vector<IndexEntry>& grids, const std::string& db_path) {
  // A column per state that some grid has, succeeded and failed always.
  std::vector<std::string> states;
  for (const char* s : kStates) {
    bool any = std::string(s) == "succeeded" || std::string(s) == "failed";
    for (const auto& g : grids) {
      auto it = g.by_state.find(s);
      any = any || (it != g.by_state.end() && it->second > 0);
    }
    if (any) states.push_back(s);
  }
  int64_t jobs = 0;
  for (const auto& g : grids) jobs += g.total;

  std::ostringstream os;
  os << page_open("grids \u2014 gridbench");
  os << "<h1>Grids</h1>\n<p class=\"source\">database <code>" << html_escape(db_path) << "</code>: " << grids.size()
     << (grids.size() == 1 ? " grid, " : " grids, ") << jobs << (jobs == 1 ? " job" : " jobs") << "</p>\n";
  if (grids.empty()) {
    os << "<p class=\"empty\">No grids in this database yet.</p>\n" << page_close();
    return os.str();
  }
  os << "<div class=\"table-wrap\"><table class=\"grids sortable\">\n<thead><tr>";
  int col = 0;
  auto th = [&](const std::string& h) {
    os << "<th class=\"sortable\" data-col=\"" << col++ << "\">" << html_escape(h) << "</th>";
  };
  th("grid");
  th("title");
  th("jobs");
  for (const auto& s : states) th(s);
  th("updated");
  th("devices");
  os << "</tr></thead>\n<tbody>\n";
  for (const auto& g : grids) {
    os << "<tr><td class=\"key\">";
    if (!g.href.empty()) os << "<a href=\"" << html_escape(g.href) << "\">" << html_escape(g.name) << "</a>";
    else os << html_escape(g.name);
    if (!g.error.empty()) os << "<div class=\"note\">page not written: " << html_escape(g.error) << "</div>";
    os << "</td><td class=\"wrap\">" << html_escape(g.title) << "</td><td class=\"num\" data-v=\"" << g.total << "\">" << g.total
       << "</td>";
    for (const auto& s : states) {
      auto it = g.by_state.find(s);
      const int64_t n = it == g.by_state.end() ? 0 : it->second;
      os << "<td class=\"num\" data-v=\"" << n << "\">";
      if (n > 0) os << "<span class=\"state " << s << "\">" << n << "</span>";
      else os << "0";
      os << "</td>";
    }
    os << "<td data-v=\"" << g.updated_ms << "\">" << html_escape(format_time_ms(g.updated_ms))
       << "</td><td class=\"wrap\">";
    bool first = true;
    for (const auto& d : g.devices) {
      os << (first ? "" : ", ") << html_escape(d);
      first = false;
    }
    os << "</td></tr>\n";
  }
  os << "</tbody>\n</table></div>\n" << page_close();
  return os.str();
}

}  // namespace gb::dash

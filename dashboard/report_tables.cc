#include "dashboard/report_tables.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "dashboard/html.h"
#include "dashboard/plots/plot_data.h"
#include "engine/jobs/job_kinds.h"

namespace gb::dash {

namespace {

using coord::Table;
using coord::TableCell;

constexpr size_t kTallRows = 30;

// The text of a cell without the " (+x.x%)" delta that build_tables appends.
std::string base_text(const TableCell& c) {
  if (c.delta_pct) {
    size_t p = c.text.rfind(" (");
    if (p != std::string::npos && !c.text.empty() && c.text.back() == ')') return c.text.substr(0, p);
  }
  return c.text;
}

bool is_key_column(const Table& t, size_t col) {
  if (col < t.columns.size()) return t.columns[col].key;
  return static_cast<int>(col) < t.key_columns;
}

// What stands behind one (row, pivot value) of a table.
struct Provenance {
  std::set<std::string> devices, engines;
  std::vector<std::string> hashes;
};

std::string row_key(const coord::Json& params, const std::vector<std::string>& rows) {
  std::string k;
  for (const auto& r : rows) k += coord::param_text(plots::param_value(params, r)) + '\x1f';
  return k;
}

std::map<std::pair<std::string, std::string>, Provenance> provenance(const coord::ReportSpec& spec,
                                                                     const std::vector<coord::ResultRow>& results) {
  std::map<std::pair<std::string, std::string>, Provenance> out;
  plots::Selection sel;
  if (!spec.kind.empty()) sel.kinds = {spec.kind};
  sel.filter = spec.filter;
  const coord::ResultRow* last = nullptr;
  for (const auto& r : results) {
    // The rows of one job (in a row, sharing its params and device) say the same.
    if (last != nullptr && last->hash == r.hash && &last->params.get() == &r.params.get() &&
        &last->device.get() == &r.device.get() && last->engine_version == r.engine_version && last->kind == r.kind)
      continue;
    last = &r;
    if (!plots::selects(sel, r.kind, r.params)) continue;
    const std::string pivot = spec.pivot.empty() ? "" : coord::param_text(plots::param_value(r.params, spec.pivot));
    Provenance& p = out[{row_key(r.params, spec.rows), pivot}];
    p.devices.insert(result_device(r));
    if (!r.engine_version.empty()) p.engines.insert(r.engine_version);
    if (std::find(p.hashes.begin(), p.hashes.end(), r.hash) == p.hashes.end()) p.hashes.push_back(r.hash);
  }
  return out;
}

std::string provenance_text(const Provenance& p) {
  std::string out;
  auto list = [&](const char* what, const std::set<std::string>& s) {
    if (s.empty()) return;
    out += std::string(out.empty() ? "" : "; ") + what + " ";
    bool first = true;
    for (const auto& v : s) {
      out += (first ? "" : ", ") + v;
      first = false;
    }
  };
  list("device", p.devices);
  list("engine", p.engines);
  out += std::string(out.empty() ? "" : "; ") + (p.hashes.size() == 1 ? "job " : "jobs ");
  for (size_t i = 0; i < p.hashes.size() && i < 4; ++i) out += (i ? ", " : "") + p.hashes[i];
  if (p.hashes.size() > 4) out += ", +" + std::to_string(p.hashes.size() - 4);
  return out;
}

}  // namespace

std::string device_label(const coord::Json& device, bool theory) {
  if (!device.is_object()) return "unknown device";
  std::string name = device.contains("name") && device["name"].is_string() ? device["name"].get<std::string>() : "";
  std::string kind = device.contains("kind") && device["kind"].is_string() ? device["kind"].get<std::string>() : "";
  if (kind.empty() && theory) kind = "theory";
  if (name.empty()) name = kind.empty() ? "unknown device" : kind;
  else if (!kind.empty()) name += " (" + kind + ")";
  return name;
}

std::string result_device(const coord::ResultRow& r) {
  const engine::JobKind* k = engine::find_job_kind(r.kind);
  return device_label(r.device, k != nullptr && k->theory_only);
}

std::string report_table_html(const Table& t, const coord::ReportSpec* spec,
                              const std::vector<coord::ResultRow>& results) {
  std::map<std::pair<std::string, std::string>, Provenance> prov;
  if (spec) prov = provenance(*spec, results);
  const size_t ncol = t.header.size();
  bool grouped = false;
  for (const auto& c : t.columns) grouped = grouped || (!c.key && !c.pivot_value.empty());

  std::ostringstream os;
  // A long table scrolls in its own box (header kept in view), so that its plots stay near.
  os << "<div class=\"table-wrap" << (t.rows.size() > kTallRows ? " tall" : "") << "\"><table class=\"report sortable\">\n<thead>";
  if (grouped) {
    // Row 1: the key columns (two rows high) and one group per pivot value; row 2: the labels.
    os << "<tr>";
    for (size_t i = 0; i < ncol;) {
      if (is_key_column(t, i)) {
        os << "<th rowspan=\"2\" class=\"sortable\" data-col=\"" << i << "\">" << html_escape(t.header[i]) << "</th>";
        ++i;
        continue;
      }
      size_t j = i;
      const std::string pv = i < t.columns.size() ? t.columns[i].pivot_value : "";
      while (j < ncol && !is_key_column(t, j) && (j < t.columns.size() ? t.columns[j].pivot_value : "") == pv) ++j;
      os << "<th class=\"group\" colspan=\"" << (j - i) << "\">" << html_escape(pv) << "</th>";
      i = j;
    }
    os << "</tr>\n<tr>";
    for (size_t i = 0; i < ncol; ++i) {
      if (is_key_column(t, i)) continue;
      os << "<th class=\"sortable\" data-col=\"" << i << "\" title=\"" << html_escape(t.header[i]) << "\">"
         << html_escape(t.columns[i].label) << "</th>";
    }
    os << "</tr>";
  } else {
    os << "<tr>";
    for (size_t i = 0; i < ncol; ++i)
      os << "<th class=\"sortable\" data-col=\"" << i << "\">" << html_escape(t.header[i]) << "</th>";
    os << "</tr>";
  }
  os << "</thead>\n<tbody>\n";
  std::vector<std::string> row_names;
  if (spec) row_names = spec->rows;
  const size_t shown = std::min(t.rows.size(), kMaxPageRows);
  for (size_t ri = 0; ri < shown; ++ri) {
    const auto& row = t.rows[ri];
    std::string rk;
    for (size_t i = 0; i < row.size() && i < row_names.size(); ++i) rk += row[i].text + '\x1f';
    os << "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      const TableCell& c = row[i];
      if (is_key_column(t, i)) {
        os << "<td class=\"key\">" << html_escape(c.text) << "</td>";
        continue;
      }
      std::string title;
      if (spec && (c.value || !c.text.empty())) {
        const std::string pv = i < t.columns.size() ? t.columns[i].pivot_value : "";
        auto p = prov.find({rk, pv});
        if (p != prov.end()) title = provenance_text(p->second);
      }
      if (c.n > 1) {
        title = "mean of " + std::to_string(c.n) + ", sd " + coord::format_number(c.stddev) +
                (title.empty() ? "" : "; " + title);
      }
      const std::string title_attr = title.empty() ? "" : " title=\"" + html_escape(title) + "\"";
      if (c.text.empty()) {
        os << "<td class=\"missing\">&ndash;</td>";
      } else if (!c.value) {
        os << "<td class=\"text\"" << title_attr << ">" << html_escape(c.text) << "</td>";
      } else {
        os << "<td class=\"num\" data-v=\"" << sort_value(*c.value) << "\"" << title_attr << ">"
           << html_escape(base_text(c));
        const std::string b = base_text(c);
        if (b.size() < c.text.size()) {
          os << "<span class=\"delta\">" << html_escape(c.text.substr(b.size() + 1)) << "</span>";
        }
        os << "</td>";
      }
    }
    os << "</tr>\n";
  }
  os << "</tbody>\n</table></div>\n";
  if (shown < t.rows.size()) os << capped_note(shown, t.rows.size(), "rows", {"report.csv", "report.json"});
  return os.str();
}

}  // namespace gb::dash

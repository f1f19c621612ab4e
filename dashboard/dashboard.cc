#include "dashboard/dashboard.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/json_util.h"
#include "dashboard/report_tables.h"

namespace gb::dash {

Result<GridPage> read_grid_page(coord::JobStore& store, const coord::Grid& grid) {
  GridPage page;
  page.grid = grid;
  Result<std::vector<coord::ResultRow>> rows = store.grid_results(grid.name);
  if (!rows.ok()) return rows.error();
  page.results = std::move(rows).value();
  Result<std::vector<coord::StoredJob>> jobs = store.grid_jobs(grid.name);
  if (!jobs.ok()) return jobs.error();
  // With the jobs, cells of failed jobs read "failed" and the last table lists them.
  Result<std::vector<coord::Table>> tables = coord::build_tables(grid, page.results, *jobs);
  if (!tables.ok()) return tables.error();
  page.tables = std::move(tables).value();
  Result<std::map<std::string, std::vector<engine::Series>>> series = store.grid_series(grid.name);
  if (!series.ok()) return series.error();
  page.series = std::move(series).value();
  page.jobs = std::move(jobs).value();
  Result<std::optional<coord::GridSummary>> summary = store.grid_summary(grid.name);
  if (!summary.ok()) return summary.error();
  if (*summary) page.updated_ms = (*summary)->updated_ms;
  return page;
}

IndexEntry index_entry(const coord::GridSummary& summary, const GridPage* page) {
  IndexEntry e;
  e.name = summary.name;
  e.total = summary.total;
  e.by_state = summary.by_state;
  e.updated_ms = summary.updated_ms;
  if (page) {
    const auto& spec = page->grid.spec;
    if (spec.is_object() && spec.contains("description") && spec["description"].is_string()) {
      e.title = spec["description"].get<std::string>();
    } else if (!page->grid.reports.empty()) {
      e.title = page->grid.reports.front().title;
    }
    for (const auto& r : page->results) e.devices.insert(result_device(r));
  }
  return e;
}

Status write_page(const std::string& dir, const std::string& file, const std::string& text) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{dir + ": cannot create directory: " + ec.message()};
  const fs::path path = fs::path(dir) / file;
  const fs::path tmp = fs::path(dir) / ("." + file + ".tmp");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Error{tmp.string() + ": cannot open for writing: " + std::strerror(errno)};
    f << text;
    f.flush();
    if (!f) return Error{tmp.string() + ": write failed: " + std::strerror(errno)};
  }
  fs::rename(tmp, path, ec);
  if (ec) return Error{path.string() + ": cannot write: " + ec.message()};
  return Status::Ok();
}

std::string page_folder(const std::string& name) {
  bool plain = !name.empty() && name != "." && name != "..";
  std::string safe;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    plain = plain && ok;
    safe += ok ? c : '_';
  }
  if (plain) return name;
  if (safe.size() > 40) safe.resize(40);
  return (safe.empty() || safe[0] == '.' ? "grid" + safe : safe) + "-" + sha256_hex(name).substr(0, 8);
}

}  // namespace gb::dash

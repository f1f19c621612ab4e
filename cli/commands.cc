#include "cli/commands.h"

#include <chrono>
#include <optional>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cli/exit_status.h"
#include "cli/quant_error_command.h"
#include "cli/quantize_command.h"
#include "cli/remote.h"
#include "cli/slurm.h"
#include "common/host_memory.h"
#include "common/json_parse.h"
#include "common/json_util.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "coordinator/embedded_runner.h"
#include "coordinator/grid/grid.h"
#include "coordinator/store/job_store.h"
#include "coordinator/report.h"
#include "cli/series_export.h"
#include "dashboard/dashboard.h"
#include "dashboard/job_states.h"
#include "engine/spec/device_spec.h"
#include "engine/spec/formats.h"
#include "engine/spec/model_config.h"
#include "engine/jobs/placement.h"
#include "engine/model/generate.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/weights/weight_source.h"
#include "kernels/device_info.h"
#include "kernels/quantize/quantize_matrix.h"
#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda_backend.h"
#include "worker/job_runner.h"

namespace gb::cli {
namespace fs = std::filesystem;
using coord::Json;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) { g_stop.store(true); }

std::string default_db() {
  const char* env = std::getenv("GRIDBENCH_DB");
  return env && *env ? env : "gridbench.db";
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string job_binary() {
  const char* env = std::getenv("GRIDBENCH_JOB");
  if (env && *env) return env;
  return self_exe_dir() + "/gridbench-job";
}

// Rebuilds a stored grid (its spec and source) for reports.
Result<coord::Grid> stored_grid(coord::JobStore& store, const std::string& name) {
  Result<std::optional<coord::GridSummary>> summary = store.grid_summary(name);
  if (!summary.ok()) return summary.error();
  if (!summary->has_value()) {
    std::string known;
    if (Result<std::vector<coord::GridSummary>> all = store.list_grids(); all.ok()) {
      for (const auto& g : *all) known += (known.empty() ? "" : ", ") + g.name;
    }
    return Error{store.path() + ": no grid named '" + name + "' (grids: " + (known.empty() ? "none" : known) + ")"};
  }
  Result<std::pair<std::string, std::string>> spec = store.grid_spec(name);
  if (!spec.ok()) return spec.error();
  Result<nlohmann::ordered_json> doc =
      parse_ordered_json(spec->first, store.path() + ": grid '" + name + "': stored spec", coord::grid_json_limits());
  if (!doc.ok()) return doc.error();
  return coord::parse_grid(*doc, spec->second);
}

// The grid's report tables, with the cells and the list of its failed jobs.
Result<std::vector<coord::Table>> grid_tables(coord::JobStore& store, const coord::Grid& grid,
                                              std::vector<coord::ResultRow>* rows_out = nullptr) {
  Result<std::vector<coord::ResultRow>> rows = store.grid_results(grid.name);
  if (!rows.ok()) return rows.error();
  Result<std::vector<coord::StoredJob>> jobs = store.grid_jobs(grid.name);
  if (!jobs.ok()) return jobs.error();
  Result<std::vector<coord::Table>> tables = coord::build_tables(grid, *rows, *jobs);
  if (tables.ok() && rows_out != nullptr) *rows_out = std::move(*rows);
  return tables;
}

Result<std::string> render_results(coord::JobStore& store, const coord::Grid& grid, coord::TableFormat format) {
  Result<std::vector<coord::Table>> tables = grid_tables(store, grid);
  if (!tables.ok()) return tables.error();
  return coord::render_tables(*tables, format);
}

Status write_text(const fs::path& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return Error{path.string() + ": cannot write"};
  std::fwrite(text.data(), 1, text.size(), f);
  bool ok = std::fclose(f) == 0;
  if (!ok) return Error{path.string() + ": write failed"};
  return Status::Ok();
}

// Writes report.md, report.csv, report.json, jobs.csv and the dashboard page
// (index.html) into dir; `index_href` links the page back to an index of grids ("" : none).
// Returns what the page showed, for an index row.
Result<dash::GridPage> write_reports(coord::JobStore& store, const coord::Grid& grid, const fs::path& dir,
                                     const std::string& index_href = "") {
  Result<dash::GridPage> page = dash::read_grid_page(store, grid);
  if (!page.ok()) return page.error();
  page->index_href = index_href;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{dir.string() + ": cannot create: " + ec.message()};
  // The report files on a thread of their own while this one renders the page:
  // both read the page's data, neither changes it.
  std::future<Status> files = std::async(std::launch::async, [&]() -> Status {
    GB_RETURN_IF_ERROR(
        write_text(dir / "report.md", coord::render_tables(page->tables, coord::TableFormat::kMarkdown)));
    GB_RETURN_IF_ERROR(write_text(dir / "report.csv", coord::render_tables(page->tables, coord::TableFormat::kCsv)));
    GB_RETURN_IF_ERROR(
        write_text(dir / "report.json", coord::render_tables(page->tables, coord::TableFormat::kJson)));
    return write_text(dir / "jobs.csv",
                      dash::jobs_csv(dash::job_rows(grid, page->jobs, page->results), grid.axis_names));
  });
  const Status written = dash::write_page(dir.string(), "index.html", dash::render_grid_page(*page));
  GB_RETURN_IF_ERROR(files.get());
  GB_RETURN_IF_ERROR(written);
  return page;
}

// ---- gridbench expand ----
int cmd_expand(const std::string& path, const std::string& format) {
  Result<coord::Grid> grid = coord::load_grid(path);
  if (!grid.ok()) return fail(grid.message(), kExitInvalid);
  for (const std::string& w : grid->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (format == "json") {
    Json jobs = Json::array();
    for (const auto& j : grid->jobs)
      jobs.push_back({{"hash", j.hash}, {"kind", j.kind}, {"repeat", j.repeat}, {"params", j.params}});
    Json out{{"name", grid->name}, {"points", grid->points.size()}, {"jobs", jobs}};
    if (auto in = grid->spec.find("inputs"); in != grid->spec.end()) out["inputs"] = Json::parse(in->dump());
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (format != "table") return fail("--format: expected table or json, got '" + format + "'", kExitInvalid);
  std::printf("grid %s: %zu points, %zu jobs\n", grid->name.c_str(), grid->points.size(), grid->jobs.size());
  std::printf("%-4s  %-16s  %-10s  %-3s  %s\n", "#", "hash", "kind", "rep", "params");
  int i = 0;
  for (const auto& j : grid->jobs) {
    std::printf("%-4d  %-16s  %-10s  %-3d  %s\n", i++, j.hash.c_str(), j.kind.c_str(), j.repeat,
                canonical_json(j.params).c_str());
  }
  return kExitOk;
}

// ---- gridbench run ----
struct RunFlags {
  std::string grid;
  std::string db;
  std::string out;
  int slots = 1;
  std::string backend = "cpu";
  bool rerun = false;
  int max_attempts = 3;
  double timeout_s = 0;
  std::string memory_limit;
};

int cmd_run(const RunFlags& f) {
  Result<coord::Grid> grid = coord::load_grid(f.grid);
  if (!grid.ok()) return fail(grid.message(), kExitInvalid);
  for (const std::string& w : grid->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (f.slots < 1) return fail("-j: expected at least 1 slot", kExitInvalid);
  if (f.backend != "cpu" && f.backend != "cuda")
    return fail("--backend: expected cpu or cuda, got '" + f.backend + "'", kExitInvalid);
  if (!f.memory_limit.empty()) {
    // The jobs (children included) read it from the environment (common/host_memory.h).
    if (Result<int64_t> v = parse_byte_size(f.memory_limit); !v.ok())
      return fail("--memory-limit: " + v.message(), kExitInvalid);
    ::setenv(kMemoryLimitEnv, f.memory_limit.c_str(), 1);
  }
  if (fs::path parent = fs::path(f.db).parent_path(); !parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) return fail(parent.string() + ": cannot create: " + ec.message());
  }
  Result<std::unique_ptr<coord::JobStore>> store = coord::JobStore::open(f.db);
  if (!store.ok()) return fail(store.message());
  fs::path out = f.out.empty() ? fs::path("out") / grid->name : fs::path(f.out);

  coord::EmbeddedOptions opts;
  opts.out_dir = out.string();
  opts.job_binary = job_binary();
  opts.slots = f.slots;
  opts.backend = f.backend;
  opts.rerun = f.rerun;
  // Measured results are reused only from this build on this machine's devices.
  coord::ReuseKey reuse{worker::engine_version(), {"cpu:" + kernels::host_cpu().name}};
  for (const kernels::DeviceInfo& d : kernels::cuda_devices()) reuse.device_classes.push_back("cuda:" + d.name);
  opts.reuse = std::move(reuse);
  opts.max_attempts = f.max_attempts;
  opts.job_timeout_s = f.timeout_s;
  // Theory-only jobs (the roofline) are computed here, in batches, not as children,
  // unless $GRIDBENCH_JOB names a job binary of the user's: then it runs every job.
  if (const char* env = std::getenv("GRIDBENCH_JOB"); env == nullptr || *env == '\0') {
    opts.run_in_process = [](const worker::JobSpec& spec) {
      return worker::run_job(spec, [](double, const std::string&) {});
    };
  }

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const bool tty = isatty(fileno(stderr));
  auto on_event = [&](const coord::EmbeddedEvent& ev) {
    if (tty) {
      const int width = 30;
      int filled = ev.total ? static_cast<int>(width * ev.done / ev.total) : width;
      std::fprintf(stderr, "\r[%s%s] %lld/%lld done, %lld running, %lld failed ",
                   std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(),
                   static_cast<long long>(ev.done), static_cast<long long>(ev.total),
                   static_cast<long long>(ev.running), static_cast<long long>(ev.failed));
      if (ev.kind == coord::EmbeddedEvent::kFinished && ev.outcome != "succeeded")
        std::fprintf(stderr, "\n%s %s %s: %s\n", ev.outcome.c_str(), ev.job_kind.c_str(), ev.hash.c_str(),
                     ev.detail.c_str());
    } else if (ev.kind == coord::EmbeddedEvent::kFinished) {
      std::fprintf(stderr, "[%lld/%lld] %s %s %s %s\n", static_cast<long long>(ev.done),
                   static_cast<long long>(ev.total), ev.outcome.c_str(), ev.job_kind.c_str(), ev.hash.c_str(),
                   ev.detail.c_str());
    }
  };
  Result<coord::EmbeddedSummary> summary = coord::run_embedded(*grid, **store, opts, g_stop, on_event);
  if (tty) std::fprintf(stderr, "\n");
  if (!summary.ok()) return fail(summary.message());
  const auto& s = *summary;
  // Jobs, each counted once by how it ended here; retries apart (each had its line).
  std::printf("grid %s: %lld jobs, %lld reused, %lld run here (%lld succeeded, %lld failed, %lld oom, %lld invalid, "
              "%lld timeout)",
              grid->name.c_str(), static_cast<long long>(s.submitted.jobs),
              static_cast<long long>(s.submitted.reused),
              static_cast<long long>(s.succeeded + s.failed + s.oom + s.timeout + s.invalid),
              static_cast<long long>(s.succeeded), static_cast<long long>(s.failed), static_cast<long long>(s.oom),
              static_cast<long long>(s.invalid), static_cast<long long>(s.timeout));
  if (s.retried > 0) std::printf(", %lld %s", static_cast<long long>(s.retried), s.retried == 1 ? "retry" : "retries");
  std::printf("\n");
  if (Result<std::vector<coord::StoredJob>> jobs = (*store)->grid_jobs(grid->name, /*parse_params=*/false); jobs.ok()) {
    int64_t elsewhere = 0;
    std::string other;
    for (const coord::StoredJob& j : *jobs)
      if (j.state == coord::JobState::kPending && j.req_device != "any" && j.req_device != f.backend) {
        ++elsewhere;
        other = j.req_device;
      }
    if (elsewhere > 0)
      std::printf("%lld jobs need the %s backend and stay pending: run them with --backend %s or on a worker\n",
                  static_cast<long long>(elsewhere), other.c_str(), other.c_str());
    int64_t dependency_ended = 0;
    for (const coord::StoredJob& j : *jobs)
      if (j.state == coord::JobState::kInvalid && j.error.starts_with("its dependency ")) ++dependency_ended;
    if (dependency_ended > 0)
      std::printf("%lld jobs ended invalid without running: the job whose output they run on did not succeed\n",
                  static_cast<long long>(dependency_ended));
  }
  // Jobs whose dependency this process does not run: what each waits for.
  for (size_t i = 0; i < s.waiting.size(); ++i) {
    const coord::DependencyWait& w = s.waiting[i];
    if (i == 0)
      std::printf("%zu jobs wait for a job of another backend and stay pending:\n", s.waiting.size());
    if (i == 10) {
      std::printf("  ... and %zu more\n", s.waiting.size() - 10);
      break;
    }
    std::printf("  %s %s waits for %s %s (pending: it needs the %s backend; run it with --backend %s or on a "
                "worker)\n",
                w.kind.c_str(), w.hash.c_str(), w.dep_kind.c_str(), w.dep_hash.c_str(), w.dep_req_device.c_str(),
                w.dep_req_device.c_str());
  }
  if (s.invalid > 0)
    std::printf("%lld jobs cannot run as given (invalid: not retried)\n",
                static_cast<long long>(s.invalid));
  if (s.submitted.left_cancelled > 0)
    std::printf("%lld unfinished jobs that left the grid cancelled\n",
                static_cast<long long>(s.submitted.left_cancelled));
  if (s.interrupted) {
    std::printf("interrupted: the database is consistent; run the same command again to resume\n");
    return kExitInterrupted;
  }
  if (Result<dash::GridPage> page = write_reports(**store, *grid, out); !page.ok()) return fail(page.message());
  std::printf("database: %s\nreport: %s (also report.csv, report.json, index.html)\n", f.db.c_str(),
              (out / "report.md").c_str());
  int64_t bad = 0;
  for (const auto& [state, n] : s.final_state.by_state) {
    if (state == "failed" || state == "invalid" || state == "timeout" || state == "cancelled") bad += n;
  }
  return bad > 0 ? kExitError : kExitOk;
}

// ---- gridbench results / grids / dashboard ----
int cmd_results(const std::string& name, const std::string& db, const std::string& format) {
  Result<coord::TableFormat> fmt = coord::parse_table_format(format);
  if (!fmt.ok()) return fail("--format: " + fmt.message(), kExitInvalid);
  if (!fs::exists(db)) return fail(db + ": no such database", kExitInvalid);
  Result<std::unique_ptr<coord::JobStore>> store = coord::JobStore::open(db);
  if (!store.ok()) return fail(store.message());
  Result<coord::Grid> grid = stored_grid(**store, name);
  if (!grid.ok()) return fail(grid.message(), kExitInvalid);
  Result<std::string> text = render_results(**store, *grid, *fmt);
  if (!text.ok()) return fail(text.message());
  std::cout << *text;
  return kExitOk;
}

// ---- gridbench series ----
int cmd_series(const std::string& name, const std::string& db, const std::string& metric, const std::string& format) {
  Result<SeriesFormat> fmt = parse_series_format(format);
  if (!fmt.ok()) return fail("--format: " + fmt.message(), kExitInvalid);
  if (!fs::exists(db)) return fail(db + ": no such database", kExitInvalid);
  Result<std::unique_ptr<coord::JobStore>> store = coord::JobStore::open(db);
  if (!store.ok()) return fail(store.message());
  Result<coord::Grid> grid = stored_grid(**store, name);
  if (!grid.ok()) return fail(grid.message(), kExitInvalid);
  Result<std::string> text = render_series(**store, *grid, metric, *fmt);
  if (!text.ok()) return fail(text.message(), kExitInvalid);
  std::cout << *text;
  return kExitOk;
}

int cmd_grids(const std::string& db, const std::string& format) {
  if (!fs::exists(db)) return fail(db + ": no such database", kExitInvalid);
  Result<std::unique_ptr<coord::JobStore>> store = coord::JobStore::open(db);
  if (!store.ok()) return fail(store.message());
  Result<std::vector<coord::GridSummary>> grids = (*store)->list_grids();
  if (!grids.ok()) return fail(grids.message());
  static const char* kStates[] = {"pending", "leased",  "running", "succeeded", "failed",
                                  "oom",     "invalid", "timeout", "cancelled"};
  if (format == "json") {
    Json out = Json::array();
    for (const auto& g : *grids)
      out.push_back({{"name", g.name}, {"source", g.source}, {"total", g.total}, {"by_state", g.by_state}});
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (format != "table") return fail("--format: expected table or json, got '" + format + "'", kExitInvalid);
  std::printf("%-28s %6s", "grid", "jobs");
  for (const char* s : kStates) std::printf(" %9s", s);
  std::printf("\n");
  for (const auto& g : *grids) {
    std::printf("%-28s %6lld", g.name.c_str(), static_cast<long long>(g.total));
    for (const char* s : kStates) {
      auto it = g.by_state.find(s);
      std::printf(" %9lld", static_cast<long long>(it == g.by_state.end() ? 0 : it->second));
    }
    std::printf("\n");
  }
  return kExitOk;
}

int cmd_dashboard(const std::string& name, const std::string& db, const std::string& out) {
  if (!fs::exists(db)) return fail(db + ": no such database", kExitInvalid);
  Result<std::unique_ptr<coord::JobStore>> store = coord::JobStore::open(db);
  if (!store.ok()) return fail(store.message());
  if (!name.empty()) {  // one grid's page
    Result<coord::Grid> grid = stored_grid(**store, name);
    if (!grid.ok()) return fail(grid.message(), kExitInvalid);
    fs::path dir = out.empty() ? fs::path("out") / name : fs::path(out);
    if (Result<dash::GridPage> page = write_reports(**store, *grid, dir); !page.ok()) return fail(page.message());
    std::printf("dashboard: %s\n", (dir / "index.html").c_str());
    return kExitOk;
  }
  // The index of every grid, and each grid's page in a folder beside it.
  Result<std::vector<coord::GridSummary>> grids = (*store)->list_grids();
  if (!grids.ok()) return fail(grids.message());
  const fs::path dir = out.empty() ? fs::path("out") : fs::path(out);
  std::vector<dash::IndexEntry> entries;
  int failed = 0;
  for (const auto& g : *grids) {
    const std::string folder = dash::page_folder(g.name);
    Result<dash::GridPage> page = Error{""};
    if (Result<coord::Grid> grid = stored_grid(**store, g.name); !grid.ok()) page = grid.error();
    else page = write_reports(**store, *grid, dir / folder, "../index.html");
    dash::IndexEntry e = dash::index_entry(g, page.ok() ? &*page : nullptr);
    if (page.ok()) {
      e.href = folder + "/index.html";
    } else {
      e.error = page.message();
      std::fprintf(stderr, "gridbench: grid '%s': %s\n", g.name.c_str(), page.message().c_str());
      ++failed;
    }
    entries.push_back(std::move(e));
  }
  if (Status st = dash::write_page(dir.string(), "index.html", dash::render_index_page(entries, db)); !st.ok())
    return fail(st.message());
  std::printf("dashboard: %s (%zu grid%s", (dir / "index.html").c_str(), entries.size(), entries.size() == 1 ? "" : "s");
  if (failed > 0) std::printf(", %d without a page", failed);
  std::printf(")\n");
  return failed > 0 ? kExitError : kExitOk;
}

// ---- gridbench roofline ----
struct RooflineFlags {
  std::string model, weight_format, kv_format = "f16", device = "rtx4090", format = "md";
  std::string bits, batch_size, context, prompt_tokens;
  bool count_group_scales = false;
  std::string memory_model;
  double reserve_gib = -1;
  double device_memory_gib = 0, device_bandwidth_gib_s = 0, device_tflops = 0;
};

Result<Json> parse_number_list(const std::string& flag, const std::string& s, bool integer) {
  Json out = Json::array();
  for (const auto& item : split_list(s)) {
    char* end = nullptr;
    double v = std::strtod(item.c_str(), &end);
    if (end == item.c_str() || *end != '\0' || (integer && v != static_cast<double>(static_cast<int64_t>(v))))
      return Error{flag + ": expected " + std::string(integer ? "integers" : "numbers") + ", got '" + item + "'"};
    out.push_back(integer ? Json(static_cast<int64_t>(v)) : Json(v));
  }
  return out;
}

// The grid errors of a roofline command line in terms of its flags:
// "command line: $.axes.device[0]: unknown device 'x' (...)" becomes
// "--device: unknown device 'x' (...)", with where to give a custom device.
std::string roofline_flag_errors(const std::string& grid_errors) {
  static const std::map<std::string, std::string> kFlags = {
      {"model", "--model"},           {"weight_format", "--weight-format"}, {"kv_format", "--kv-format"},
      {"device", "--device"},         {"bits", "--bits"},                   {"batch_size", "--batch-size"},
      {"context", "--context"},       {"prompt_tokens", "--prompt-tokens"}, {"memory_model", "--memory-model"},
      {"reserve_gib", "--reserve-gib"}, {"count_group_scales", "--count-group-scales"}};
  const std::string prefix = "command line: ";
  std::string out;
  std::stringstream ss(grid_errors);
  for (std::string line; std::getline(ss, line);) {
    if (line.rfind(prefix, 0) == 0) line = line.substr(prefix.size());
    for (const char* root : {"$.axes.", "$.fixed."}) {
      if (line.rfind(root, 0) != 0) continue;
      const size_t start = std::string(root).size();
      const size_t end = line.find_first_of("[:.", start);
      const size_t colon = line.find(": ", start);
      auto flag = kFlags.find(line.substr(start, end - start));
      if (flag == kFlags.end() || colon == std::string::npos) break;
      line = flag->second + ": " + line.substr(colon + 2);
      if (flag->first == "device")
        line += "; for a device of your own give its name with --device-memory-gib, --device-bandwidth-gib-s "
                "and --device-tflops";
      break;
    }
    if (line.rfind("$.measure[0]: ", 0) == 0) line = line.substr(14);
    out += (out.empty() ? "" : "\n") + line;
  }
  return out;
}

int cmd_roofline(const RooflineFlags& f) {
  nlohmann::ordered_json axes = nlohmann::ordered_json::object();
  std::vector<std::string> varying;
  auto add_strings = [&](const std::string& key, const std::string& value) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& v : split_list(value)) arr.push_back(v);
    if (arr.size() > 1) varying.push_back(key);
    axes[key] = arr;
  };
  auto add_numbers = [&](const std::string& key, const std::string& flag, const std::string& value,
                         bool integer) -> Status {
    if (value.empty()) return Status::Ok();
    Result<Json> arr = parse_number_list(flag, value, integer);
    if (!arr.ok()) return arr.error();
    if (arr->size() > 1) varying.push_back(key);
    axes[key] = nlohmann::ordered_json::parse(arr->dump());
    return Status::Ok();
  };
  add_strings("model", f.model);
  add_strings("weight_format", f.weight_format);
  add_strings("kv_format", f.kv_format);
  if (f.device_memory_gib > 0 || f.device_bandwidth_gib_s > 0 || f.device_tflops > 0) {
    if (!(f.device_memory_gib > 0 && f.device_bandwidth_gib_s > 0 && f.device_tflops > 0))
      return fail("a custom device needs --device-memory-gib, --device-bandwidth-gib-s and --device-tflops",
                  kExitInvalid);
    axes["device"] = nlohmann::ordered_json::array({{{"name", f.device},
                                                     {"memory_gib", f.device_memory_gib},
                                                     {"bandwidth_gib_s", f.device_bandwidth_gib_s},
                                                     {"tflops", f.device_tflops}}});
  } else {
    add_strings("device", f.device);
  }
  for (auto [key, flag, value, integer] :
       {std::tuple{"bits", "--bits", f.bits, false}, std::tuple{"batch_size", "--batch-size", f.batch_size, true},
        std::tuple{"context", "--context", f.context, true},
        std::tuple{"prompt_tokens", "--prompt-tokens", f.prompt_tokens, true}}) {
    if (Status st = add_numbers(key, flag, value, integer); !st.ok()) return fail(st.message(), kExitInvalid);
  }
  nlohmann::ordered_json fixed = nlohmann::ordered_json::object();
  if (f.count_group_scales) fixed["count_group_scales"] = true;
  if (!f.memory_model.empty()) fixed["memory_model"] = f.memory_model;
  if (f.reserve_gib >= 0) fixed["reserve_gib"] = f.reserve_gib;
  nlohmann::ordered_json doc{{"name", "roofline"}, {"axes", axes}, {"measure", {"roofline"}}};
  if (!fixed.empty()) doc["fixed"] = fixed;
  Result<coord::Grid> grid = coord::parse_grid(doc, "command line");
  if (!grid.ok()) return fail(roofline_flag_errors(grid.message()), kExitInvalid);
  Result<coord::TableFormat> fmt = coord::parse_table_format(f.format);
  if (!fmt.ok()) return fail("--format: " + fmt.message(), kExitInvalid);

  std::vector<coord::ResultRow> rows;
  for (const auto& job : grid->jobs) {
    worker::JobResult r = worker::run_job({job.kind, job.hash, job.repeat, job.params}, nullptr);
    if (r.status != worker::JobStatus::kSucceeded) return fail(r.error);
    const SharedJson params = job.params;  // shared by the job's rows
    for (const auto& m : r.output.metrics) {
      coord::ResultRow row;
      row.hash = job.hash;
      row.kind = job.kind;
      row.params = params;
      row.metric = m.name;
      row.value = m.value;
      row.unit = m.unit;
      row.text = m.text;
      rows.push_back(std::move(row));
    }
  }
  coord::ReportSpec spec;
  spec.kind = "roofline";
  if (grid->jobs.size() == 1) {
    // One configuration: every metric, one per line.
    spec.title = "roofline: " + canonical_json(grid->jobs[0].params);
    coord::Table t;
    t.title = spec.title;
    t.header = {"metric", "value", "unit"};
    for (const auto& r : rows) {
      coord::TableCell value;
      value.value = r.value;
      value.n = 1;
      if (r.value) {
        char buf[64];
        double v = *r.value;
        if (v == static_cast<double>(static_cast<int64_t>(v)) && std::fabs(v) < 1e15)
          std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v));
        else
          std::snprintf(buf, sizeof(buf), "%.4g", v);
        value.text = buf;
      } else {
        value.text = r.text;
      }
      coord::TableCell metric, unit;
      metric.text = r.metric;
      unit.text = r.unit;
      t.rows.push_back({metric, value, unit});
    }
    std::cout << coord::render_tables({t}, *fmt);
    return kExitOk;
  }
  spec.title = "roofline";
  spec.rows = varying;
  const double kGiB = 1024.0 * 1024.0 * 1024.0;
  const auto column = &coord::ReportColumn::plain;  // metric, header, digits, scale, suffix, truncated
  spec.columns = {column("activated_params", "activated", 2, kGiB, "B", false),
                  column("kv_bytes_per_token", "KV/token", 0, 1024, " KiB", false),
                  column("max_context", "max context", 0, 1, "", true),
                  column("prefill_exact_knee1", "knee1", 0, 1, "", true),
                  column("prefill_exact_knee2", "knee2", 0, 1, "", true),
                  column("decode_W_tokens_per_ms", "W tok/ms", 0, 1, "", false),
                  column("decode_B_ms", "B ms", 2, 1, "", false)};
  if (!f.context.empty()) spec.columns.push_back(column("decode_latency_ms", "latency ms", 2, 1, "", false));
  grid->reports = {spec};
  Result<std::vector<coord::Table>> tables = coord::build_tables(*grid, rows);
  if (!tables.ok()) return fail(tables.message());
  std::cout << coord::render_tables(*tables, *fmt);
  return kExitOk;
}

// ---- gridbench tokenize ----
int cmd_tokenize(const std::string& tokenizer_path, const std::string& text, const std::string& file,
                 const std::string& format, bool add_special) {
  if (text.empty() == file.empty()) return fail("give exactly one of --text and --file", kExitInvalid);
  if (format != "json" && format != "text") return fail("--format: expected json or text", kExitInvalid);
  Result<engine::Tokenizer> tok = engine::Tokenizer::from_file(tokenizer_path);
  if (!tok.ok()) return fail(tok.message(), kExitInvalid);
  std::string input = text;
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return fail(file + ": cannot read", kExitInvalid);
    input.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::vector<int32_t> ids = tok->encode(input, add_special);
  if (format == "json") {
    std::cout << Json(ids).dump() << "\n";
    return kExitOk;
  }
  std::vector<std::string> pieces = tok->pieces(ids);
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%d\t%s\n", ids[i], Json(pieces[i]).dump().c_str());
  std::printf("%zu tokens\n", ids.size());
  return kExitOk;
}

// ---- gridbench generate ----
struct GenerateFlags {
  std::string model, prompt, prompt_ids, kv_format = "f32", weight_format = std::string(engine::kAsStored), tokenizer;
  std::string kv_calibration;
  int64_t max_tokens = 32;
  double temperature = 0, top_p = 1;
  int64_t top_k = 0;
  uint64_t seed = 0;
  int threads = 0;
  bool ids = false, no_eos = false;
  std::string memory_limit;  // bytes ("24G"); empty: MemAvailable and the cgroup limit
  std::string backend = "cpu";  // cpu, or cuda (cuda:0 of this process)
};

int cmd_generate(const GenerateFlags& f) {
  Result<engine::KvCacheOptions> kv = engine::kv_cache_options(f.kv_format, f.kv_calibration);
  if (!kv.ok()) return fail("--kv-format: " + kv.message(), kExitInvalid);
  Result<engine::LoadOptions> load = engine::load_options(f.weight_format);
  if (!load.ok()) return fail("--weight-format: " + load.message(), kExitInvalid);
  engine::GenerateOptions go;
  go.max_new_tokens = f.max_tokens;
  go.sampling = {f.temperature, f.top_k, f.top_p, f.seed};
  if (Status s = engine::validate(go.sampling); !s.ok()) return fail(s.message(), kExitInvalid);
  if (f.max_tokens < 0) return fail("--max-tokens must be >= 0", kExitInvalid);
  if (f.backend != "cpu" && f.backend != "cuda")
    return fail("--backend: expected cpu or cuda, got '" + f.backend + "'", kExitInvalid);
  if (f.backend == "cuda")
    if (std::optional<std::string> why = engine::cuda_unavailable(0)) return fail("--backend cuda: " + *why, kExitInvalid);

  if (f.prompt.empty() == f.prompt_ids.empty()) return fail("give exactly one of --prompt and --prompt-ids", kExitInvalid);
  std::vector<int32_t> prompt;
  if (!f.prompt_ids.empty()) {
    Result<Json> ids = parse_number_list("--prompt-ids", f.prompt_ids, /*integer=*/true);
    if (!ids.ok()) return fail(ids.message(), kExitInvalid);
    for (const Json& id : *ids) {
      if (id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        return fail("--prompt-ids: expected token ids >= 0, got " + id.dump(), kExitInvalid);
      prompt.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    if (prompt.empty()) return fail("--prompt-ids: expected comma-separated token ids, e.g. 15496,11", kExitInvalid);
  }

  Result<std::unique_ptr<engine::WeightSource>> w = engine::open_weights(f.model);
  if (!w.ok()) return fail(w.message(), kExitInvalid);
  const engine::Tokenizer* tok = (*w)->tokenizer();
  std::optional<engine::Tokenizer> own;
  if (!f.tokenizer.empty()) {
    Result<engine::Tokenizer> t = engine::Tokenizer::from_file(f.tokenizer);
    if (!t.ok()) return fail(t.message(), kExitInvalid);
    own = std::move(*t);
    tok = &*own;
  }
  if (tok == nullptr && f.prompt_ids.empty())
    return fail("model " + f.model + " has no tokenizer: give one with --tokenizer, or the prompt as --prompt-ids",
                kExitInvalid);
  // Ids the model has no embedding for fail here, before anything is loaded.
  const int64_t model_vocab = (*w)->config().vocab_size;
  if (tok != nullptr && model_vocab > 0 && tok->vocab_size() > model_vocab) {
    return fail((f.tokenizer.empty() ? "the tokenizer of " + f.model : "--tokenizer " + f.tokenizer) +
                    ": its ids go up to " + std::to_string(tok->vocab_size() - 1) + " but the model's vocabulary has " +
                    std::to_string(model_vocab) + " entries (vocab_size); give the model's own tokenizer",
                kExitInvalid);
  }
  for (int32_t id : prompt) {
    if (model_vocab > 0 && id >= model_vocab)
      return fail("--prompt-ids: id " + std::to_string(id) + " is not below the model's vocab_size " +
                      std::to_string(model_vocab),
                  kExitInvalid);
  }
  // A model that cannot fit is refused before anything loads (engine/jobs/placement.h).
  std::optional<int64_t> limit;
  if (!f.memory_limit.empty()) {
    Result<int64_t> v = parse_byte_size(f.memory_limit);
    if (!v.ok()) return fail("--memory-limit: " + v.message(), kExitInvalid);
    limit = *v;
  }
  const int64_t prompt_tokens = f.prompt_ids.empty() ? static_cast<int64_t>(f.prompt.size()) : prompt.size();
  const Json need = {{"model", f.model},
                     {"weight_format", f.weight_format},
                     {"kv_format", f.kv_format},
                     {"context", std::max<int64_t>(1, prompt_tokens + f.max_tokens)}};
  if (auto short_of = engine::host_memory_shortfall(engine::engine_job_requirement(need), "model " + f.model, limit))
    return fail(*short_of, kExitOom);
  // Without a tokenizer the new tokens are printed as ids.
  const bool print_ids = f.ids || tok == nullptr;
  std::unique_ptr<engine::Backend> backend;
  if (f.backend == "cuda") {
    Result<std::unique_ptr<engine::CudaBackend>> b = engine::make_cuda_backend(0);
    if (!b.ok()) return fail("--backend cuda: " + b.message(), kExitInvalid);
    backend = std::move(*b);
  } else {
    backend = engine::make_cpu_backend(f.threads);
  }
  const auto t0 = std::chrono::steady_clock::now();
  Result<std::unique_ptr<engine::Model>> model = engine::Model::load(**w, *backend, *load);
  if (!model.ok())
    return fail(model.message(),
                model.message().find(engine::kDeviceOutOfMemory) != std::string::npos ? kExitOom : kExitError);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!f.no_eos) {
    if (tok != nullptr && tok->eos_id()) go.eos_token_id = *tok->eos_id();
    else if ((*model)->config().eos_token_id >= 0) go.eos_token_id = (*model)->config().eos_token_id;
  }
  if (prompt.empty()) prompt = tok->encode(f.prompt, true);
  if (prompt.empty()) return fail("the prompt encodes to no tokens", kExitInvalid);
  Result<std::unique_ptr<engine::KvCache>> cache = (*model)->make_cache(*kv, 1);
  if (!cache.ok()) return fail(cache.message());
  // Print the continuation as it comes: decode the whole suffix each time and
  // write what is new, so multi-token characters appear once complete.
  std::vector<int32_t> generated;
  std::string shown;
  auto on_token = [&](int32_t t) {
    generated.push_back(t);
    if (print_ids) {
      std::printf("%d\n", t);
    } else {
      const std::string text = tok->decode(generated, true);
      if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
        std::fputs(text.c_str() + shown.size(), stdout);
        shown = text;
      }
    }
    std::fflush(stdout);
  };
  if (!print_ids) {
    std::fputs(f.prompt_ids.empty() ? f.prompt.c_str() : tok->decode(prompt, true).c_str(), stdout);
    std::fflush(stdout);
  }
  Result<engine::GenerateResult> r = engine::generate(**model, **cache, 0, prompt, go, on_token);
  if (!r.ok()) return fail(r.message());
  double decode_ms = 0;
  for (double ms : r->decode_ms) decode_ms += ms;
  std::printf("\n");
  std::fprintf(stderr, "[%s: loaded in %.2f s; prompt %zu tokens, prefill %.1f ms; %zu new tokens (%s)",
               (*w)->describe().c_str(), load_s, prompt.size(), r->prefill_ms, r->tokens.size(),
               r->stop_reason.c_str());
  if (!r->decode_ms.empty())
    std::fprintf(stderr, ", decode %.2f ms/token = %.1f tokens/s on the CPU", decode_ms / r->decode_ms.size(),
                 1000.0 * r->decode_ms.size() / decode_ms);
  std::fprintf(stderr, "]\n");
  return kExitOk;
}

// ---- gridbench devices ----
int cmd_devices(bool measure, const std::string& format) {
  if (format != "table" && format != "json") return fail("--format: expected table or json, got '" + format + "'", kExitInvalid);
  Json out = Json::array();
  kernels::DeviceInfo cpu = kernels::host_cpu();
  Json c{{"device", "cpu"}, {"name", cpu.name}, {"memory_bytes", cpu.memory_bytes}, {"cores", cpu.cores}};
  if (measure) c["copy_bandwidth_bytes_per_s"] = kernels::measure_host_copy_bandwidth(256u << 20, 5);
  out.push_back(c);
  for (const auto& d : kernels::cuda_devices()) {
    Json g{{"device", "cuda:" + std::to_string(d.index)}, {"name", d.name}, {"memory_bytes", d.memory_bytes},
           {"compute_capability", d.compute_capability}, {"sms", d.cores}};
    if (measure) {
      Result<double> bw = kernels::measure_cuda_copy_bandwidth(d.index, 1u << 30, 10);
      if (bw.ok()) g["copy_bandwidth_bytes_per_s"] = *bw;
      else g["error"] = bw.message();
      Result<double> flops = kernels::measure_cuda_matmul_flops(d.index, 4096, 10);
      if (flops.ok()) g["matmul_flops_per_s"] = *flops;
      else g["error"] = flops.message();
    }
    out.push_back(g);
  }
  if (format == "json") {
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& d : out) {
    std::printf("%-8s %-40s %8.1f GiB", d["device"].get<std::string>().c_str(), d["name"].get<std::string>().c_str(),
                d["memory_bytes"].get<double>() / (1024.0 * 1024 * 1024));
    if (d.contains("copy_bandwidth_bytes_per_s"))
      std::printf("  copy %.1f GB/s", d["copy_bandwidth_bytes_per_s"].get<double>() / 1e9);
    if (d.contains("matmul_flops_per_s"))
      std::printf("  bf16 matmul %.1f TFLOP/s", d["matmul_flops_per_s"].get<double>() / 1e12);
    if (d.contains("error")) std::printf("  (%s)", d["error"].get<std::string>().c_str());
    std::printf("\n");
  }
  if (!kernels::built_with_cuda()) std::printf("(built without CUDA: no CUDA devices listed)\n");
  return kExitOk;
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"gridbench: run grids of LLM inference experiments and print their report tables.\n"
               "Exit codes: 0 ok, 1 a job failed or a runtime error, 2 invalid input, 130 interrupted."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gridbench " + worker::engine_version());

  std::string grid_path, format = "table";
  auto* expand = app.add_subcommand("expand", "List the jobs a grid file expands to, without running anything");
  expand->add_option("grid", grid_path, "grid file (.json, .yaml or .yml)")->required();
  expand->add_option("--format", format, "table|json")->capture_default_str();

  RunFlags run_flags;
  run_flags.db = default_db();
  auto* run = app.add_subcommand("run", "Run a grid in this process with N local job slots, then write its report");
  run->add_option("grid", run_flags.grid, "grid file (.json, .yaml or .yml)")->required();
  run->add_option("--db", run_flags.db, "SQLite database (env GRIDBENCH_DB)")->capture_default_str();
  run->add_option("--out", run_flags.out, "directory for job files and reports (default out/GRID_NAME)");
  run->add_option("-j,--jobs", run_flags.slots, "job slots run at once")->capture_default_str();
  run->add_option("--backend", run_flags.backend,
                  "the backend this process offers (cpu, cuda): it runs the jobs whose `backend` parameter names it "
                  "(and those that need no engine); jobs of another backend stay pending")
      ->capture_default_str();
  run->add_flag("--rerun", run_flags.rerun, "run again jobs that already succeeded (old results are kept)");
  run->add_option("--max-attempts", run_flags.max_attempts, "attempts before a job is failed")->capture_default_str();
  run->add_option("--timeout", run_flags.timeout_s, "seconds before a job is killed (0: none)")->capture_default_str();
  run->add_option("--memory-limit", run_flags.memory_limit,
                  "host memory a job may use, e.g. 24G (default: MemAvailable and the cgroup limit); an engine "
                  "job whose model needs more ends oom before loading");

  RemoteFlags remote;
  auto add_remote = [&remote](CLI::App* cmd, bool required) {
    auto* opt = cmd->add_option("--coordinator", remote.coordinator,
                                "coordinator HOST:PORT, HOST alone: port 7878 (env GRIDBENCH_COORDINATOR)");
    if (required && !std::getenv("GRIDBENCH_COORDINATOR")) opt->required();
    cmd->add_option("--token-file", remote.token_file, "file holding the shared token (else env GRIDBENCH_TOKEN)");
    cmd->add_option("--tls-ca", remote.tls_ca, "CA certificate (PEM): connect with TLS");
    cmd->add_option("--tls-cert", remote.tls_cert, "client certificate (PEM), when the coordinator asks for one");
    cmd->add_option("--tls-key", remote.tls_key, "client key (PEM)");
  };

  std::string name, db = default_db(), table_format = "md", out_dir;
  auto* results = app.add_subcommand(
      "results", "Print a grid's report tables from the database (--db) or a coordinator (--coordinator; "
                 "without either flag the coordinator of GRIDBENCH_COORDINATOR when it is set, else the database)");
  results->add_option("grid_name", name, "grid name (its `name` field)")->required();
  results->add_option("--db", db, "SQLite database (env GRIDBENCH_DB)")->capture_default_str();
  results->add_option("--format", table_format, "md, csv or json")->capture_default_str();
  add_remote(results, false);

  std::string series_name, series_metric, series_format = "csv";
  auto* series = app.add_subcommand(
      "series", "Print a grid's series (decode curves: every point of each job's current result) from the database");
  series->add_option("grid_name", series_name, "grid name (its `name` field)")->required();
  series->add_option("--db", db, "SQLite database (env GRIDBENCH_DB)")->capture_default_str();
  series->add_option("--metric", series_metric,
                     "only the series of this name (decode_latency, decode_step_ms, ...; default: all)");
  series->add_option("--format", series_format, "csv or json")->capture_default_str();

  bool submit_rerun = false, submit_wait = false;
  int submit_attempts = 0;
  auto* submit = app.add_subcommand(
      "submit", "Submit a grid to a coordinator; its workers run the jobs (resubmitting a grid without some of its "
                "jobs cancels those no other grid wants)");
  submit->add_option("grid", grid_path, "grid file (.json, .yaml or .yml)")->required();
  submit->add_flag("--wait", submit_wait, "watch the grid until every job ended, then print its report");
  submit->add_flag("--rerun", submit_rerun, "run again jobs that already succeeded");
  submit->add_option("--max-attempts", submit_attempts, "attempts before a job is failed (0: the coordinator's)");
  add_remote(submit, true);

  std::string status_format = "table";
  auto* status = app.add_subcommand("status", "Grids on a coordinator with job counts, or one grid's jobs");
  status->add_option("grid_name", name, "grid name (all grids when absent)");
  status->add_option("--format", status_format, "table|json")->capture_default_str();
  add_remote(status, true);

  auto* watch = app.add_subcommand(
      "watch", "Follow a grid's progress on a coordinator until it ends: each job that ends, and while nothing "
               "moves the pending and unplaceable jobs (and whether any worker is registered)");
  watch->add_option("grid_name", name, "grid name")->required();
  add_remote(watch, true);

  auto* cancel = app.add_subcommand("cancel", "Cancel a grid's unfinished jobs on a coordinator");
  cancel->add_option("grid_name", name, "grid name")->required();
  add_remote(cancel, true);

  std::string workers_format = "table";
  auto* workers = app.add_subcommand("workers", "The workers registered with a coordinator");
  workers->add_option("--format", workers_format, "table|json")->capture_default_str();
  add_remote(workers, true);

  std::string grids_format = "table";
  auto* grids = app.add_subcommand("grids", "List the grids in the database with job counts by state");
  grids->add_option("--db", db, "SQLite database (env GRIDBENCH_DB)")->capture_default_str();
  grids->add_option("--format", grids_format, "table|json")->capture_default_str();

  auto* dashboard = app.add_subcommand(
      "dashboard",
      "Write static HTML pages: without GRID, an index of every grid in the database (OUT/index.html) and each "
      "grid's page (OUT/GRID/index.html, with report.md/.csv/.json and jobs.csv); with GRID, that grid's page and "
      "report files in OUT. The pages open from the file system and load nothing from the network");
  dashboard->add_option("grid_name", name, "grid name (absent: every grid, with an index)");
  dashboard->add_option("--db", db, "SQLite database (env GRIDBENCH_DB)")->capture_default_str();
  dashboard->add_option("--out", out_dir, "output directory (default out/GRID_NAME with GRID, else out)");

  RooflineFlags rf;
  auto* roofline = app.add_subcommand(
      "roofline", "Print reference 003's theory for one configuration; comma-separated lists print a table");
  roofline->add_option("--model", rf.model, "preset, synthetic:PRESET or hf:DIR (presets: qwen1.5-0.5b ... gpt2)")
      ->required();
  roofline->add_option("--weight-format", rf.weight_format, "weight format, e.g. f16, int8-channel, int4-g128, q4_k")
      ->required();
  roofline->add_option("--kv-format", rf.kv_format, "KV-cache format, e.g. f16, int8, f16+sink4+win256")
      ->capture_default_str();
  roofline->add_option("--device", rf.device, "device preset (rtx4090, a100-80g, h100-sxm, h200) or a custom name")
      ->capture_default_str();
  roofline->add_option("--device-memory-gib", rf.device_memory_gib, "custom device: memory in GiB");
  roofline->add_option("--device-bandwidth-gib-s", rf.device_bandwidth_gib_s, "custom device: bandwidth in GiB/s");
  roofline->add_option("--device-tflops", rf.device_tflops, "custom device: dense FLOP/s in units of 1e12");
  roofline->add_option("--bits", rf.bits, "bits per weight, overriding the format's nominal bits (003's w6)");
  roofline->add_option("--batch-size", rf.batch_size, "batch size (default 1)");
  roofline->add_option("--context", rf.context, "context length for the decode latency");
  roofline->add_option("--prompt-tokens", rf.prompt_tokens, "prompt length for the prefill latency");
  roofline->add_flag("--count-group-scales", rf.count_group_scales, "use effective bits including scales");
  roofline->add_option("--memory-model", rf.memory_model, "003 (activated weights only) or total");
  roofline->add_option("--reserve-gib", rf.reserve_gib, "memory kept free with --memory-model total");
  roofline->add_option("--format", rf.format, "md|csv|json")->capture_default_str();

  bool measure = false;
  std::string devices_format = "table";
  auto* devices = app.add_subcommand("devices", "List this machine's devices (CPU and CUDA)");
  devices->add_flag("--measure", measure, "also measure copy bandwidth (and, on CUDA devices, the bf16 matmul rate)");
  devices->add_option("--format", devices_format, "table|json")->capture_default_str();

  std::string tok_path, tok_text, tok_file, tok_format = "json";
  bool tok_special = false;
  auto* tokenize = app.add_subcommand("tokenize", "Encode text with a Hugging Face tokenizer.json and print the ids");
  tokenize->add_option("--tokenizer", tok_path, "tokenizer.json")->required();
  tokenize->add_option("--text", tok_text, "text to encode");
  tokenize->add_option("--file", tok_file, "file whose content to encode");
  tokenize->add_option("--format", tok_format, "json (an array of ids) or text (id and piece per line)")
      ->capture_default_str();
  tokenize->add_flag("--add-special", tok_special, "add the tokenizer's special tokens (BOS, template)");

  GenerateFlags gf;
  auto* gen = app.add_subcommand("generate", "Load a model and print its continuation of a prompt (gridbench's engine)");
  gen->add_option("--backend", gf.backend, "cpu, or cuda (cuda:0; CUDA_VISIBLE_DEVICES picks the GPU)")
      ->capture_default_str();
  gen->add_option("--model", gf.model, "hf:DIR, gguf:FILE or synthetic:PRESET[@SEED]")->required();
  gen->add_option("--prompt", gf.prompt, "the prompt text");
  gen->add_option("--prompt-ids", gf.prompt_ids,
                  "the prompt as comma-separated token ids instead of --prompt (models without a tokenizer: the "
                  "new tokens are then printed as ids)");
  gen->add_option("--max-tokens", gf.max_tokens, "tokens to generate at most")->capture_default_str();
  gen->add_option("--memory-limit", gf.memory_limit,
                  "host memory it may use, e.g. 24G (default: MemAvailable and the cgroup limit); a model "
                  "that needs more (weights and KV cache) exits 3 before loading");
  gen->add_option("--kv-calibration", gf.kv_calibration, "int8-calib KV caches: the calibration file (JSON)");
  gen->add_option("--kv-format", gf.kv_format,
                  "KV cache: f32, f16, bf16, int8, fp8, int4, int4-g32, int8-calib, optionally +sink{S}+win{W}")
      ->capture_default_str();
  gen->add_option("--weight-format", gf.weight_format,
                  "the format the weights are held in (see `gridbench formats`); \"as stored\" keeps the file's")
      ->capture_default_str();
  gen->add_option("--temperature", gf.temperature, "0 is greedy; > 0 samples")->capture_default_str();
  gen->add_option("--top-k", gf.top_k, "sample from the k most likely tokens (0: all)")->capture_default_str();
  gen->add_option("--top-p", gf.top_p, "nucleus sampling threshold")->capture_default_str();
  gen->add_option("--seed", gf.seed, "sampling seed")->capture_default_str();
  gen->add_option("--threads", gf.threads, "CPU threads (0: all)")->capture_default_str();
  gen->add_option("--tokenizer", gf.tokenizer, "tokenizer.json to use instead of the model's own");
  gen->add_flag("--ids", gf.ids, "print the new token ids, one per line, instead of text");
  gen->add_flag("--no-eos", gf.no_eos, "do not stop at the end-of-sequence token");

  auto* formats = app.add_subcommand("formats", "List the weight, KV-cache format and model preset names");

  SlurmFlags slurm_flags;
  auto* slurm = add_slurm_command(app, slurm_flags);
  QuantErrorFlags quant_error_flags;
  auto* quant_error = add_quant_error_command(app, quant_error_flags);
  QuantizeFlags quantize_flags;
  auto* quantize = add_quantize_command(app, quantize_flags);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitInvalid;
  }

  if (*expand) return cmd_expand(grid_path, format);
  if (*run) return cmd_run(run_flags);
  if (*results) {
    // --db: this database; --coordinator: that coordinator; neither: the
    // coordinator of GRIDBENCH_COORDINATOR when set, else the database.
    const bool db_given = results->count("--db") > 0;
    if (db_given && !remote.coordinator.empty()) return fail("results: give --db or --coordinator, not both", kExitInvalid);
    const char* env = std::getenv("GRIDBENCH_COORDINATOR");
    if (!remote.coordinator.empty() || (!db_given && env != nullptr && *env != '\0'))
      return cmd_remote_results(remote, name, table_format);
    return cmd_results(name, db, table_format);
  }
  if (*submit) return cmd_submit(remote, grid_path, submit_rerun, submit_wait, submit_attempts);
  if (*status) return cmd_status(remote, name, status_format);
  if (*watch) return cmd_watch(remote, name);
  if (*cancel) return cmd_cancel(remote, name);
  if (*workers) return cmd_workers(remote, workers_format);
  if (*slurm) return run_slurm_command(slurm_flags);
  if (*quant_error) return run_quant_error_command(quant_error_flags);
  if (*quantize) return run_quantize_command(quantize_flags);
  if (*series) return cmd_series(series_name, db, series_metric, series_format);
  if (*grids) return cmd_grids(db, grids_format);
  if (*dashboard) return cmd_dashboard(name, db, out_dir);
  if (*roofline) return cmd_roofline(rf);
  if (*devices) return cmd_devices(measure, devices_format);
  if (*gen) return cmd_generate(gf);
  if (*tokenize) return cmd_tokenize(tok_path, tok_text, tok_file, tok_format, tok_special);
  if (*formats) {
    // The weight format table: one row per format, as engine/spec/formats.cc holds it.
    std::printf("%-18s %7s %9s %6s %-10s %-4s %-6s %s\n", "weight format", "nominal", "effective", "block", "scales",
                "sym", "codec", "description");
    for (const std::string& n : engine::weight_format_names()) {
      Result<engine::WeightFormat> f = engine::parse_weight_format(n);
      if (!f) continue;  // "fake:<format>", described below
      std::printf("%-18s %7g %9.4g %6lld %-10s %-4s %-6s %s\n", f->name.c_str(), f->nominal_bits, f->effective_bits,
                  static_cast<long long>(f->block_size), f->scale_layout.c_str(), f->symmetric ? "yes" : "no",
                  kernels::codec_name(f->codec), f->description.c_str());
    }
    std::printf("fake:<format>: quantized and dequantized at load time, held in bf16\n\n");
    // The KV-cache table: effective bits at head_dim 128 (scales and zero points included).
    std::printf("%-18s %7s %9s %s\n", "kv format", "nominal", "effective", "description");
    for (const std::string& n : engine::kv_format_names())
      if (Result<engine::KvFormat> f = engine::parse_kv_format(n); f)
        std::printf("%-18s %7g %9.4g %s\n", f->name.c_str(), f->nominal_bits, f->effective_bits, f->description.c_str());
    std::printf("\n");
    std::printf("weight formats: %s\n", join(engine::weight_format_names()).c_str());
    std::printf("kv formats: %s (policy suffix +sink{S}+win{W})\n", join(engine::kv_format_names()).c_str());
    std::vector<std::string> models, devs;
    for (const auto& m : engine::model_presets()) models.push_back(m.name);
    for (const auto& d : engine::device_presets()) devs.push_back(d.name);
    std::printf("model presets: %s\n", join(models).c_str());
    std::printf("device presets: %s\n", join(devs).c_str());
    return kExitOk;
  }
  return kExitInvalid;
}

}  // namespace gb::cli

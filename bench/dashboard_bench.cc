// The page of a 2,000-job grid: its size and the time to make it and to render it,
// against the targets (under 2 MB, under 2 s). The grid is synthetic: five models
// x five weight formats x four KV formats x ten batch sizes, measured by a
// `memory` job and a `roofline` job each (a 101-point decode-latency series per
// roofline job), twenty failed jobs with a 2 KB error each, one report section
// with its default plots. The render time is Chromium's: navigation start to the
// end of the load event with layout done (the page's own timing, read by the
// report hook of tests/dashboard/headless_chromium.h), and the wall time of
// `chromium --headless --screenshot` on the page less that on an empty page.
// Not a test: it prints figures.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "dashboard/dashboard.h"
#include "dashboard/grid_page.h"
#include "dashboard/html.h"
#include "tests/dashboard/headless_chromium.h"

namespace {

namespace fs = std::filesystem;
using gb::coord::Json;

gb::dash::GridPage make_page(int target_jobs) {
  gb::dash::GridPage page;
  gb::coord::Grid& g = page.grid;
  g.name = "bench-2000";
  g.source = "bench/synthetic.json";
  g.axis_names = {"model", "weight_format", "kv_format", "batch_size"};
  g.measures = {"memory", "roofline"};
  g.spec = nlohmann::ordered_json{{"name", g.name}, {"description", "synthetic 2,000-job grid for the dashboard benchmark"}};
  const std::vector<std::string> models = {"qwen1.5-0.5b", "qwen1.5-7b", "qwen1.5-14b", "qwen1.5-32b", "llama-3-8b"};
  const std::vector<std::string> wfs = {"f16", "int8-channel", "int4-g128", "nf4-b64", "q4_k"};
  const std::vector<std::string> kvs = {"f16", "bf16", "int8", "f16+sink4+win1020"};
  const int batches[] = {1, 2, 4, 8, 12, 16, 24, 32, 48, 64};
  int n = 0, failed = 0;
  auto result = [&](const std::string& hash, const std::string& kind, const Json& p, const std::string& metric,
                    double v, const std::string& unit) {
    gb::coord::ResultRow r;
    r.hash = hash;
    r.kind = kind;
    r.params = p;
    r.metric = metric;
    r.value = v;
    r.unit = unit;
    r.device = kind == "roofline" ? Json{{"name", "rtx4090"}} : Json{{"name", "NVIDIA H200"}, {"kind", "cuda"}};
    r.engine_version = "0.1.0";
    page.results.push_back(std::move(r));
  };
  for (size_t mi = 0; mi < models.size(); ++mi) {
    for (size_t wi = 0; wi < wfs.size(); ++wi) {
      for (size_t ki = 0; ki < kvs.size(); ++ki) {
        for (int b : batches) {
          if (n >= target_jobs) break;
          Json p = {{"model", models[mi]}, {"weight_format", wfs[wi]}, {"kv_format", kvs[ki]}, {"batch_size", b}};
          g.points.push_back(p);
          for (const std::string kind : {"memory", "roofline"}) {
            Json jp = p;
            if (kind == "roofline") jp["device"] = "rtx4090";
            gb::coord::GridJob j;
            j.hash = kind.substr(0, 1) + std::to_string(1000000 + n++);
            j.kind = kind;
            j.params = jp;
            g.jobs.push_back(j);
            gb::coord::StoredJob sj;
            sj.hash = j.hash;
            sj.kind = kind;
            sj.params = jp;
            sj.attempts = 1;
            sj.state = gb::coord::JobState::kSucceeded;
            const double scale = (mi + 1) * (16.0 / (4 + 3 * wi));
            if (kind == "memory" && n % 100 == 1) {
              sj.state = gb::coord::JobState::kFailed;
              sj.attempts = 3;
              sj.error = std::string(2000, 'x') + " (stderr tail)";
              ++failed;
            } else if (kind == "memory") {
              result(j.hash, kind, jp, "kv_cache_bytes", 1e6 * b * (ki + 1) * (mi + 1), "B");
              result(j.hash, kind, jp, "peak_memory_bytes", 1e9 * scale + 1e6 * b * (ki + 1), "B");
              result(j.hash, kind, jp, "weight_bytes", 1e9 * scale, "B");
            } else {
              for (int m = 0; m < 12; ++m) result(j.hash, kind, jp, "metric_" + std::to_string(m), scale * (m + 1), "");
              result(j.hash, kind, jp, "decode_B_ms", scale * 2, "ms");
              gb::engine::Series s{"decode_latency", "tokens", "ms", {}};
              for (int x = 0; x <= 100; ++x) s.points.push_back({1 + x * 100.0, scale * (2 + 0.001 * x * b)});
              page.series[j.hash].push_back(std::move(s));
            }
            page.jobs.push_back(std::move(sj));
          }
        }
      }
    }
  }
  gb::coord::ReportSpec r;
  r.title = "Memory";
  r.kind = "memory";
  r.rows = {"model", "kv_format", "batch_size"};
  r.pivot = "weight_format";
  for (const char* m : {"kv_cache_bytes", "peak_memory_bytes"}) {
    gb::coord::ReportColumn c;
    c.metric = m;
    c.label = std::string(m) + " MiB";
    c.scale = 1048576;
    c.digits = 1;
    r.columns.push_back(c);
  }
  r.baseline = {{"weight_format", "f16"}};
  g.reports = {r};
  auto tables = gb::coord::build_tables(g, page.results);
  if (!tables.ok()) {
    std::fprintf(stderr, "%s\n", tables.message().c_str());
    std::exit(1);
  }
  page.tables = *tables;
  page.updated_ms = gb::coord::now_ms();
  std::printf("grid: %zu jobs (%d failed), %zu results, %zu series\n", g.jobs.size(), failed, page.results.size(),
              page.series.size());
  return page;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dashboard_bench: size and render time of the page of a 2,000-job grid"};
  int jobs = 2000, repeats = 3;
  std::string keep, page_file;
  app.add_option("--jobs", jobs, "jobs in the grid (two per point)")->capture_default_str();
  app.add_option("--page", page_file, "time this page (e.g. out/demo/index.html) instead of the synthetic grid's");
  app.add_option("--repeats", repeats, "renders timed (the best is printed)")->capture_default_str();
  app.add_option("--keep", keep, "write the page to this folder and keep it");
  CLI11_PARSE(app, argc, argv);

  std::string html;
  if (!page_file.empty()) {
    html = gb::browser::slurp(page_file);
    if (html.empty()) {
      std::fprintf(stderr, "%s: cannot read, or empty\n", page_file.c_str());
      return 1;
    }
  } else {
    gb::dash::GridPage page = make_page(jobs);
    double make_ms = 1e30;
    for (int i = 0; i < repeats; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      html = gb::dash::render_grid_page(page);
      make_ms =
          std::min(make_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("made in %.1f ms (render_grid_page, best of %d)\n", make_ms, repeats);
  }
  const double mb = html.size() / 1e6;
  std::printf("page: %zu bytes (%.2f MB; target < 2 MB: %.2fx of it)\n", html.size(), mb, mb / 2.0);

  const fs::path dir = keep.empty() ? fs::temp_directory_path() / ("gb_dashboard_bench_" + std::to_string(::getpid()))
                                    : fs::path(keep);
  if (auto st = gb::dash::write_page(dir.string(), "index.html", html); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 1;
  }
  const std::string chromium = gb::browser::find_chromium();
  if (chromium.empty()) {
    std::printf("render: chromium not installed; no render time (apt-get install chromium)\n");
  } else {
    const std::string hooked = gb::browser::with_head_script(html, gb::browser::report_hook());
    (void)gb::dash::write_page(dir.string(), "hooked.html", hooked);
    (void)gb::dash::write_page(dir.string(), "empty.html", gb::dash::page_open("empty") + gb::dash::page_close());
    double best_layout = 1e30, best_page = 1e30, best_empty = 1e30;
    size_t errors = 0;
    for (int i = 0; i < repeats; ++i) {
      gb::browser::Run r = gb::browser::run(chromium, gb::browser::dump_dom_args(),
                                            "file://" + (dir / "hooked.html").string(), dir.string());
      std::optional<Json> rep = gb::browser::report_of(r.out);
      if (!rep || !rep->contains("laid_out_ms")) {
        std::printf("render: no report from chromium (%s)\n", r.exit.describe().c_str());
        break;
      }
      best_layout = std::min(best_layout, (*rep)["laid_out_ms"].get<double>());
      errors += (*rep)["errors"].size() + gb::browser::console_lines(r.err).size();
      gb::browser::Run shot = gb::browser::run(
          chromium, {"--hide-scrollbars", "--window-size=1400,2000", "--screenshot=" + (dir / "page.png").string()},
          "file://" + (dir / "index.html").string(), dir.string());
      gb::browser::Run blank = gb::browser::run(
          chromium, {"--hide-scrollbars", "--window-size=1400,2000", "--screenshot=" + (dir / "empty.png").string()},
          "file://" + (dir / "empty.html").string(), dir.string());
      best_page = std::min(best_page, shot.wall_ms);
      best_empty = std::min(best_empty, blank.wall_ms);
    }
    if (best_layout < 1e30) {
      std::printf("render: %.0f ms from navigation to load with layout (target < 2 s: %.2fx of it), %zu errors\n",
                  best_layout, best_layout / 2000, errors);
      std::printf("screenshot: %.0f ms wall, %.0f ms for an empty page: %.0f ms for this page (%.2fx of 2 s)\n",
                  best_page, best_empty, best_page - best_empty, (best_page - best_empty) / 2000);
    }
  }
  if (keep.empty()) fs::remove_all(dir);
  else std::printf("kept: %s\n", (dir / "index.html").c_str());
  return 0;
}

// Headless Chromium for the dashboard's browser test and benchmark: finding the
// browser, running it on a file with a time limit, and a report hook injected
// into a page under test. The hook records every error (uncaught exceptions,
// failed resources, CSP violations, console.error/warn), every resource the page
// fetched, facts about the DOM, and what sorting a table and toggling a legend
// entry did; after load it writes them as JSON into <pre id="gb-test-report">,
// which --dump-dom returns. Chromium's own log of console messages (stderr with
// --enable-logging=stderr) is a second, independent check. Header-only: used by
// tests/dashboard/browser_test.cc and bench/dashboard_bench.cc.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/subprocess.h"

namespace gb::browser {

// $GB_CHROMIUM, else the first of chromium, chromium-browser on PATH; "" when none.
inline std::string find_chromium() {
  if (const char* env = std::getenv("GB_CHROMIUM"); env && *env) return env;
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  std::vector<std::string> dirs;
  while (std::getline(ss, dir, ':')) dirs.push_back(dir);
  for (const char* name : {"chromium", "chromium-browser"}) {
    for (const auto& d : dirs) {
      const std::string p = d + "/" + name;
      if (!d.empty() && ::access(p.c_str(), X_OK) == 0) return p;
    }
  }
  return "";
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Run {
  bool timed_out = false;
  ExitInfo exit;
  std::string out;  // stdout (the DOM with --dump-dom)
  std::string err;  // stderr (chromium's log)
  double wall_ms = 0;
};

// Runs chromium headless on `url` with `args` added, its profile and output files
// in `work_dir`, killed after `timeout_ms`.
inline Run run(const std::string& chromium, const std::vector<std::string>& args, const std::string& url,
               const std::string& work_dir, int timeout_ms = 60000) {
  namespace fs = std::filesystem;
  static int counter = 0;
  const std::string tag = std::to_string(::getpid()) + "_" + std::to_string(counter++);
  const fs::path profile = fs::path(work_dir) / ("profile_" + tag);
  const std::string out = (fs::path(work_dir) / ("chromium_" + tag + ".out")).string();
  const std::string err = (fs::path(work_dir) / ("chromium_" + tag + ".err")).string();
  std::vector<std::string> argv = {chromium,
                                   "--headless",
                                   "--no-sandbox",  // CI runs as root
                                   "--disable-gpu",
                                   "--no-first-run",
                                   "--no-default-browser-check",
                                   "--disable-extensions",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--mute-audio",
                                   "--user-data-dir=" + profile.string(),
                                   "--enable-logging=stderr",
                                   "--v=0"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(url);
  Run r;
  const auto t0 = std::chrono::steady_clock::now();
  Result<pid_t> pid = spawn_process(argv, out, err);
  if (!pid.ok()) {
    r.err = pid.message();
    return r;
  }
  while (true) {
    if (auto e = poll_process(*pid)) {
      r.exit = *e;
      break;
    }
    if (std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(timeout_ms)) {
      r.timed_out = true;
      r.exit = terminate_process(*pid, 1000);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  r.out = slurp(out);
  r.err = slurp(err);
  std::error_code ec;
  fs::remove_all(profile, ec);
  return r;
}

// The lines of chromium's log that report a console message or an uncaught error
// ("...:INFO:CONSOLE(12)] "Uncaught ReferenceError: ...", source: file:///...").
inline std::vector<std::string> console_lines(const std::string& log) {
  std::vector<std::string> out;
  std::stringstream ss(log);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.find(":CONSOLE") != std::string::npos) out.push_back(line);
  }
  return out;
}

// The page with `script` as the first element of its <head>.
inline std::string with_head_script(const std::string& html, const std::string& script) {
  const size_t head = html.find("<head>");
  const std::string tag = "<script>" + script + "</script>\n";
  if (head == std::string::npos) return tag + html;
  return html.substr(0, head + 6) + "\n" + tag + html.substr(head + 6);
}

// The report hook (see the file comment). Its checks of the page's script: the
// first sortable column with numbers in the first sortable table, clicked three
// times, must sort ascending, descending, then restore the order; the first
// legend entry, clicked twice, must dim its lines and show them again.
inline std::string report_hook() {
  return R"js(
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target && e.target !== window && e.target.outerHTML ? " " + e.target.outerHTML.slice(0, 120) : "";
    errors.push("error: " + (e.message || "resource failed") + t);
  }, true);
  window.addEventListener("unhandledrejection", function (e) { errors.push("rejection: " + e.reason); });
  document.addEventListener("securitypolicyviolation", function (e) {
    errors.push("csp: " + e.violatedDirective + " " + e.blockedURI);
  });
  ["error", "warn"].forEach(function (k) {
    var f = console[k];
    console[k] = function () { errors.push(k + ": " + Array.prototype.join.call(arguments, " ")); f.apply(console, arguments); };
  });
  function column(table, col) {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      var c = r.cells[col]; return c && c.getAttribute("data-v") !== null ? parseFloat(c.getAttribute("data-v")) : null;
    });
  }
  function sorted(v, dir) {
    var n = v.filter(function (x) { return x !== null; });
    for (var i = 1; i < n.length; i++) if (dir * (n[i] - n[i - 1]) < 0) return false;
    return n.length > 1;
  }
  function sortCheck() {
    var tables = document.querySelectorAll("table.sortable");
    for (var t = 0; t < tables.length; t++) {
      var ths = tables[t].querySelectorAll("th.sortable");
      for (var h = 0; h < ths.length; h++) {
        var col = parseInt(ths[h].getAttribute("data-col"), 10), before = column(tables[t], col);
        if (before.filter(function (x) { return x !== null; }).length < 3) continue;
        var key = function () { return Array.prototype.map.call(tables[t].tBodies[0].rows, function (r) { return r.textContent; }).join("|"); };
        var original = key();
        ths[h].click();
        var asc = sorted(column(tables[t], col), 1) && ths[h].getAttribute("aria-sort") === "ascending";
        ths[h].click();
        var desc = sorted(column(tables[t], col), -1) && ths[h].getAttribute("aria-sort") === "descending";
        ths[h].click();
        return {column: ths[h].textContent, ascending: asc, descending: desc, restored: key() === original};
      }
    }
    return null;
  }
  function toggleCheck() {
    var lg = document.querySelector("svg.chart .lg[data-s]");
    if (!lg) return null;
    var svg = lg.closest("svg");
    lg.dispatchEvent(new MouseEvent("click", {bubbles: true}));
    var off = svg.querySelectorAll(".off").length;
    lg.dispatchEvent(new MouseEvent("click", {bubbles: true}));
    return {dimmed: off, after: svg.querySelectorAll(".off").length};
  }
  // Synchronously in the load event: --dump-dom serializes right after it, so a
  // report left to a later frame or timer may come too late.
  window.addEventListener("load", function () {
    {
      void document.body.offsetHeight;  // forces style and layout
      var painted = performance.now();
      var svgs = document.querySelectorAll("svg.chart"), drawn = 0, empty = 0;
      svgs.forEach(function (s) {
        var n = s.querySelectorAll("polyline, rect, circle").length;
        drawn += n;
        var box = s.getBoundingClientRect();
        if (n === 0 || box.width < 100 || box.height < 50) empty++;
      });
      var r = {
        laid_out_ms: painted,
        nav: performance.getEntriesByType("navigation").map(function (e) {
          return {dom_content_loaded: e.domContentLoadedEventEnd, load: e.loadEventStart};
        })[0] || null,
        resources: performance.getEntriesByType("resource").map(function (e) { return e.name; }),
        title: document.title,
        h1: (document.querySelector("h1") || {textContent: null}).textContent,
        tables: document.querySelectorAll("table").length,
        table_rows: document.querySelectorAll("tbody tr").length,
        sortable_headers: document.querySelectorAll("th.sortable").length,
        svgs: svgs.length,
        svg_marks: drawn,
        empty_svgs: empty,
        figures: document.querySelectorAll("figure.plot").length,
        links: Array.prototype.map.call(document.querySelectorAll("a[href]"), function (a) { return a.getAttribute("href"); }),
        images: document.querySelectorAll("img, image, iframe, object, embed").length,
        handlers: document.querySelectorAll("[onerror], [onload], [onclick]").length,
        scripts: document.querySelectorAll("script").length,
        js: document.documentElement.classList.contains("js"),
        sort: sortCheck(),
        toggle: toggleCheck()
      };
      r.errors = errors;
      var pre = document.createElement("pre");
      pre.id = "gb-test-report";
      pre.textContent = JSON.stringify(r);
      document.body.appendChild(pre);
    }
  });
})();
)js";
}

// The hook's JSON from a dumped DOM; nullopt when the hook did not report.
inline std::optional<nlohmann::json> report_of(const std::string& dom) {
  const std::string open = "<pre id=\"gb-test-report\">";
  const size_t a = dom.find(open);
  if (a == std::string::npos) return std::nullopt;
  const size_t b = dom.find("</pre>", a);
  if (b == std::string::npos) return std::nullopt;
  std::string text = dom.substr(a + open.size(), b - a - open.size());
  std::string plain;
  for (size_t i = 0; i < text.size(); ++i) {  // the serializer escapes &, <, > and U+00A0 in text
    if (text[i] != '&') {
      plain += text[i];
      continue;
    }
    const size_t semi = text.find(';', i);
    const std::string ent = semi == std::string::npos ? "" : text.substr(i, semi - i + 1);
    if (ent == "&amp;") plain += '&';
    else if (ent == "&lt;") plain += '<';
    else if (ent == "&gt;") plain += '>';
    else if (ent == "&quot;") plain += '"';
    else if (ent == "&nbsp;") plain += "\u00a0";
    else {
      plain += '&';
      continue;
    }
    i = semi;
  }
  nlohmann::json j = nlohmann::json::parse(plain, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// Flags for a DOM dump after the page's timers and frames ran.
inline std::vector<std::string> dump_dom_args() { return {"--virtual-time-budget=10000", "--dump-dom"}; }

}  // namespace gb::browser

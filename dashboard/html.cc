#include "dashboard/html.h"

#include <charconv>
#include <cmath>
#include <ctime>

namespace gb::dash {

namespace {

constexpr std::string_view kCss = R"css(
:root { --fg: #1f2328; --muted: #59636e; --line: #d0d7de; --bg-alt: #f6f8fa; --accent: #4e79a7; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, "DejaVu Sans", sans-serif;
       color: var(--fg); background: #fff; }
main { max-width: 1360px; margin: 0 auto; padding: 24px 28px 48px; }
a { color: #0b5cad; }
h1 { font-size: 26px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
.lead { margin: 0 0 6px; max-width: 900px; }
.source, .crumbs { color: var(--muted); margin: 0 0 12px; }
nav.toc { margin: 8px 0 0; color: var(--muted); }
nav.toc a { margin-right: 14px; }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.stat { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 100px; }
.stat b { display: block; font-size: 20px; }
.stat span { color: var(--muted); font-size: 12px; }
.stat.bad b { color: #c62828; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 10px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.table-wrap { overflow-x: auto; margin: 8px 0 12px; }
.table-wrap.tall { max-height: 640px; overflow: auto; border-bottom: 1px solid var(--line); }
.table-wrap.tall thead { position: sticky; top: 0; z-index: 1; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; white-space: nowrap; }
th { background: var(--bg-alt); text-align: left; font-weight: 600; }
th.group { text-align: center; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.key { font-weight: 500; }
td.wrap { white-space: normal; min-width: 220px; max-width: 520px; }
td.text { text-align: right; color: #b35900; }
td.missing { text-align: center; color: #8c959f; }
td.err { white-space: pre-wrap; overflow-wrap: anywhere; min-width: 320px; max-width: 720px;
         font: 12px/1.35 ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
td.err div { max-height: 9.5em; overflow: auto; }
.delta { color: var(--muted); font-size: 12px; margin-left: 4px; }
.delta.up { color: #1a7f37; }
.delta.down { color: #b3261e; }
.js th.sortable { cursor: pointer; }
.js th.sortable::after { content: " \2195"; color: #8c959f; font-weight: 400; }
th[aria-sort="ascending"]::after { content: " \2191" !important; color: var(--fg) !important; }
th[aria-sort="descending"]::after { content: " \2193" !important; color: var(--fg) !important; }
.state { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; background: #eaeef2; }
.state.succeeded { background: #dafbe1; color: #116329; }
.state.failed, .state.timeout, .state.invalid { background: #ffebe9; color: #a40e26; }
.state.oom { background: #fff1e5; color: #953800; }
.state.running, .state.leased { background: #ddf4ff; color: #0550ae; }
.charts { display: flex; flex-wrap: wrap; gap: 14px 18px; align-items: flex-start; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px 4px; background: #fff; max-width: 100%; overflow-x: auto; }
figcaption { color: var(--muted); font-size: 12px; margin: 2px 4px 4px; max-width: 1260px; }
svg.chart { display: block; font: 11px -apple-system, "Segoe UI", Helvetica, Arial, "DejaVu Sans", sans-serif; }
svg.chart .title { font-size: 13px; font-weight: 600; fill: var(--fg); }
svg.chart .ptitle { font-size: 12px; font-weight: 600; fill: var(--fg); }
svg.chart .sub, svg.chart .tick { fill: var(--muted); }
svg.chart .grid { stroke: #e6e9ed; stroke-width: 1; }
svg.chart .axis { stroke: #8c959f; stroke-width: 1; }
svg.chart .ref { stroke: #59636e; stroke-width: 1; stroke-dasharray: 4 3; }
svg.chart .label, svg.chart .value { fill: var(--fg); }
svg.chart .nonum { fill: #b35900; }
svg.chart .frame { fill: none; stroke: #d0d7de; }
.js svg.chart .lg { cursor: pointer; }
svg.chart .off { opacity: 0.12; }
svg.chart .lg.off { opacity: 0.35; }
.note { color: var(--muted); font-size: 12px; margin: 4px 0; }
details { margin: 12px 0; }
summary { cursor: pointer; }
details pre { background: var(--bg-alt); padding: 10px 12px; border-radius: 6px; overflow-x: auto; }
.empty { color: var(--muted); font-style: italic; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
)css";

// Sorting: a click (or Enter) on a th.sortable sorts its table's body by that
// column: ascending, descending, then the page's order again. Cells with a data-v
// attribute sort as numbers, before text cells; empty cells go last. Toggling: a
// click on a legend entry (.lg[data-s]) dims that line or bar set in its figure.
constexpr std::string_view kScript = R"js(
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function cellKey(td) {
    if (!td) return [2, ""];
    var v = td.getAttribute("data-v");
    if (v !== null && v !== "" && !isNaN(parseFloat(v))) return [0, parseFloat(v)];
    var t = td.textContent.trim();
    return t === "" || t === "\u2013" ? [2, ""] : [1, t.toLowerCase()];
  }
  function compare(a, b) {
    if (a[0] !== b[0]) return a[0] - b[0];
    if (a[0] === 0) return a[1] - b[1];
    return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0];
    if (!body) return;
    var col = parseInt(th.getAttribute("data-col"), 10);
    var next = { none: "ascending", ascending: "descending", descending: "none" }[th.getAttribute("aria-sort") || "none"];
    table.querySelectorAll("th[aria-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      if (next === "none") return a.getAttribute("data-i") - b.getAttribute("data-i");
      var c = compare(cellKey(a.cells[col]), cellKey(b.cells[col]));
      if (next === "descending" && cellKey(a.cells[col])[0] === cellKey(b.cells[col])[0]) c = -c;
      return c || a.getAttribute("data-i") - b.getAttribute("data-i");
    });
    rows.forEach(function (r) { body.appendChild(r); });
    if (next !== "none") th.setAttribute("aria-sort", next);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tBodies[0] ? table.tBodies[0].rows : [], function (r, i) { r.setAttribute("data-i", i); });
    table.querySelectorAll("th.sortable").forEach(function (th) {
      th.tabIndex = 0;
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortBy(th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(th); });
    });
  });
  document.querySelectorAll("svg.chart .lg[data-s]").forEach(function (lg) {
    lg.addEventListener("click", function () {
      var svg = lg.closest("svg"), s = lg.getAttribute("data-s"), off = !lg.classList.contains("off");
      svg.querySelectorAll('[data-s="' + s + '"]').forEach(function (el) { el.classList.toggle("off", off); });
    });
  });
})();
)js";

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string_view page_script() { return kScript; }
std::string_view page_css() { return kCss; }

std::string page_open(std::string_view title) {
  std::string out;
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  // Nothing may load from anywhere: the page is one self-contained file.
  out += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
         "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + html_escape(title) + "</title>\n<style>";
  out += kCss;
  out += "</style>\n</head>\n<body>\n<main>\n";
  return out;
}

std::string page_close() {
  std::string out;
  out += "<footer>Generated by gridbench: one static file, nothing loaded from the network. "
         "The tables sort when you click a column header; a plot's legend entries hide and show "
         "their lines.</footer>\n</main>\n<script>";
  out += kScript;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

std::string capped_note(size_t shown, size_t total, std::string_view rows_name,
                        std::initializer_list<std::string_view> files) {
  std::string out = "<p class=\"note capped\">The first " + std::to_string(shown) + " of " + std::to_string(total) +
                    " " + html_escape(rows_name) + "; all of them: ";
  bool first = true;
  for (std::string_view f : files) {
    out += (first ? "" : ", ") + std::string("<a href=\"") + html_escape(f) + "\">" + html_escape(f) + "</a>";
    first = false;
  }
  return out + ".</p>\n";
}

std::string format_time_ms(int64_t ms) {
  if (ms <= 0) return "";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::string sort_value(double v) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace gb::dash

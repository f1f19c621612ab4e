// What a report section asks the dashboard to draw: its `plots` key, validated
// with the rest of the grid file (coordinator/grid/grid.cc calls parse_plot_specs).
// This file knows the keys and checks names against the job-kind registry; it
// does not draw (dashboard/plots/ does) and cannot check metric or series names,
// which only results carry (the dashboard says on the page when one has no data).
//
//   "plots": [
//     {"kind": "lines", "series": "decode_latency", "panel": "model", "color": "weight_format"},
//     {"kind": "lines", "x": "batch_size", "y": "kv_allocated_bytes", "color": "kv_format"},
//     {"kind": "bars", "y": "decode_W_measured", "over": "decode_W_tokens_per_ms"},
//     {"kind": "scatter", "x": "weight_bits", "y": "ppl", "color": "kv_format"}
//   ]
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gb::coord {

enum class PlotKind { kLines, kBars, kScatter };

struct PlotSpec {
  PlotKind kind = PlotKind::kLines;
  std::string title;                 // "" : made from what the plot shows
  // lines: the series of these names (one line per job), or else y against x.
  std::vector<std::string> series;
  std::string x;                     // lines, scatter: a job parameter or a metric
  std::string y;                     // a metric (lines without series, bars, scatter)
  std::string over;                  // lines, bars: y is drawn divided by this metric
  std::vector<std::string> group;    // bars: parameters of a bar group (default: the report's rows)
  std::string color;                 // a parameter: one colour per value (bars: default the pivot)
  std::string panel;                 // lines, scatter: one panel per value (lines: default model)
  std::vector<std::string> measure;  // job kinds drawn (default: the report's kind, else all)
  nlohmann::json filter = nlohmann::json::object();  // parameter values the jobs must match
  int share_y = -1;                  // lines: 1 one y scale for all panels, 0 one each, -1 auto
};

std::string_view plot_kind_name(PlotKind k);

struct PlotSpecError {
  std::string path;  // JSON path, e.g. "$.report[1].plots[0].color"
  std::string what;
};

// Parses `plots` (an array of plot objects) found at JSON path `path`. `measures`
// are the grid's job kinds (a plot's `measure` must be one of them). Appends the
// valid plots to `out` and returns every problem found.
std::vector<PlotSpecError> parse_plot_specs(const nlohmann::ordered_json& plots, const std::string& path,
                                            const std::vector<std::string>& measures,
                                            std::vector<PlotSpec>& out);

}  // namespace gb::coord

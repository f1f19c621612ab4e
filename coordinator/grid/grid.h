// Grid files (JSON or YAML) -> validated, expanded jobs. Expansion is
// deterministic: the cross product of the axes in file order (first axis
// outermost), minus `exclude`, plus `include`, then each point times each
// measure (the job kind), projected onto the parameters that kind takes, times
// `repeats` (not for theory-only kinds). Each job's hash is content_hash of
// {"kind", "params"} plus "repeat" when it is > 0, so that a grid extended by one
// axis value, one measure or more repeats keeps the hashes it had.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/json_parse.h"
#include "common/status.h"
#include "coordinator/plot_spec.h"

namespace gb::engine {
struct JobKind;
}  // namespace gb::engine

namespace gb::coord {

using Json = nlohmann::json;

struct GridJob {
  std::string hash;
  std::string kind;
  Json params;  // projected onto the kind's parameters, normalized
  int repeat = 0;
};

struct ReportColumn {
  std::string metric;  // a metric name, or a parameter name
  std::string label;   // header text; defaults to the metric name
  int digits = -1;     // decimals to print; -1: automatic
  double scale = 1;    // value is divided by this before printing
  std::string suffix;  // appended to printed numbers, e.g. "B" or "ms"
  bool truncate = false;  // floor instead of round (lengths in reference 003)
  // With repeats, the spread printed after the mean: "sd" (" ± standard deviation")
  // or "range" (" [min, max]"); empty: the mean alone.
  std::string spread;
  // Only the jobs whose parameters match all of these fill this column (on top of
  // the report's own filter), so one table can show a metric twice, e.g. ppl on two
  // datasets, or metrics of several kinds side by side (reference 001's layout).
  Json filter = Json::object();
  // A derived cell, against the value found where the parameters given here
  // replace the cell's own (its column filter, row or pivot values), e.g.
  // {"kv_format": "f16"}: `minus` prints the difference (reference 002's "diff"),
  // `over` the ratio (004's "FP8/INT8 Ratio"), `vs` the change in percent (004's
  // "vs BF16"). At most one of the three; empty objects: a plain column.
  Json minus = Json::object();
  Json over = Json::object();
  Json vs = Json::object();
  const Json& against() const { return !minus.empty() ? minus : !over.empty() ? over : vs; }
  // A plain column (no spread, filter or comparison) from its printing fields.
  static ReportColumn plain(std::string metric, std::string label = "", int digits = -1, double scale = 1,
                            std::string suffix = "", bool truncate = false) {
    ReportColumn c;
    c.metric = std::move(metric);
    c.label = std::move(label);
    c.digits = digits;
    c.scale = scale;
    c.suffix = std::move(suffix);
    c.truncate = truncate;
    return c;
  }
};

struct ReportSpec {
  std::string title;
  std::string kind;                  // only jobs of this kind (empty: all)
  std::vector<std::string> rows;     // parameters that identify a row
  std::string pivot;                 // optional parameter spread across column groups
  std::vector<ReportColumn> columns;
  Json filter = Json::object();      // only points whose parameters match all of these
  Json baseline = nullptr;           // parameter values of the baseline row, or null
  // What the dashboard draws for this section (coordinator/plot_spec.h); without a
  // `plots` key (plots_given false) it draws its defaults.
  std::vector<PlotSpec> plots;
  bool plots_given = false;
  // Parameters the report averages over explicitly (each cell is then the mean of
  // the jobs that differ only in these, and of their repeats); see report_check.h.
  std::vector<std::string> average_over;
};

struct Grid {
  std::string name;
  std::string source;       // the file it came from
  nlohmann::ordered_json spec;  // the file's content as JSON, in file order
  std::vector<std::string> axis_names;
  std::vector<std::string> measures;
  // Per measure: its own parameters ({"kind": "mc_accuracy", "dataset": "mmlu:..."}),
  // which replace the point's for that kind's jobs; empty objects for plain names.
  std::vector<Json> measure_params;
  int repeats = 1;
  std::vector<Json> points; // full parameter sets (axes + fixed), in expansion order
  std::vector<GridJob> jobs;
  std::vector<ReportSpec> reports;
  // What load_grid could not check here and says so (an unset ${VAR}); the CLI
  // prints each line to stderr.
  std::vector<std::string> warnings;
};

// Reads, validates and expands a grid file; YAML for .yaml/.yml, else JSON.
// Every error line reads "FILE: $.json.path: what was expected".
Result<Grid> load_grid(const std::string& path);

// The same on an already-parsed document (ordered, so axis order is the file's).
Result<Grid> parse_grid(const nlohmann::ordered_json& doc, const std::string& source);

// The jobs of `points` x `kinds` x `repeats`, in that nesting order (theory-only
// kinds once, repeat 0), each projected onto its kind's parameters and normalized,
// deduplicated by hash (first kept): the last step of parse_grid.
// measure_params[m]: the parameters of kinds[m]'s own (the grid's {"kind": ..., PARAM:
// VALUE} measure entries), which replace the point's; `inputs` (coordinator/grid/grid_inputs.h)
// applied to each job. A job with kv_calibration "job:KIND" names the job of kind
// KIND at the same point: the value becomes "job:HASH" (that job's hash), so that
// the dependent's hash covers its dependency's; it is left out of jobs whose KV
// format is not int8-calib.
std::vector<GridJob> expand_jobs(const std::vector<Json>& points,
                                 const std::vector<const engine::JobKind*>& kinds, int repeats,
                                 const std::vector<Json>& measure_params = {},
                                 const nlohmann::ordered_json* inputs = nullptr);

// Reads a grid file into JSON without validating it: YAML for .yaml/.yml (see
// coordinator/grid/grid_yaml.h), else JSON. Errors: "FILE: cannot read: REASON",
// "FILE: line L column C: WHAT" for a syntax error, "FILE: $.path: duplicate key".
Result<nlohmann::ordered_json> read_grid_document(const std::string& path);

// A grid document's text -> JSON: YAML when `source` ends in .yaml/.yml, JSON when
// it ends in .json, otherwise JSON when the text starts with '{' and YAML else.
// Errors as read_grid_document's ("SOURCE: line L column C: ...").
Result<nlohmann::ordered_json> parse_grid_document(const std::string& text, const std::string& source);
// parse_grid_document then parse_grid: what the coordinator does with a submitted
// grid's text.
Result<Grid> parse_grid_text(const std::string& text, const std::string& source);

// JSON paths as error messages write them (common/json_parse.h).
using gb::json_path_index;
using gb::json_path_key;

// What a grid's JSON or YAML may be: at most 16 MiB, nested at most 64 deep,
// numbers within the range of a double, no duplicate keys.
JsonLimits grid_json_limits();

}  // namespace gb::coord

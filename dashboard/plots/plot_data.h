// What plots draw from and how they group it: the grid's jobs (theory or
// measured), their current results and series; the jobs a plot selects (job
// kinds and parameter values); results grouped into cells by parameter values,
// with each metric's mean. No drawing (the *_plot files) and no choice of what to
// draw (plot_build).
//
// A parameter separates plotted jobs only where it takes two or more values among
// them (varying_params): a roofline job's fixed `device` and a ppl job's fixed
// `dataset` do not keep a cell from holding both jobs' metrics, so a scatter of
// the roofline's weight_bits against the ppl job's ppl pairs them by model and format.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/grid/grid.h"
#include "coordinator/store/job_store.h"
#include "engine/jobs/job_output.h"

namespace gb::dash {
// Series of each job's current result, by job hash.
using SeriesByJob = std::map<std::string, std::vector<engine::Series>>;
}  // namespace gb::dash

namespace gb::dash::plots {

using Json = nlohmann::json;

struct PlotJob {
  std::string hash;
  std::string kind;
  Json params = Json::object();
  int repeat = 0;
  bool theory = false;  // its kind is theory-only (the roofline): drawn dashed beside measurements
};

struct PlotSource {
  std::vector<std::string> axis_names;
  std::vector<PlotJob> jobs;               // the grid's, then those known only from results
  std::map<std::string, size_t> job_index;  // hash -> jobs[i]
  const std::vector<coord::ResultRow>* results = nullptr;
  const SeriesByJob* series = nullptr;
  const PlotJob* job(const std::string& hash) const;
};
PlotSource make_plot_source(const coord::Grid& grid, const std::vector<coord::ResultRow>& results,
                            const SeriesByJob& series);

// The jobs a plot draws: of these kinds (empty: any) whose parameters match
// `filter` (a list value: any of its values).
struct Selection {
  std::vector<std::string> kinds;
  Json filter = Json::object();
};
bool selects(const Selection& s, const std::string& kind, const Json& params);

struct Stat {
  double sum = 0;
  int n = 0;
  std::string unit;
  std::string text;  // the first text of a value-less metric ("oom")
  std::optional<double> mean() const;
};

struct Cell {
  std::vector<Json> key;  // values of the grouping parameters (null: absent)
  SharedJson params;      // parameters of the cell's first result (shared with its rows)
  std::map<std::string, Stat> metrics;
  std::vector<std::string> hashes;  // distinct jobs, in order
  bool theory = true;               // every job in it is theory-only
};

// The selected results grouped by the values of `keys`, one cell per distinct
// key in order of first appearance. With `by_theory`, results of theory-only and
// of measured jobs never share a cell (a line of each). With `metrics`, only the
// rows of those metrics count (a plot of one metric over 20,000 jobs of 19 each
// need not gather the other 18); empty: all.
std::vector<Cell> make_cells(const PlotSource& src, const Selection& sel, const std::vector<std::string>& keys,
                             bool by_theory = false, const std::vector<std::string>& metrics = {});

// Distinct parameter objects of the selected results (of those whose metric is
// one of `metrics`, when not empty), or of the selected jobs that have a series
// named in `series_names`.
std::vector<Json> selected_params(const PlotSource& src, const Selection& sel,
                                  const std::vector<std::string>& metrics = {});
std::vector<Json> selected_series_params(const PlotSource& src, const Selection& sel,
                                         const std::vector<std::string>& series_names);
// Metric names of the selected results / series names of the selected jobs, in order.
std::vector<std::string> metric_names(const PlotSource& src, const Selection& sel);
std::vector<std::string> series_names(const PlotSource& src, const Selection& sel);

// Parameters with two or more distinct values among `params`: the grid's axes in
// order, then the others by name; less `except`.
std::vector<std::string> varying_params(const std::vector<Json>& params, const std::vector<std::string>& axis_names,
                                        const std::vector<std::string>& except = {});

// The parameters every one of `params` has (so that they can pair results of
// different job kinds: a ppl job has no batch_size, a roofline job no dataset).
std::vector<std::string> common_params(const std::vector<Json>& params);
std::vector<std::string> intersect(const std::vector<std::string>& a, const std::vector<std::string>& b);

Json param_value(const Json& params, const std::string& name);
// The values of `names` in `params` as a label: "qwen1.5-7b · f16" ("–" for an absent one).
std::string values_label(const Json& params, const std::vector<std::string>& names, const char* sep = " \u00b7 ");
// "model=qwen1.5-7b, device=rtx4090" for hover texts.
std::string params_tip(const Json& params, const std::vector<std::string>& names);

// A job parameter's name (else a metric's).
bool is_param(const std::string& name);
// The number `name` stands for in a cell: a numeric parameter, else a metric's mean.
std::optional<double> cell_value(const Cell& c, const std::string& name);

}  // namespace gb::dash::plots

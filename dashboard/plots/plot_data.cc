#include "dashboard/plots/plot_data.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "common/json_util.h"
#include "coordinator/report.h"
#include "engine/jobs/job_kinds.h"

namespace gb::dash::plots {

namespace {

bool theory_kind(const std::string& kind) {
  const engine::JobKind* k = engine::find_job_kind(kind);
  return k != nullptr && k->theory_only;
}

bool add_job(PlotSource& s, const std::string& hash, const std::string& kind, const Json& params, int repeat) {
  if (s.job_index.count(hash)) return false;
  s.job_index[hash] = s.jobs.size();
  s.jobs.push_back(PlotJob{hash, kind, params.is_object() ? params : Json::object(), repeat, theory_kind(kind)});
  return true;
}

std::vector<Json> distinct(std::vector<Json> v) {
  std::set<std::string> seen;
  std::vector<Json> out;
  for (auto& p : v) {
    if (seen.insert(canonical_json(p)).second) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

const PlotJob* PlotSource::job(const std::string& hash) const {
  auto it = job_index.find(hash);
  return it == job_index.end() ? nullptr : &jobs[it->second];
}

PlotSource make_plot_source(const coord::Grid& grid, const std::vector<coord::ResultRow>& results,
                            const SeriesByJob& series) {
  PlotSource s;
  s.axis_names = grid.axis_names;
  for (const auto& j : grid.jobs) add_job(s, j.hash, j.kind, j.params, j.repeat);
  const std::string* last = nullptr;
  for (const auto& r : results) {
    if (last == nullptr || *last != r.hash) add_job(s, r.hash, r.kind, r.params, r.repeat);  // once per run of rows
    last = &r.hash;
  }
  for (const auto& [h, v] : series) add_job(s, h, "", Json::object(), 0);
  s.results = &results;
  s.series = &series;
  return s;
}

bool selects(const Selection& s, const std::string& kind, const Json& params) {
  if (!s.kinds.empty() && std::find(s.kinds.begin(), s.kinds.end(), kind) == s.kinds.end()) return false;
  if (!s.filter.is_object()) return true;
  for (auto it = s.filter.begin(); it != s.filter.end(); ++it) {
    if (!params.is_object() || !params.contains(it.key())) return false;
    const Json& have = params.at(it.key());
    if (it.value().is_array()) {
      if (std::none_of(it.value().begin(), it.value().end(), [&](const Json& w) { return w == have; })) return false;
    } else if (have != it.value()) {
      return false;
    }
  }
  return true;
}

std::optional<double> Stat::mean() const {
  if (n == 0) return std::nullopt;
  return sum / n;
}

Json param_value(const Json& params, const std::string& name) {
  if (params.is_object()) {
    auto it = params.find(name);
    if (it != params.end()) return *it;
  }
  return nullptr;
}

std::vector<Cell> make_cells(const PlotSource& src, const Selection& sel, const std::vector<std::string>& keys,
                             bool by_theory, const std::vector<std::string>& metrics) {
  std::vector<Cell> cells;
  if (!src.results) return cells;
  // Once per params value (the result rows of a job share one): whether the
  // selection's filter takes it and the id of its cell without the theory mark.
  Selection filter_only = sel;
  filter_only.kinds.clear();
  struct ParamsKey {
    bool selected = false;
    Json key;
    std::string id;
  };
  std::unordered_map<const Json*, ParamsKey> memo;
  std::unordered_map<std::string, size_t> index;
  std::vector<std::unordered_set<std::string_view>> hashes_of;  // each cell's distinct jobs
  const std::string* last_hash = nullptr;
  const Json* last_params = nullptr;
  size_t last_cell = 0;
  for (const auto& r : *src.results) {
    if (!sel.kinds.empty() && std::find(sel.kinds.begin(), sel.kinds.end(), r.kind) == sel.kinds.end()) continue;
    if (!metrics.empty() && std::find(metrics.begin(), metrics.end(), r.metric) == metrics.end()) continue;
    const Json& params = r.params;
    auto [mit, fresh_key] = memo.try_emplace(&params);
    ParamsKey& pk = mit->second;
    if (fresh_key) {
      pk.selected = selects(filter_only, r.kind, params);
      if (pk.selected) {
        pk.key = Json::array();
        for (const auto& k : keys) pk.key.push_back(param_value(params, k));
        pk.id = canonical_json(pk.key);
      }
    }
    if (!pk.selected) continue;
    size_t ci = 0;
    if (last_hash != nullptr && *last_hash == r.hash && last_params == &params) {
      ci = last_cell;  // the next row of the same job: its cell
    } else {
      std::string id = pk.id;
      if (by_theory) {
        const PlotJob* j = src.job(r.hash);
        id += (j ? j->theory : theory_kind(r.kind)) ? "T" : "M";
      }
      auto [it, fresh] = index.emplace(std::move(id), cells.size());
      if (fresh) {
        Cell c;
        for (const auto& v : pk.key) c.key.push_back(v);
        c.params = r.params;
        cells.push_back(std::move(c));
        hashes_of.emplace_back();
      }
      ci = it->second;
      if (hashes_of[ci].insert(r.hash).second) {
        cells[ci].hashes.push_back(r.hash);
        const PlotJob* j = src.job(r.hash);
        cells[ci].theory = cells[ci].theory && (j ? j->theory : theory_kind(r.kind));
      }
      last_hash = &r.hash;
      last_params = &params;
      last_cell = ci;
    }
    Cell& c = cells[ci];
    Stat& st = c.metrics[r.metric];
    if (r.value) {
      st.sum += *r.value;
      ++st.n;
    } else if (st.text.empty()) {
      st.text = r.text;
    }
    if (st.unit.empty()) st.unit = r.unit;
  }
  return cells;
}

std::vector<Json> selected_params(const PlotSource& src, const Selection& sel,
                                  const std::vector<std::string>& metrics) {
  std::vector<Json> out;
  if (!src.results) return out;
  std::unordered_set<const Json*> seen;  // the rows of one job share its params
  for (const auto& r : *src.results) {
    if (!metrics.empty() && std::find(metrics.begin(), metrics.end(), r.metric) == metrics.end()) continue;
    const Json& params = r.params;
    if (seen.count(&params) && !params.is_null()) continue;
    if (!selects(sel, r.kind, params)) continue;
    seen.insert(&params);
    out.push_back(params);
  }
  return distinct(std::move(out));
}

std::vector<std::string> common_params(const std::vector<Json>& params) {
  std::vector<std::string> out;
  if (params.empty() || !params.front().is_object()) return out;
  for (auto it = params.front().begin(); it != params.front().end(); ++it) {
    if (std::all_of(params.begin(), params.end(), [&](const Json& p) { return p.is_object() && p.contains(it.key()); }))
      out.push_back(it.key());
  }
  return out;
}

std::vector<std::string> intersect(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> out;
  for (const auto& s : a)
    if (std::find(b.begin(), b.end(), s) != b.end()) out.push_back(s);
  return out;
}

std::vector<Json> selected_series_params(const PlotSource& src, const Selection& sel,
                                         const std::vector<std::string>& names) {
  std::vector<Json> out;
  if (!src.series) return out;
  for (const auto& j : src.jobs) {
    auto it = src.series->find(j.hash);
    if (it == src.series->end() || !selects(sel, j.kind, j.params)) continue;
    for (const auto& s : it->second) {
      if (std::find(names.begin(), names.end(), s.name) != names.end()) {
        out.push_back(j.params);
        break;
      }
    }
  }
  return distinct(std::move(out));
}

std::vector<std::string> metric_names(const PlotSource& src, const Selection& sel) {
  std::vector<std::string> out;
  if (!src.results) return out;
  std::set<std::string> seen;
  for (const auto& r : *src.results)
    if (selects(sel, r.kind, r.params) && seen.insert(r.metric).second) out.push_back(r.metric);
  return out;
}

std::vector<std::string> series_names(const PlotSource& src, const Selection& sel) {
  std::vector<std::string> out;
  if (!src.series) return out;
  std::set<std::string> seen;
  for (const auto& j : src.jobs) {
    auto it = src.series->find(j.hash);
    if (it == src.series->end() || !selects(sel, j.kind, j.params)) continue;
    for (const auto& s : it->second)
      if (seen.insert(s.name).second) out.push_back(s.name);
  }
  return out;
}

std::vector<std::string> varying_params(const std::vector<Json>& params, const std::vector<std::string>& axis_names,
                                        const std::vector<std::string>& except) {
  std::vector<std::string> names = axis_names;
  std::set<std::string> others;
  for (const auto& p : params) {
    if (!p.is_object()) continue;
    for (auto it = p.begin(); it != p.end(); ++it) {
      if (std::find(names.begin(), names.end(), it.key()) == names.end()) others.insert(it.key());
    }
  }
  names.insert(names.end(), others.begin(), others.end());
  std::vector<std::string> out;
  for (const auto& n : names) {
    if (std::find(except.begin(), except.end(), n) != except.end()) continue;
    std::set<std::string> values;
    for (const auto& p : params) {
      if (p.is_object() && p.contains(n)) values.insert(canonical_json(p.at(n)));
    }
    if (values.size() >= 2) out.push_back(n);
  }
  return out;
}

std::string values_label(const Json& params, const std::vector<std::string>& names, const char* sep) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    const Json v = param_value(params, names[i]);
    out += (i ? sep : "") + (v.is_null() ? std::string("\u2013") : coord::param_text(v));
  }
  return out;
}

std::string params_tip(const Json& params, const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    const Json v = param_value(params, n);
    if (v.is_null()) continue;
    out += (out.empty() ? "" : ", ") + n + "=" + coord::param_text(v);
  }
  return out;
}

bool is_param(const std::string& name) { return engine::find_param(name) != nullptr; }

std::optional<double> cell_value(const Cell& c, const std::string& name) {
  if (is_param(name)) {
    const Json v = param_value(c.params, name);
    if (v.is_number()) return v.get<double>();
  }
  auto it = c.metrics.find(name);
  if (it != c.metrics.end()) return it->second.mean();
  return std::nullopt;
}

}  // namespace gb::dash::plots

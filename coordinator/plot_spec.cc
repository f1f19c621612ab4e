#include "coordinator/plot_spec.h"

#include <algorithm>

#include "common/json_util.h"
#include "common/strings.h"
#include "coordinator/grid/grid.h"
#include "engine/jobs/job_kinds.h"

namespace gb::coord {
namespace {

using OJson = nlohmann::ordered_json;

std::string got_value(const OJson& v) {
  if (v.is_string()) {
    std::string s = v.dump();
    return "got the string " + (s.size() > 60 ? s.substr(0, 57) + "..." : s);
  }
  if (v.is_array()) return v.empty() ? "got an empty array" : "got an array";
  if (v.is_object()) return v.empty() ? "got an empty object" : "got an object";
  if (v.is_null()) return "got null";
  return "got " + v.dump();
}

std::string param_list() {
  std::vector<std::string> names;
  for (const auto& p : engine::job_params()) names.push_back(p.name);
  return join(names);
}

std::string kind_list() {
  std::vector<std::string> names;
  for (const auto& k : engine::job_kinds()) names.push_back(k.name);
  return join(names);
}

struct KindKeys {
  PlotKind kind;
  const char* name;
  std::vector<std::string> keys;
};

const std::vector<KindKeys>& kinds() {
  static const std::vector<KindKeys> k = {
      {PlotKind::kLines, "lines",
       {"kind", "title", "series", "x", "y", "over", "panel", "color", "measure", "filter", "share_y"}},
      {PlotKind::kBars, "bars", {"kind", "title", "y", "over", "group", "color", "measure", "filter"}},
      {PlotKind::kScatter, "scatter", {"kind", "title", "x", "y", "panel", "color", "measure", "filter"}},
  };
  return k;
}

class Parser {
 public:
  Parser(std::vector<PlotSpecError>& errs, const std::vector<std::string>& measures)
      : errs_(errs), measures_(measures) {}

  void add(const std::string& path, const std::string& what) { errs_.push_back({path, what}); }

  // A metric (or parameter) name: any non-empty string.
  bool name(const OJson& obj, const char* key, const std::string& path, std::string& out) {
    auto f = obj.find(key);
    if (f == obj.end()) return false;
    if (!f->is_string() || f->get<std::string>().empty()) {
      add(json_path_key(path, key), "expected a metric or parameter name, " + got_value(*f));
      return false;
    }
    out = f->get<std::string>();
    return true;
  }

  bool param_name(const OJson& v, const std::string& path, std::string& out) {
    if (!v.is_string()) {
      add(path, "expected a job parameter name, " + got_value(v));
      return false;
    }
    const std::string n = v.get<std::string>();
    if (!engine::find_param(n)) {
      add(path, "unknown job parameter '" + n + "' (known: " + param_list() + ")");
      return false;
    }
    out = n;
    return true;
  }

  void param(const OJson& obj, const char* key, const std::string& path, std::string& out) {
    if (auto f = obj.find(key); f != obj.end()) param_name(*f, json_path_key(path, key), out);
  }

  // A string or a non-empty array of strings.
  void strings(const OJson& obj, const char* key, const std::string& path, std::vector<std::string>& out,
               const char* what, bool params) {
    auto f = obj.find(key);
    if (f == obj.end()) return;
    const std::string p = json_path_key(path, key);
    std::vector<std::pair<std::string, const OJson*>> items;
    if (f->is_array() && !f->empty()) {
      for (size_t i = 0; i < f->size(); ++i) items.emplace_back(json_path_index(p, i), &(*f)[i]);
    } else if (f->is_string()) {
      items.emplace_back(p, &*f);
    } else {
      add(p, std::string("expected ") + what + " or a non-empty array of them, " + got_value(*f));
      return;
    }
    for (const auto& [ip, v] : items) {
      std::string s;
      if (params) {
        if (!param_name(*v, ip, s)) continue;
      } else if (!v->is_string() || v->get<std::string>().empty()) {
        add(ip, std::string("expected ") + what + ", " + got_value(*v));
        continue;
      } else {
        s = v->get<std::string>();
      }
      if (std::find(out.begin(), out.end(), s) != out.end()) {
        add(ip, "duplicate name '" + s + "'");
        continue;
      }
      out.push_back(s);
    }
  }

  void measure(const OJson& obj, const std::string& path, std::vector<std::string>& out) {
    auto f = obj.find("measure");
    if (f == obj.end()) return;
    std::vector<std::string> names;
    strings(obj, "measure", path, names, "a job kind name", false);
    const std::string p = json_path_key(path, "measure");
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string ip = f->is_array() ? json_path_index(p, i) : p;
      if (!engine::find_job_kind(names[i])) {
        add(ip, "unknown job kind '" + names[i] + "' (known: " + kind_list() + ")");
      } else if (!measures_.empty() && std::find(measures_.begin(), measures_.end(), names[i]) == measures_.end()) {
        add(ip, "job kind '" + names[i] + "' is not measured by this grid (measure: " + join(measures_) + ")");
      } else {
        out.push_back(names[i]);
      }
    }
  }

  void filter(const OJson& obj, const std::string& path, nlohmann::json& out) {
    auto f = obj.find("filter");
    if (f == obj.end()) return;
    const std::string p = json_path_key(path, "filter");
    if (!f->is_object()) {
      add(p, "expected an object of job parameters, " + got_value(*f));
      return;
    }
    nlohmann::json j = nlohmann::json::object();
    for (auto it = f->begin(); it != f->end(); ++it) {
      const std::string kp = json_path_key(p, it.key());
      if (!engine::find_param(it.key())) {
        add(kp, "unknown job parameter '" + it.key() + "' (known: " + param_list() + ")");
        continue;
      }
      nlohmann::json v = nlohmann::json::parse(it.value().dump());
      // A list means any of its values (as in a report's filter).
      for (const auto& one : v.is_array() ? v : nlohmann::json::array({v})) {
        if (auto e = engine::check_param(it.key(), one)) add(kp, *e);
      }
      j[it.key()] = v;
    }
    out = normalize_json(j);
  }

  void plot(const OJson& v, const std::string& path, std::vector<PlotSpec>& out) {
    if (!v.is_object()) {
      add(path, "expected a plot object {kind, ...}, " + got_value(v));
      return;
    }
    std::vector<std::string> kind_names;
    for (const auto& k : kinds()) kind_names.push_back(k.name);
    auto kf = v.find("kind");
    if (kf == v.end()) {
      add(path, "missing required key 'kind' (one of: " + join(kind_names) + ")");
      return;
    }
    const KindKeys* kk = nullptr;
    for (const auto& k : kinds()) {
      if (kf->is_string() && kf->get<std::string>() == k.name) kk = &k;
    }
    if (!kk) {
      add(path + ".kind", "unknown plot kind (expected one of: " + join(kind_names) + "), " + got_value(*kf));
      return;
    }
    const size_t errors_before = errs_.size();
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (std::find(kk->keys.begin(), kk->keys.end(), it.key()) == kk->keys.end()) {
        add(json_path_key(path, it.key()),
            "unknown key for a " + std::string(kk->name) + " plot (expected one of: " + join(kk->keys) + ")");
      }
    }
    PlotSpec s;
    s.kind = kk->kind;
    if (auto f = v.find("title"); f != v.end()) {
      if (f->is_string()) s.title = f->get<std::string>();
      else add(path + ".title", "expected a string, " + got_value(*f));
    }
    strings(v, "series", path, s.series, "a series name", false);
    name(v, "x", path, s.x);
    name(v, "y", path, s.y);
    name(v, "over", path, s.over);
    strings(v, "group", path, s.group, "a job parameter name", true);
    param(v, "color", path, s.color);
    param(v, "panel", path, s.panel);
    measure(v, path, s.measure);
    filter(v, path, s.filter);
    if (auto f = v.find("share_y"); f != v.end()) {
      if (f->is_boolean()) s.share_y = f->get<bool>() ? 1 : 0;
      else add(path + ".share_y", "expected true or false, " + got_value(*f));
    }

    // What each kind needs.
    switch (s.kind) {
      case PlotKind::kLines:
        if (!s.series.empty() && (v.contains("x") || v.contains("y") || v.contains("over"))) {
          add(path, "a lines plot draws either 'series' or 'y' against 'x', not both");
        } else if (s.series.empty() && !v.contains("series") && (!v.contains("x") || !v.contains("y"))) {
          add(path, "a lines plot needs 'series' (series names) or both 'x' (a parameter or metric) and 'y' (a metric)");
        }
        break;
      case PlotKind::kBars:
        if (!v.contains("y")) add(path, "missing required key 'y' (the metric the bars show)");
        if (!s.color.empty() && std::find(s.group.begin(), s.group.end(), s.color) != s.group.end())
          add(path + ".color", "'" + s.color + "' is also in 'group'; expected another parameter");
        break;
      case PlotKind::kScatter:
        if (!v.contains("x") || !v.contains("y"))
          add(path, "a scatter plot needs both 'x' and 'y' (parameter or metric names)");
        break;
    }
    if (!s.color.empty() && s.color == s.panel) {
      add(path + ".panel", "'" + s.panel + "' is also the 'color'; expected another parameter");
    }
    if (errs_.size() == errors_before) out.push_back(std::move(s));
  }

 private:
  std::vector<PlotSpecError>& errs_;
  const std::vector<std::string>& measures_;
};

}  // namespace

std::string_view plot_kind_name(PlotKind k) {
  for (const auto& kk : kinds())
    if (kk.kind == k) return kk.name;
  return "lines";
}

std::vector<PlotSpecError> parse_plot_specs(const nlohmann::ordered_json& plots, const std::string& path,
                                            const std::vector<std::string>& measures,
                                            std::vector<PlotSpec>& out) {
  std::vector<PlotSpecError> errs;
  Parser p(errs, measures);
  if (!plots.is_array()) {
    p.add(path, "expected an array of plot objects ([] for none), " + got_value(plots));
    return errs;
  }
  for (size_t i = 0; i < plots.size(); ++i) p.plot(plots[i], json_path_index(path, i), out);
  return errs;
}

}  // namespace gb::coord

#include "coordinator/grid/grid.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/json_parse.h"
#include "common/json_util.h"
#include "common/strings.h"
#include "coordinator/grid/grid_inputs.h"
#include "coordinator/grid/grid_job_refs.h"
#include "coordinator/grid/grid_support.h"
#include "coordinator/grid/grid_yaml.h"
#include "coordinator/report_check.h"
#include "engine/jobs/job_kinds.h"

namespace gb::coord {
namespace {

using OJson = nlohmann::ordered_json;

constexpr size_t kMaxErrors = 50;
constexpr size_t kMaxPoints = 100000;
// Jobs per grid: points x (1 per theory-only kind + repeats per other kind), checked
// from the axes' sizes before anything is expanded (a grid of 100,000 points with
// repeats 1000 would otherwise expand to 10^8 jobs and exhaust memory).
constexpr size_t kMaxJobs = 200000;
// Memory the expanded jobs' parameters may hold: jobs x the largest point, checked
// like the job count. Within the job limit a point may still be large (a fixed value
// of 8,000 characters on 100,000 points held ~1.4 GB, and grid_fuzz stopped at its
// 2 GiB limit), and a short text may be many values (`[0,0,0,...]`: 2 bytes of text
// and a 16-byte value each), so a point counts kJsonNodeBytes per value and key
// besides its strings. 512 MiB is 200,000 jobs of 2,700 bytes (a point of 25 keys).
constexpr size_t kMaxJobBytes = size_t{512} << 20;
constexpr size_t kJsonNodeBytes = 64;

// What holding `v` costs, roughly: kJsonNodeBytes per value and per object key
// (nlohmann's value and its map node), plus the characters of strings and keys.
size_t held_bytes(const Json& v) {
  size_t n = kJsonNodeBytes;
  if (v.is_string()) {
    n += v.get_ref<const std::string&>().size();
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) n += kJsonNodeBytes + it.key().size() + held_bytes(it.value());
  } else if (v.is_array()) {
    for (const Json& e : v) n += held_bytes(e);
  }
  return n;
}

// Collects "SOURCE: PATH: WHAT" lines, each once, at most kMaxErrors of them.
class Errors {
 public:
  explicit Errors(std::string source) : source_(std::move(source)) {}

  void add(const std::string& path, const std::string& what) {
    std::string line = source_ + ": " + one_line(path) + ": " + one_line(what);
    if (!seen_.insert(line).second) return;
    if (lines_.size() >= kMaxErrors) {
      ++dropped_;
      return;
    }
    lines_.push_back(std::move(line));
  }
  bool empty() const { return lines_.empty(); }
  // `s` with control characters escaped (\n, \u000b): a value quoted in an error
  // (an unknown name holding a newline, as grid_fuzz wrote) must not start a line
  // that does not name the file.
  static std::string one_line(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
      if (c >= 0x20 && c != 0x7f) {
        out += static_cast<char>(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\r') {
        out += "\\r";
      } else {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
      }
    }
    return out;
  }
  size_t count() const { return lines_.size() + dropped_; }
  Error error() const {
    std::string msg;
    for (const auto& l : lines_) msg += (msg.empty() ? "" : "\n") + l;
    if (dropped_ > 0) msg += "\n" + source_ + ": " + std::to_string(dropped_) + " more errors not shown";
    return Error{msg};
  }

 private:
  std::string source_;
  std::vector<std::string> lines_;
  std::unordered_set<std::string> seen_;
  size_t dropped_ = 0;
};

std::string shorten(std::string s, size_t n = 60) {
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  return s;
}

// "got ..." for type errors.
std::string got(const OJson& v) {
  switch (v.type()) {
    case OJson::value_t::null: return "got null";
    case OJson::value_t::boolean: return "got " + v.dump();
    case OJson::value_t::number_integer:
    case OJson::value_t::number_unsigned: return "got the integer " + v.dump();
    case OJson::value_t::number_float: return "got the number " + v.dump();
    case OJson::value_t::string: return "got the string " + shorten(v.dump());
    case OJson::value_t::array: return v.empty() ? "got an empty array" : "got an array";
    case OJson::value_t::object: return v.empty() ? "got an empty object" : "got an object";
    default: return "got " + shorten(v.dump());
  }
}

Json to_json(const OJson& v) {
  switch (v.type()) {
    case OJson::value_t::object: {
      Json out = Json::object();
      for (auto it = v.begin(); it != v.end(); ++it) out[it.key()] = to_json(it.value());
      return out;
    }
    case OJson::value_t::array: {
      Json out = Json::array();
      for (const auto& e : v) out.push_back(to_json(e));
      return out;
    }
    case OJson::value_t::null: return nullptr;
    case OJson::value_t::boolean: return v.get<bool>();
    case OJson::value_t::number_integer: return v.get<int64_t>();
    case OJson::value_t::number_unsigned: return v.get<uint64_t>();
    case OJson::value_t::number_float: return v.get<double>();
    case OJson::value_t::string: return v.get<std::string>();
    default: return nullptr;
  }
}

std::vector<std::string> param_names() {
  std::vector<std::string> out;
  for (const auto& p : engine::job_params()) out.push_back(p.name);
  return out;
}

std::vector<std::string> kind_names() {
  std::vector<std::string> out;
  for (const auto& k : engine::job_kinds()) out.push_back(k.name);
  return out;
}

bool kind_takes(const engine::JobKind& k, const std::string& param) {
  return std::find(k.required.begin(), k.required.end(), param) != k.required.end() ||
         std::find(k.optional.begin(), k.optional.end(), param) != k.optional.end();
}

std::vector<std::string> kind_param_names(const engine::JobKind& k) {
  std::vector<std::string> out = k.required;
  out.insert(out.end(), k.optional.begin(), k.optional.end());
  return out;
}

// A point as one measure sees it: its own parameters replace the point's.
Json measure_point(const Json& point, const Json& own) {
  if (own.empty()) return point;
  Json p = point;
  for (auto it = own.begin(); it != own.end(); ++it) p[it.key()] = *it;
  return p;
}

// A job's parameters at a point: projected onto its kind's, normalized, without a
// reference its KV format does not use (drop_unused_job_refs).
Json job_params_at(const engine::JobKind& kind, const Json& point) {
  Json params = normalize_json(engine::project_params(kind, point));
  drop_unused_job_refs(params);
  return params;
}

std::string unknown_param(const std::string& name) {
  return "unknown job parameter '" + name + "' (known: " + join(param_names()) + ")";
}

std::string unknown_kind(const std::string& name) {
  return "unknown job kind '" + name + "' (known: " + join(kind_names()) + ")";
}

bool valid_name(const std::string& s) {
  // Not only dots: "." and ".." would name directories (out/NAME) other than the grid's.
  if (s.empty() || s.find_first_not_of('.') == std::string::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool is_integral(const OJson& v) {
  if (v.is_number_integer()) return true;
  if (v.is_number_float()) {
    double d = v.get<double>();
    return std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15;
  }
  return false;
}

// Checks every key of `where` against an allowed list.
void check_keys(Errors& errs, const std::string& path, const OJson& obj,
                const std::vector<std::string>& allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      errs.add(json_path_key(path, it.key()), "unknown key (expected one of: " + join(allowed) + ")");
    }
  }
}

// One value of a known parameter. Returns false when check_param rejects it.
bool check_value(Errors& errs, const std::string& path, const std::string& name, const OJson& v) {
  if (auto e = engine::check_param(name, to_json(v))) {
    errs.add(path, *e);
    return false;
  }
  return true;
}

// An object of job parameters (fixed, include[i], exclude[i], report filter and
// baseline). Unknown keys and bad values are errors; returns false when the
// object itself or one of its keys is unusable (values that fail check_param do
// not make it unusable: expansion still sees them).
bool check_param_object(Errors& errs, const std::string& path, const OJson& v, bool* values_ok,
                        bool allow_empty = true) {
  if (!v.is_object()) {
    errs.add(path, "expected an object of job parameters, " + got(v));
    return false;
  }
  if (!allow_empty && v.empty()) {
    errs.add(path, "expected a non-empty object of job parameters");
    return false;
  }
  bool ok = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    std::string p = json_path_key(path, it.key());
    if (!engine::find_param(it.key())) {
      errs.add(p, unknown_param(it.key()));
      ok = false;
      continue;
    }
    if (!check_value(errs, p, it.key(), it.value()) && values_ok) *values_ok = false;
  }
  return ok;
}

bool matches(const Json& point, const Json& partial) {
  for (auto it = partial.begin(); it != partial.end(); ++it) {
    auto f = point.find(it.key());
    if (f == point.end() || *f != it.value()) return false;
  }
  return true;
}

std::string show_point(const Json& p) { return shorten(p.dump(), 200); }

struct Axis {
  std::string name;
  std::vector<Json> values;  // normalized, duplicates dropped
};

struct Point {
  Json params;         // normalized full point
  std::string origin;  // "$.axes" or "$.include[j]"
  size_t index = 0;    // position in the cross product (for "$.axes" points)
};

std::string describe_origin(const Point& p) {
  if (p.origin == "$.axes") return "point " + std::to_string(p.index) + " of the axes' cross product";
  return p.origin;
}

void parse_reports(Errors& errs, const OJson& doc, const std::vector<std::string>& measures,
                   std::vector<ReportSpec>& out) {
  auto it = doc.find("report");
  if (it == doc.end()) return;
  std::vector<std::pair<std::string, const OJson*>> items;
  if (it->is_object()) {
    items.emplace_back("$.report", &*it);
  } else if (it->is_array() && !it->empty()) {
    for (size_t i = 0; i < it->size(); ++i) items.emplace_back(json_path_index("$.report", i), &(*it)[i]);
  } else {
    errs.add("$.report", "expected a report object or a non-empty array of them, " + got(*it));
    return;
  }
  static const std::vector<std::string> kReportKeys = {"title",  "kind",     "rows",  "pivot",       "columns",
                                                      "filter", "baseline", "plots", "average_over"};
  static const std::vector<std::string> kColumnKeys = {"metric", "label",  "digits", "scale", "suffix",
                                                       "truncate", "spread", "filter", "minus",  "over",  "vs"};
  for (const auto& [path, rp] : items) {
    const OJson& r = *rp;
    if (!r.is_object()) {
      errs.add(path, "expected a report object, " + got(r));
      continue;
    }
    check_keys(errs, path, r, kReportKeys);
    ReportSpec spec;
    if (auto f = r.find("title"); f != r.end()) {
      if (f->is_string()) spec.title = f->get<std::string>();
      else errs.add(path + ".title", "expected a string, " + got(*f));
    }
    if (auto f = r.find("kind"); f != r.end()) {
      if (!f->is_string()) {
        errs.add(path + ".kind", "expected a job kind name, " + got(*f));
      } else if (!engine::find_job_kind(f->get<std::string>())) {
        errs.add(path + ".kind", unknown_kind(f->get<std::string>()));
      } else {
        spec.kind = f->get<std::string>();
        if (!measures.empty() && std::find(measures.begin(), measures.end(), spec.kind) == measures.end()) {
          errs.add(path + ".kind",
                   "job kind '" + spec.kind + "' is not measured by this grid (measure: " + join(measures) + ")");
        }
      }
    }
    if (auto f = r.find("rows"); f != r.end()) {
      if (!f->is_array()) {
        errs.add(path + ".rows", "expected an array of job parameter names, " + got(*f));
      } else {
        for (size_t i = 0; i < f->size(); ++i) {
          const OJson& v = (*f)[i];
          std::string p = json_path_index(path + ".rows", i);
          if (!v.is_string()) errs.add(p, "expected a job parameter name, " + got(v));
          else if (!engine::find_param(v.get<std::string>())) errs.add(p, unknown_param(v.get<std::string>()));
          else if (std::find(spec.rows.begin(), spec.rows.end(), v.get<std::string>()) != spec.rows.end())
            errs.add(p, "duplicate row parameter '" + v.get<std::string>() + "'");
          else spec.rows.push_back(v.get<std::string>());
        }
      }
    }
    if (auto f = r.find("pivot"); f != r.end()) {
      if (!f->is_string()) {
        errs.add(path + ".pivot", "expected a job parameter name, " + got(*f));
      } else if (!engine::find_param(f->get<std::string>())) {
        errs.add(path + ".pivot", unknown_param(f->get<std::string>()));
      } else {
        spec.pivot = f->get<std::string>();
        if (std::find(spec.rows.begin(), spec.rows.end(), spec.pivot) != spec.rows.end()) {
          errs.add(path + ".pivot", "'" + spec.pivot + "' is also one of the rows; expected another parameter");
        }
      }
    }
    if (auto f = r.find("columns"); f != r.end()) {
      if (!f->is_array() || f->empty()) {
        errs.add(path + ".columns", "expected a non-empty array of metric names or column objects, " + got(*f));
      } else {
        for (size_t i = 0; i < f->size(); ++i) {
          const OJson& c = (*f)[i];
          std::string p = json_path_index(path + ".columns", i);
          ReportColumn col;
          if (c.is_string()) {
            col.metric = c.get<std::string>();
            if (col.metric.empty()) errs.add(p, "expected a non-empty metric name");
          } else if (c.is_object()) {
            check_keys(errs, p, c, kColumnKeys);
            if (auto m = c.find("metric"); m == c.end()) {
              errs.add(p, "missing required key 'metric' (a metric or parameter name)");
            } else if (!m->is_string() || m->get<std::string>().empty()) {
              errs.add(p + ".metric", "expected a metric or parameter name, " + got(*m));
            } else {
              col.metric = m->get<std::string>();
            }
            if (auto g = c.find("label"); g != c.end()) {
              if (g->is_string()) col.label = g->get<std::string>();
              else errs.add(p + ".label", "expected a string, " + got(*g));
            }
            if (auto g = c.find("digits"); g != c.end()) {
              if (is_integral(*g) && g->get<double>() >= 0 && g->get<double>() <= 17)
                col.digits = static_cast<int>(g->get<double>());
              else errs.add(p + ".digits", "expected an integer from 0 to 17, " + got(*g));
            }
            if (auto g = c.find("scale"); g != c.end()) {
              if (g->is_number() && g->get<double>() > 0 && std::isfinite(g->get<double>()))
                col.scale = g->get<double>();
              else errs.add(p + ".scale", "expected a number > 0, " + got(*g));
            }
            if (auto g = c.find("suffix"); g != c.end()) {
              if (g->is_string()) col.suffix = g->get<std::string>();
              else errs.add(p + ".suffix", "expected a string, " + got(*g));
            }
            if (auto g = c.find("truncate"); g != c.end()) {
              if (g->is_boolean()) col.truncate = g->get<bool>();
              else errs.add(p + ".truncate", "expected true or false, " + got(*g));
            }
            if (auto g = c.find("spread"); g != c.end()) {
              if (g->is_string() && (*g == "sd" || *g == "range")) col.spread = g->get<std::string>();
              else errs.add(p + ".spread", "expected \"sd\" or \"range\", " + got(*g));
            }
            if (auto g = c.find("filter"); g != c.end()) {
              if (check_param_object(errs, p + ".filter", *g, nullptr)) col.filter = normalize_json(to_json(*g));
            }
            int derived = 0;
            for (const std::string key : {"minus", "over", "vs"}) {
              auto g = c.find(key);
              if (g == c.end()) continue;
              ++derived;
              if (check_param_object(errs, p + "." + key, *g, nullptr, /*allow_empty=*/false))
                (key == "minus" ? col.minus : key == "over" ? col.over : col.vs) = normalize_json(to_json(*g));
            }
            if (derived > 1) errs.add(p, "expected at most one of 'minus', 'over' and 'vs'");
          } else {
            errs.add(p, "expected a metric name or a column object {metric, label, digits, scale, suffix, truncate, spread, filter, "
                            "minus, over, vs}, " +
                            got(c));
            continue;
          }
          if (col.label.empty()) col.label = col.metric;
          spec.columns.push_back(std::move(col));
        }
      }
    }
    if (auto f = r.find("filter"); f != r.end()) {
      if (check_param_object(errs, path + ".filter", *f, nullptr)) spec.filter = normalize_json(to_json(*f));
    }
    if (auto f = r.find("baseline"); f != r.end()) {
      if (check_param_object(errs, path + ".baseline", *f, nullptr, /*allow_empty=*/false))
        spec.baseline = normalize_json(to_json(*f));
    }
    if (auto f = r.find("plots"); f != r.end()) {
      spec.plots_given = true;
      for (const auto& e : parse_plot_specs(*f, path + ".plots", measures, spec.plots)) errs.add(e.path, e.what);
    }
    if (auto f = r.find("average_over"); f != r.end()) {
      if (!f->is_array() || f->empty()) {
        errs.add(path + ".average_over", "expected a non-empty array of job parameter names, " + got(*f));
      } else {
        for (size_t i = 0; i < f->size(); ++i) {
          const OJson& v = (*f)[i];
          std::string p = json_path_index(path + ".average_over", i);
          if (!v.is_string()) errs.add(p, "expected a job parameter name, " + got(v));
          else if (!engine::find_param(v.get<std::string>())) errs.add(p, unknown_param(v.get<std::string>()));
          else if (v.get<std::string>() == spec.pivot ||
                   std::find(spec.rows.begin(), spec.rows.end(), v.get<std::string>()) != spec.rows.end())
            errs.add(p, "'" + v.get<std::string>() + "' is a row or the pivot; expected another parameter");
          else spec.average_over.push_back(v.get<std::string>());
        }
      }
    }
    out.push_back(std::move(spec));
  }
}

Result<OJson> parse_json_text(const std::string& text, const std::string& source) {
  return parse_ordered_json(text, source, grid_json_limits());
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

JsonLimits grid_json_limits() {
  JsonLimits l;
  l.max_bytes = 16 * kMiB;
  l.max_depth = 64;
  l.refuse_duplicate_keys = true;
  return l;
}

Result<nlohmann::ordered_json> read_grid_document(const std::string& path) {
  Result<std::string> text = read_limited_file(path, grid_json_limits().max_bytes);
  if (!text) return text.error();
  return parse_grid_document(*text, path);
}

Result<nlohmann::ordered_json> parse_grid_document(const std::string& text, const std::string& source) {
  const std::string ext = lower(std::filesystem::path(source).extension().string());
  bool yaml;
  if (ext == ".yaml" || ext == ".yml") {
    yaml = true;
  } else if (ext == ".json") {
    yaml = false;
  } else {
    const size_t first = text.find_first_not_of(" \t\r\n");
    yaml = first == std::string::npos || text[first] != '{';
  }
  if (text.size() > grid_json_limits().max_bytes)
    return Error{source + ": " + size_limit_message(text.size(), grid_json_limits().max_bytes)};
  return yaml ? yaml_to_json(text, source) : parse_json_text(text, source);
}

Result<Grid> parse_grid_text(const std::string& text, const std::string& source) {
  auto doc = parse_grid_document(text, source);
  if (!doc.ok()) return doc.error();
  return parse_grid(*doc, source);
}

Result<Grid> load_grid(const std::string& path) {
  auto doc = read_grid_document(path);
  if (!doc.ok()) return doc.error();
  // Relative paths mean the grid's folder; each file's digest joins its jobs' hashes.
  if (doc->is_object()) {
    const std::string dir = std::filesystem::absolute(std::filesystem::path(path)).parent_path().string();
    Result<OJson> inputs = resolve_grid_inputs(*doc, dir, path);
    if (!inputs.ok()) return inputs.error();
    doc->erase("inputs");
    if (!inputs->empty()) (*doc)["inputs"] = std::move(*inputs);
  }
  Result<Grid> g = parse_grid(*doc, path);
  if (!g.ok()) return g;
  // The files, then what the engine can run: every problem of both listed.
  const Status files = check_grid_files(*doc, g->measures, path, &g->warnings);
  const Status support = check_grid_support(*g);
  if (!files.ok() || !support.ok())
    return Error{files.ok() ? support.message()
                            : support.ok() ? files.message() : files.message() + "\n" + support.message()};
  return g;
}

Result<Grid> parse_grid(const nlohmann::ordered_json& doc, const std::string& source) {
  Errors errs(source);
  Grid g;
  g.source = source;
  g.spec = doc;

  static const std::vector<std::string> kTopKeys = {"name",    "description", "axes",    "fixed",  "include",
                                                    "exclude", "measure",     "repeats", "report", "inputs"};
  if (!doc.is_object()) {
    errs.add("$", "expected an object with keys " + join(kTopKeys) + ", " + got(doc));
    return errs.error();
  }
  check_keys(errs, "$", doc, kTopKeys);
  const OJson* inputs = nullptr;
  if (auto it = doc.find("inputs"); it != doc.end()) {
    inputs = &*it;
    for (const auto& [p, what] : check_grid_inputs(*it)) errs.add(p, what);
  }

  // name, description
  if (auto it = doc.find("name"); it == doc.end()) {
    errs.add("$", "missing required key 'name' (a string of letters, digits, '.', '_' and '-', not only dots)");
  } else if (!it->is_string() || !valid_name(it->get<std::string>())) {
    errs.add("$.name", "expected a string of letters, digits, '.', '_' and '-', not only dots, " + got(*it));
  } else {
    g.name = it->get<std::string>();
  }
  if (auto it = doc.find("description"); it != doc.end() && !it->is_string()) {
    errs.add("$.description", "expected a string, " + got(*it));
  }

  bool structure_ok = true;  // expansion can run
  bool values_ok = true;     // every parameter value passed check_param

  // axes
  std::vector<Axis> axes;
  const bool has_include = doc.contains("include");
  if (auto it = doc.find("axes"); it == doc.end()) {
    if (!has_include) {
      errs.add("$", "missing required key 'axes' (an object of job parameters to arrays of values; "
                    "or give 'include')");
      structure_ok = false;
    }
  } else if (!it->is_object() || it->empty()) {
    errs.add("$.axes", "expected a non-empty object of job parameters to arrays of values, " + got(*it));
    structure_ok = false;
  } else {
    for (auto a = it->begin(); a != it->end(); ++a) {
      std::string path = json_path_key("$.axes", a.key());
      if (!engine::find_param(a.key())) {
        errs.add(path, unknown_param(a.key()));
        structure_ok = false;
        continue;
      }
      if (!a->is_array() || a->empty()) {
        errs.add(path, "expected a non-empty array of values, " + got(*a));
        structure_ok = false;
        continue;
      }
      Axis axis{a.key(), {}};
      // Each value's canonical text: duplicates found in one pass (an axis may have
      // 100,000 values).
      std::unordered_set<std::string> seen_values;
      for (size_t i = 0; i < a->size(); ++i) {
        std::string vpath = json_path_index(path, i);
        const OJson& v = (*a)[i];
        if (!check_value(errs, vpath, a.key(), v)) values_ok = false;
        Json n = normalize_json(to_json(v));
        if (!seen_values.insert(canonical_json(n)).second) {
          // Index in the file of the first equal value.
          size_t first = 0;
          for (; first < i; ++first) {
            if (normalize_json(to_json((*a)[first])) == n) break;
          }
          errs.add(vpath, "duplicate value " + shorten(n.dump()) + " (same as " + json_path_index(path, first) + ")");
          continue;
        }
        axis.values.push_back(std::move(n));
      }
      axes.push_back(std::move(axis));
    }
  }
  for (const auto& a : axes) g.axis_names.push_back(a.name);

  // fixed
  Json fixed = Json::object();
  if (auto it = doc.find("fixed"); it != doc.end()) {
    if (check_param_object(errs, "$.fixed", *it, &values_ok)) {
      for (auto f = it->begin(); f != it->end(); ++f) {
        if (std::find(g.axis_names.begin(), g.axis_names.end(), f.key()) != g.axis_names.end()) {
          errs.add(json_path_key("$.fixed", f.key()),
                   "'" + f.key() + "' is both an axis and fixed; give it in one place");
          structure_ok = false;
        }
      }
      fixed = normalize_json(to_json(*it));
    } else {
      structure_ok = false;
    }
  }

  // include
  std::vector<Json> includes;
  if (auto it = doc.find("include"); it != doc.end()) {
    if (!it->is_array() || it->empty()) {
      errs.add("$.include", "expected a non-empty array of points (objects of job parameters), " + got(*it));
      structure_ok = false;
    } else {
      for (size_t i = 0; i < it->size(); ++i) {
        const OJson& p = (*it)[i];
        if (check_param_object(errs, json_path_index("$.include", i), p, &values_ok, /*allow_empty=*/false)) {
          includes.push_back(normalize_json(to_json(p)));
        } else {
          structure_ok = false;
        }
      }
    }
  }

  // exclude
  std::vector<Json> excludes;
  if (auto it = doc.find("exclude"); it != doc.end()) {
    if (!it->is_array() || it->empty()) {
      errs.add("$.exclude", "expected a non-empty array of partial points (objects of job parameters), " + got(*it));
      structure_ok = false;
    } else {
      for (size_t i = 0; i < it->size(); ++i) {
        const OJson& p = (*it)[i];
        if (check_param_object(errs, json_path_index("$.exclude", i), p, &values_ok, /*allow_empty=*/false)) {
          excludes.push_back(normalize_json(to_json(p)));
        } else {
          structure_ok = false;
        }
      }
    }
  }

  // measure
  std::vector<const engine::JobKind*> kinds;
  if (auto it = doc.find("measure"); it == doc.end()) {
    errs.add("$", "missing required key 'measure' (an array of job kinds: " + join(kind_names()) + ")");
    structure_ok = false;
  } else if (!it->is_array() || it->empty()) {
    errs.add("$.measure", "expected a non-empty array of job kinds (known: " + join(kind_names()) + "), " + got(*it));
    structure_ok = false;
  } else {
    for (size_t i = 0; i < it->size(); ++i) {
      const OJson& m = (*it)[i];
      std::string path = json_path_index("$.measure", i);
      // A kind's name, or {"kind": NAME, PARAM: VALUE, ...}: the kind with parameters
      // of its own that replace the point's (a ppl on one dataset, mc_accuracy on another).
      const OJson* kind_value = &m;
      if (m.is_object()) {
        auto k = m.find("kind");
        if (k == m.end()) {
          errs.add(path, "expected a \"kind\" (a job kind name) beside the measure's own parameters");
          structure_ok = false;
          continue;
        }
        kind_value = &*k;
        path = json_path_key(path, "kind");
      }
      if (!kind_value->is_string()) {
        errs.add(path, "expected a job kind name (known: " + join(kind_names()) + ") or {\"kind\": NAME, PARAM: "
                       "VALUE, ...}, " + got(*kind_value));
        structure_ok = false;
        continue;
      }
      const std::string name = kind_value->get<std::string>();
      const engine::JobKind* kind = engine::find_job_kind(name);
      if (!kind) {
        errs.add(path, unknown_kind(name));
        structure_ok = false;
        continue;
      }
      if (std::find(g.measures.begin(), g.measures.end(), name) != g.measures.end()) {
        errs.add(path, "duplicate job kind '" + name + "'");
        continue;
      }
      Json own = Json::object();
      if (m.is_object()) {
        OJson params = m;
        params.erase("kind");
        const std::string at = json_path_index("$.measure", i);
        bool ok = params.empty() || check_param_object(errs, at, params, &values_ok);
        for (auto p = params.begin(); ok && p != params.end(); ++p)
          if (!kind_takes(*kind, p.key())) {
            errs.add(json_path_key(at, p.key()), "job kind '" + name + "' does not take parameter '" + p.key() +
                                                     "' (it takes: " + join(kind_param_names(*kind)) + ")");
            ok = false;
          }
        if (!ok) {
          structure_ok = false;
          continue;
        }
        own = normalize_json(to_json(params));
      }
      g.measures.push_back(name);
      g.measure_params.push_back(std::move(own));
      kinds.push_back(kind);
    }
  }
  // Index in $.measure of each accepted kind, for error paths.
  std::vector<size_t> measure_index;
  if (auto it = doc.find("measure"); it != doc.end() && it->is_array()) {
    for (const auto& name : g.measures) {
      for (size_t i = 0; i < it->size(); ++i) {
        const OJson& m = (*it)[i];
        if (m == name || (m.is_object() && m.contains("kind") && m["kind"] == name)) {
          measure_index.push_back(i);
          break;
        }
      }
    }
  }

  // "job:KIND" values: only kv_calibration's "job:kv_calibrate", with that measure.
  for (const auto& [p, what] : check_job_refs(doc, g.measures)) {
    errs.add(p, what);
    values_ok = false;
  }

  // repeats
  if (auto it = doc.find("repeats"); it != doc.end()) {
    if (is_integral(*it) && it->get<double>() >= 1 && it->get<double>() <= 1000) {
      g.repeats = static_cast<int>(it->get<double>());
    } else {
      errs.add("$.repeats", "expected an integer from 1 to 1000, " + got(*it));
    }
  }

  // report
  parse_reports(errs, doc, g.measures, g.reports);

  if (!structure_ok) return errs.error();

  // Cross product, first axis outermost.
  size_t total = axes.empty() ? 0 : 1;
  for (const auto& a : axes) {
    if (total > kMaxPoints / std::max<size_t>(a.values.size(), 1)) {
      total = kMaxPoints + 1;
      break;
    }
    total *= a.values.size();
  }
  if (total > kMaxPoints) {
    errs.add("$.axes", "the axes' cross product has more than " + std::to_string(kMaxPoints) +
                           " points; expected fewer (split the grid)");
    return errs.error();
  }
  size_t jobs_per_point = 0;
  for (const engine::JobKind* k : kinds) jobs_per_point += k->theory_only ? 1 : static_cast<size_t>(std::max(g.repeats, 1));
  const size_t max_points = std::max<size_t>(total, 1);
  if (jobs_per_point > 0 && max_points > kMaxJobs / jobs_per_point) {
    errs.add(axes.empty() ? "$.repeats" : "$.axes",
             "the grid would expand to " + std::to_string(max_points) + " points x " + std::to_string(jobs_per_point) +
                 " jobs each (its measures, non-theory ones times repeats " + std::to_string(std::max(g.repeats, 1)) +
                 "), more than " + std::to_string(kMaxJobs) + " jobs; expected fewer (split the grid)");
    return errs.error();
  }
  // The largest point (held_bytes): the fixed values plus each axis' largest value,
  // or an include point.
  const size_t fixed_bytes = held_bytes(fixed);
  size_t point_bytes = fixed_bytes;
  for (const auto& a : axes) {
    size_t largest = 0;
    for (const Json& v : a.values) largest = std::max(largest, held_bytes(v));
    point_bytes += kJsonNodeBytes + a.name.size() + largest;
  }
  for (const Json& p : includes) point_bytes = std::max(point_bytes, fixed_bytes + held_bytes(p));
  const size_t max_jobs = (max_points + includes.size()) * jobs_per_point;
  if (point_bytes > 0 && max_jobs > kMaxJobBytes / point_bytes) {
    errs.add(axes.empty() ? "$.include" : "$.axes",
             "the grid would expand to " + std::to_string(max_jobs) + " jobs of up to " + std::to_string(point_bytes) +
                 " bytes of parameters in memory each (about " + std::to_string(max_jobs * point_bytes / kMiB) +
                 " MiB), more than " + std::to_string(kMaxJobBytes / kMiB) +
                 " MiB; expected fewer points or shorter values (split the grid)");
    return errs.error();
  }
  std::vector<Point> points;
  std::vector<size_t> exclude_hits(excludes.size(), 0);
  if (!axes.empty()) {
    std::vector<size_t> idx(axes.size(), 0);
    size_t n = 0;
    while (true) {
      Json p = fixed;
      for (size_t a = 0; a < axes.size(); ++a) p[axes[a].name] = axes[a].values[idx[a]];
      bool excluded = false;
      for (size_t e = 0; e < excludes.size(); ++e) {
        if (matches(p, excludes[e])) {
          ++exclude_hits[e];
          excluded = true;
        }
      }
      if (!excluded) points.push_back(Point{std::move(p), "$.axes", n});
      ++n;
      size_t a = axes.size();
      while (a > 0 && ++idx[a - 1] == axes[a - 1].values.size()) {
        idx[a - 1] = 0;
        --a;
      }
      if (a == 0) break;
    }
  }
  for (size_t e = 0; e < excludes.size(); ++e) {
    if (exclude_hits[e] == 0) {
      errs.add(json_path_index("$.exclude", e),
               axes.empty() ? "matches no point: the grid has no axes"
                            : "matches no point of the axes' cross product");
    }
  }
  if (!axes.empty() && points.empty() && includes.empty()) {
    errs.add("$.exclude", "excludes every point of the axes' cross product; the grid has no jobs");
  }
  for (size_t i = 0; i < includes.size(); ++i) {
    Json p = fixed;
    p.update(includes[i]);
    std::string path = json_path_index("$.include", i);
    auto dup = std::find_if(points.begin(), points.end(), [&](const Point& q) { return q.params == p; });
    if (dup != points.end()) {
      errs.add(path, "duplicate point: the same as " + describe_origin(*dup) + " " + show_point(p));
      continue;
    }
    points.push_back(Point{std::move(p), path, 0});
  }

  // Every point x measure: required parameters present, then the whole job.
  for (size_t m = 0; m < kinds.size(); ++m) {
    const engine::JobKind& kind = *kinds[m];
    std::string path = json_path_index("$.measure", measure_index[m]);
    for (const auto& r : kind.required) {
      std::vector<const Point*> lacking;
      for (const auto& p : points) {
        if (!p.params.contains(r) && !g.measure_params[m].contains(r)) lacking.push_back(&p);
      }
      if (lacking.empty()) continue;
      std::string msg = "job kind '" + kind.name + "' needs parameter '" + r + "'";
      if (lacking.size() == points.size()) {
        msg += "; give it in axes or fixed";
      } else {
        std::vector<std::string> where;
        for (const Point* p : lacking) {
          if (where.size() == 3) {
            where.push_back("...");
            break;
          }
          where.push_back(describe_origin(*p));
        }
        msg += ", missing in " + join(where);
      }
      errs.add(path, msg);
    }
  }
  if (!errs.empty()) return errs.error();
  if (values_ok) {
    std::unordered_set<std::string> checked;  // each distinct job once
    for (size_t i = 0; i < points.size() && errs.count() <= kMaxErrors; ++i) {
      const Point& p = points[i];
      for (size_t m = 0; m < kinds.size(); ++m) {
        Json params = job_params_at(*kinds[m], measure_point(p.params, g.measure_params[m]));
        if (!checked.insert(kinds[m]->name + "\n" + canonical_json(params)).second) continue;
        Status st = engine::check_job(kinds[m]->name, params);
        if (!st.ok()) {
          errs.add(json_path_index("$.measure", measure_index[m]),
                   st.message() + " (" + describe_origin(p) + " " + show_point(p.params) + ")");
        }
      }
    }
  }
  if (!errs.empty()) return errs.error();

  for (const auto& p : points) g.points.push_back(p.params);
  g.jobs = expand_jobs(g.points, kinds, g.repeats, g.measure_params, inputs);
  if (inputs != nullptr) {
    for (ReportSpec& r : g.reports) {
      apply_grid_inputs(*inputs, r.filter);
      apply_grid_inputs(*inputs, r.baseline);
      for (ReportColumn& c : r.columns) {
        apply_grid_inputs(*inputs, c.filter);
        apply_grid_inputs(*inputs, c.minus);
        apply_grid_inputs(*inputs, c.over);
        apply_grid_inputs(*inputs, c.vs);
      }
    }
  }

  // Reports against the jobs: what their cells would hold.
  if (auto it = doc.find("report"); it != doc.end()) {
    for (size_t i = 0; i < g.reports.size(); ++i) {
      const bool one = it->is_object();
      const OJson& rdoc = one ? *it : (*it)[i];
      const std::string path = one ? std::string("$.report") : json_path_index("$.report", i);
      for (const ReportProblem& p : check_report(g.reports[i], rdoc, path, g.jobs)) errs.add(p.path, p.what);
    }
  }
  if (!errs.empty()) return errs.error();
  return g;
}

std::vector<GridJob> expand_jobs(const std::vector<Json>& points,
                                 const std::vector<const engine::JobKind*>& kinds, int repeats,
                                 const std::vector<Json>& measure_params, const nlohmann::ordered_json* inputs) {
  std::vector<GridJob> jobs;
  std::unordered_set<std::string> seen;
  for (const auto& point : points) {
    // The jobs that depend on another of this point ("job:KIND") come after the
    // others, so that the hash of the one they name is known: theirs covers it.
    std::unordered_map<std::string, std::string> hash_of;  // kind -> its repeat-0 job here
    std::vector<Json> at(kinds.size());
    std::vector<bool> depends(kinds.size(), false);
    for (size_t m = 0; m < kinds.size(); ++m) {
      at[m] = job_params_at(*kinds[m], measure_point(point, m < measure_params.size() ? measure_params[m]
                                                                                      : Json::object()));
      for (const auto& [name, v] : at[m].items()) depends[m] = depends[m] || job_ref(v).has_value();
    }
    for (int pass = 0; pass < 2; ++pass)
      for (size_t m = 0; m < kinds.size(); ++m) {
        if (depends[m] != (pass == 1)) continue;
        const engine::JobKind* kind = kinds[m];
        Json& params = at[m];
        for (auto& [name, v] : params.items())
          if (const std::optional<std::string> ref = job_ref(v)) v = std::string(kJobRefPrefix) + hash_of[*ref];
        const int reps = kind->theory_only ? 1 : std::max(repeats, 1);
        for (int r = 0; r < reps; ++r) {
          Json key = {{"kind", kind->name}, {"params", params}};
          if (r > 0) key["repeat"] = r;
          std::vector<GridJob> job = {GridJob{content_hash(key), kind->name, params, r}};
          if (inputs != nullptr) apply_grid_inputs(*inputs, job);
          if (r == 0) hash_of[kind->name] = job[0].hash;
          if (!seen.insert(job[0].hash).second) continue;
          jobs.push_back(std::move(job[0]));
        }
      }
  }
  return jobs;
}

}  // namespace gb::coord

// Checks a loaded grid's jobs against the engine's format rule (coordinator/grid/grid_support.h).
#include "coordinator/grid/grid_support.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "coordinator/grid/grid.h"
#include "engine/jobs/job_kinds.h"
#include "engine/spec/format_support.h"

namespace gb::coord {
namespace {

using OJson = nlohmann::ordered_json;

bool takes(const engine::JobKind& k, const char* p) {
  return std::find(k.required.begin(), k.required.end(), p) != k.required.end() ||
         std::find(k.optional.begin(), k.optional.end(), p) != k.optional.end();
}

std::string str(const Json& params, const char* name, const std::string& fallback) {
  auto it = params.find(name);
  return it != params.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// Where `param` is given the value `value` in the grid document: fixed, an axis
// value, or an include point ("$" when nowhere).
std::string value_path(const OJson& doc, const std::string& param, const std::string& value) {
  if (auto f = doc.find("fixed"); f != doc.end() && f->is_object())
    if (auto v = f->find(param); v != f->end() && *v == value) return json_path_key("$.fixed", param);
  if (auto a = doc.find("axes"); a != doc.end() && a->is_object())
    if (auto v = a->find(param); v != a->end() && v->is_array())
      for (size_t i = 0; i < v->size(); ++i)
        if ((*v)[i] == value) return json_path_index(json_path_key("$.axes", param), i);
  if (auto inc = doc.find("include"); inc != doc.end() && inc->is_array())
    for (size_t i = 0; i < inc->size(); ++i)
      if (auto v = (*inc)[i].find(param); (*inc)[i].is_object() && v != (*inc)[i].end() && *v == value)
        return json_path_key(json_path_index("$.include", i), param);
  return "$";
}

// The model value as the grid file writes it (load_grid resolved relative paths:
// the `inputs` object maps each written value to its resolved one).
std::string written_model(const OJson& doc, const std::string& value) {
  if (auto in = doc.find("inputs"); in != doc.end() && in->is_object())
    for (auto it = in->begin(); it != in->end(); ++it)
      if (it->is_object() && it->value("value", std::string()) == value) return it.key();
  return value;
}

}  // namespace

Status check_grid_support(const Grid& grid) {
  std::map<std::string, std::optional<engine::ModelConfig>> configs;  // by model value; nullopt: not resolved here
  std::set<std::string> combos, lines;
  std::vector<std::string> errors;
  for (const GridJob& job : grid.jobs) {
    const engine::JobKind* kind = engine::find_job_kind(job.kind);
    if (kind == nullptr || kind->theory_only || !takes(*kind, "model") || !takes(*kind, "kv_format")) continue;
    const std::string model = str(job.params, "model", "");
    const std::string weights = str(job.params, "weight_format", "");
    const std::string kv = str(job.params, "kv_format", "");
    const std::string backend = str(job.params, "backend", "cpu");
    const std::string compute = str(job.params, "compute", "f32");
    // A ${VAR} model names each machine's own copy (tests stand small models in for
    // it): the load where the job runs checks it.
    if (model.empty() || model.find("${") != std::string::npos ||
        !combos.insert(model + "\n" + weights + "\n" + kv + "\n" + backend + "\n" + compute).second)
      continue;
    auto c = configs.find(model);
    if (c == configs.end()) {
      std::optional<engine::ModelConfig> config;
      if (Result<engine::ModelConfig> r = engine::resolve_model(model); r.ok()) config = std::move(*r);
      c = configs.emplace(model, std::move(config)).first;
    }
    if (!c->second) continue;
    std::optional<engine::WeightFormat> wf;
    if (!weights.empty() && weights != "as stored") {
      Result<engine::WeightFormat> r = engine::parse_weight_format(weights);
      if (!r.ok()) continue;  // the parameter check reports it
      wf = std::move(*r);
    }
    std::optional<engine::KvFormat> kf;
    if (!kv.empty()) {
      Result<engine::KvFormat> r = engine::parse_kv_format(kv);
      if (!r.ok()) continue;
      kf = std::move(*r);
    }
    Result<engine::ComputeDtype> cd = engine::parse_compute_dtype(compute);
    if (!cd.ok()) continue;
    for (const engine::FormatProblem& p :
         engine::format_support_problems(*c->second, wf ? &*wf : nullptr, kf ? &*kf : nullptr, backend, *cd)) {
      const std::string path = value_path(grid.spec, p.param,
                                          p.param == "weight_format" ? weights : p.param == "kv_format" ? kv : compute);
      std::string line = grid.source + ": " + path + ": " + p.what + " (model " + written_model(grid.spec, model) +
                         ", backend " + backend + ")";
      if (lines.insert(line).second) errors.push_back(std::move(line));
    }
  }
  if (errors.empty()) return Status::Ok();
  std::string msg;
  for (const std::string& e : errors) msg += (msg.empty() ? "" : "\n") + e;
  return Error{msg};
}

}  // namespace gb::coord

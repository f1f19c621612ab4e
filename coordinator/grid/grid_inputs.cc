// A grid's input files: resolved against the grid's folder, digested, applied to
// the jobs' parameters and hashes (coordinator/grid/grid_inputs.h).
#include "coordinator/grid/grid_inputs.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "common/json_parse.h"
#include "common/json_util.h"
#include "coordinator/grid/grid.h"
#include "coordinator/grid/grid_job_refs.h"
#include "engine/jobs/dataset.h"
#include "engine/jobs/job_inputs.h"
#include "engine/jobs/job_kinds.h"
#include "engine/spec/model_config.h"

namespace gb::coord {
namespace {

namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;

struct Found {
  std::string path;   // where in the document
  std::string param;
  std::string value;
};

// "job:KIND" names another job's output, no file (coordinator/grid/grid_job_refs.h
// says where one may stand).
bool names_a_job(const OJson& v) { return v.get_ref<const std::string&>().starts_with(kJobRefPrefix); }

void collect(const OJson& obj, const std::string& path, std::vector<Found>& out) {
  if (!obj.is_object()) return;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!engine::is_file_param(it.key())) continue;
    const std::string p = json_path_key(path, it.key());
    if (it->is_string() && !names_a_job(*it)) out.push_back({p, it.key(), it->get<std::string>()});
  }
}

std::vector<Found> file_values(const OJson& doc) {
  std::vector<Found> out;
  if (!doc.is_object()) return out;
  if (auto a = doc.find("axes"); a != doc.end() && a->is_object()) {
    for (auto it = a->begin(); it != a->end(); ++it) {
      if (!engine::is_file_param(it.key()) || !it->is_array()) continue;
      const std::string p = json_path_key("$.axes", it.key());
      for (size_t i = 0; i < it->size(); ++i)
        if ((*it)[i].is_string() && !names_a_job((*it)[i]))
          out.push_back({json_path_index(p, i), it.key(), (*it)[i].get<std::string>()});
    }
  }
  if (auto f = doc.find("fixed"); f != doc.end()) collect(*f, "$.fixed", out);
  if (auto inc = doc.find("include"); inc != doc.end() && inc->is_array()) {
    for (size_t i = 0; i < inc->size(); ++i) collect((*inc)[i], json_path_index("$.include", i), out);
  }
  // A measure's own parameters ({"kind": "mc_accuracy", "dataset": "mmlu:..."}).
  if (auto m = doc.find("measure"); m != doc.end() && m->is_array()) {
    for (size_t i = 0; i < m->size(); ++i)
      if ((*m)[i].is_object()) collect((*m)[i], json_path_index("$.measure", i), out);
  }
  return out;
}

bool is_digest(const std::string& s) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

Result<OJson> resolve_grid_inputs(const OJson& doc, const std::string& base_dir, const std::string& source) {
  OJson inputs = OJson::object();
  std::vector<std::string> errors;
  for (const Found& f : file_values(doc)) {
    if (inputs.contains(f.value) || f.value.find("${") != std::string::npos) continue;
    const std::string file = engine::file_part(f.param, f.value);
    if (file.empty()) continue;
    fs::path resolved = fs::path(file);
    if (resolved.is_relative()) resolved = (fs::path(base_dir) / resolved).lexically_normal();
    const std::string value = engine::with_file_part(f.param, f.value, resolved.string());
    Result<std::string> digest = engine::input_digest(f.param, value);
    if (!digest) {
      std::string why = digest.message();
      if (resolved.string() != file) why += " (relative paths in a grid mean its own folder)";
      errors.push_back(source + ": " + f.path + ": " + f.value + ": " + why);
      continue;
    }
    inputs[f.value] = OJson{{"value", value}, {"digest", *digest}};
  }
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    return Error{msg};
  }
  return inputs;
}

std::vector<std::pair<std::string, std::string>> check_grid_inputs(const OJson& inputs) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!inputs.is_object()) {
    out.push_back({"$.inputs", "expected an object of {\"value\": ..., \"digest\": ...} by value as written"});
    return out;
  }
  for (auto it = inputs.begin(); it != inputs.end(); ++it) {
    const std::string p = json_path_key("$.inputs", it.key());
    const OJson& v = *it;
    if (!v.is_object() || !v.contains("value") || !v["value"].is_string() || !v.contains("digest") ||
        !v["digest"].is_string() || v.size() != 2) {
      out.push_back({p, "expected {\"value\": STRING, \"digest\": 16 hex digits}"});
    } else if (!is_digest(v["digest"].get<std::string>())) {
      out.push_back({p + ".digest", "expected 16 lower-case hex digits"});
    }
  }
  return out;
}

void apply_grid_inputs(const OJson& inputs, std::vector<GridJob>& jobs) {
  for (GridJob& job : jobs) {
    Json digests = Json::object();
    Json written = job.params;
    for (auto& [name, v] : job.params.items()) {
      if (!engine::is_file_param(name) || !v.is_string()) continue;
      auto it = inputs.find(v.get<std::string>());
      if (it == inputs.end()) continue;
      digests[name] = (*it)["digest"].get<std::string>();
      v = (*it)["value"].get<std::string>();
    }
    if (digests.empty()) continue;
    Json key = {{"kind", job.kind}, {"params", written}, {"inputs", digests}};
    if (job.repeat > 0) key["repeat"] = job.repeat;
    job.hash = content_hash(key);
  }
}

void apply_grid_inputs(const OJson& inputs, Json& values) {
  if (!values.is_object()) return;
  for (auto& [name, v] : values.items()) {
    if (!engine::is_file_param(name) || !v.is_string()) continue;
    if (auto it = inputs.find(v.get<std::string>()); it != inputs.end()) v = (*it)["value"].get<std::string>();
  }
}

Status check_grid_files(const OJson& doc, const std::vector<std::string>& measures, const std::string& source,
                        std::vector<std::string>* warnings) {
  bool engine_kind = false, scores_text = false;
  std::string engine_name, text_name;
  for (const std::string& m : measures) {
    const engine::JobKind* k = engine::find_job_kind(m);
    if (k == nullptr) continue;
    auto takes = [&](const char* p) {
      return std::find(k->required.begin(), k->required.end(), p) != k->required.end() ||
             std::find(k->optional.begin(), k->optional.end(), p) != k->optional.end();
    };
    if (takes("model") && !k->theory_only && !engine_kind) {
      engine_kind = true;
      engine_name = k->name;
    }
    if (takes("dataset") && !scores_text) {
      scores_text = true;
      text_name = k->name;
    }
  }
  const OJson* inputs = nullptr;
  if (auto it = doc.find("inputs"); it != doc.end() && it->is_object()) inputs = &*it;
  auto resolved = [&](const std::string& v) {
    if (inputs != nullptr)
      if (auto it = inputs->find(v); it != inputs->end()) return (*it)["value"].get<std::string>();
    return v;
  };
  const std::vector<Found> found = file_values(doc);
  const bool grid_names_tokenizer =
      std::any_of(found.begin(), found.end(), [](const Found& f) { return f.param == "tokenizer"; });
  std::vector<std::string> errors;
  std::set<std::string> seen;
  for (const Found& f : found) {
    if (!seen.insert(f.param + "\n" + f.value).second) continue;
    auto add = [&](const std::string& what) { errors.push_back(source + ": " + f.path + ": " + what); };
    std::string value = resolved(f.value);
    if (f.value.find("${") != std::string::npos) {
      // Checked as this machine expands it (the hash keeps the text as written).
      Json one = {{f.param, f.value}};
      if (Status st = engine::expand_job_vars(one); !st.ok()) {
        const std::string m = st.message();
        if (warnings != nullptr)
          warnings->push_back(source + ": " + f.path + ": " + m.substr(m.find(": ") + 2) + " here: '" + f.value +
                              "' is not checked, and its jobs fail (invalid) on machines where it is unset; set it "
                              "to the " +
                              (f.value.rfind("hf:", 0) == 0 ? "model directory" : "file") + " it names");
        continue;
      }
      value = one[f.param].get<std::string>();
    }
    if (f.param == "model") {
      Result<engine::ModelRef> ref = engine::parse_model_ref(value);
      if (!ref) continue;  // the parameter check reports it
      if (ref->kind == engine::ModelRef::Kind::kPreset && engine_kind) {
        add("'" + f.value + "' is a preset without weights, which kind '" + engine_name +
            "' needs; expected synthetic:" + f.value + " (seeded random weights) or hf:DIR / gguf:FILE");
        continue;
      }
      if (ref->kind == engine::ModelRef::Kind::kHf || ref->kind == engine::ModelRef::Kind::kGguf) {
        Result<engine::ModelConfig> c = engine::resolve_model(value);
        if (!c) {
          add(c.message());
          continue;
        }
      }
      if (ref->kind == engine::ModelRef::Kind::kHf && scores_text && !grid_names_tokenizer &&
          !fs::exists(fs::path(ref->hf_dir) / "tokenizer.json")) {
        add("'" + f.value + "' has no tokenizer.json, and kind '" + text_name +
            "' turns text into tokens; expected a `tokenizer` parameter (a tokenizer.json)");
      }
    } else if (f.param == "dataset" && scores_text) {
      if (Result<engine::DatasetSpec> d = engine::parse_dataset_spec(value); !d) add(d.message());
    }
  }
  if (errors.empty()) return Status::Ok();
  std::string msg;
  for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
  return Error{msg};
}

}  // namespace gb::coord

// Job references in grid files (coordinator/grid/grid_job_refs.h).
#include "coordinator/grid/grid_job_refs.h"

#include <algorithm>

#include "common/json_parse.h"
#include "common/strings.h"
#include "engine/spec/formats.h"

namespace gb::coord {
namespace {

using OJson = nlohmann::ordered_json;

}  // namespace

std::optional<std::string> job_ref(const Json& v) {
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  if (!s.starts_with(kJobRefPrefix)) return std::nullopt;
  return s.substr(kJobRefPrefix.size());
}

std::vector<std::pair<std::string, std::string>> check_job_refs(const OJson& doc,
                                                                 const std::vector<std::string>& measures) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!doc.is_object()) return out;
  const bool has_calibrate = std::find(measures.begin(), measures.end(), "kv_calibrate") != measures.end();
  // One value at `path` of parameter `key`; `calibrate_own`: a kv_calibrate measure's own.
  auto check = [&](const std::string& path, const std::string& key, const OJson& v, bool calibrate_own) {
    if (!v.is_string() || !v.get_ref<const std::string&>().starts_with(kJobRefPrefix)) return;
    const std::string ref = v.get<std::string>().substr(kJobRefPrefix.size());
    if (calibrate_own) {
      out.emplace_back(path, "a kv_calibrate measure cannot depend on another job's output, got " + v.dump());
    } else if (key != "kv_calibration") {
      out.emplace_back(path, "a job's output (\"job:KIND\") is taken only by kv_calibration (\"job:kv_calibrate\"), got " +
                                 v.dump());
    } else if (ref != "kv_calibrate") {
      out.emplace_back(path, "expected \"job:kv_calibrate\" (the calibration of this grid's kv_calibrate measure at "
                             "the same point) or a calibration file, got " + v.dump());
    } else if (!has_calibrate) {
      out.emplace_back(path, "\"job:kv_calibrate\" names this grid's kv_calibrate measure, but it has none (measure: " +
                                 join(measures) + "); add {\"kind\": \"kv_calibrate\", \"dataset\": ...} to measure");
    }
  };
  auto check_object = [&](const std::string& path, const OJson& obj, bool calibrate_own) {
    if (!obj.is_object()) return;
    for (auto it = obj.begin(); it != obj.end(); ++it) check(json_path_key(path, it.key()), it.key(), *it, calibrate_own);
  };
  if (auto a = doc.find("axes"); a != doc.end() && a->is_object())
    for (auto it = a->begin(); it != a->end(); ++it)
      if (it->is_array())
        for (size_t i = 0; i < it->size(); ++i)
          check(json_path_index(json_path_key("$.axes", it.key()), i), it.key(), (*it)[i], false);
  if (auto f = doc.find("fixed"); f != doc.end()) check_object("$.fixed", *f, false);
  if (auto inc = doc.find("include"); inc != doc.end() && inc->is_array())
    for (size_t i = 0; i < inc->size(); ++i) check_object(json_path_index("$.include", i), (*inc)[i], false);
  if (auto m = doc.find("measure"); m != doc.end() && m->is_array())
    for (size_t i = 0; i < m->size(); ++i) {
      const OJson& e = (*m)[i];
      if (!e.is_object()) continue;
      const bool calibrate = e.contains("kind") && e["kind"] == "kv_calibrate";
      for (auto it = e.begin(); it != e.end(); ++it)
        if (it.key() != "kind") check(json_path_key(json_path_index("$.measure", i), it.key()), it.key(), *it, calibrate);
    }
  return out;
}

void drop_unused_job_refs(Json& params) {
  auto it = params.find("kv_calibration");
  if (it == params.end() || !job_ref(*it)) return;
  const auto kv = params.find("kv_format");
  Result<engine::KvFormat> f = engine::parse_kv_format(kv != params.end() && kv->is_string()
                                                           ? kv->get<std::string>() : std::string("f32"));
  if (!f.ok() || f->codec != kernels::KvElement::kInt8Calib) params.erase("kv_calibration");
}

}  // namespace gb::coord

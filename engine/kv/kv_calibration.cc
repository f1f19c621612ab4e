// Reading and writing KV-cache calibrations (engine/kv/kv_calibration.h).
#include "engine/kv/kv_calibration.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gb::engine {
namespace {

// The array `name` of entry `layer`: num_kv_heads finite numbers appended to out.
Status read_heads(const Json& entry, const char* name, int64_t heads, const std::string& where,
                  std::vector<float>& out) {
  auto it = entry.find(name);
  const std::string path = where + "." + name;
  if (it == entry.end()) return Error{path + ": missing (expected " + std::to_string(heads) + " numbers)"};
  if (!it->is_array() || static_cast<int64_t>(it->size()) != heads)
    return Error{path + ": expected an array of " + std::to_string(heads) + " numbers (one per KV head), got " +
                 it->dump().substr(0, 80)};
  for (size_t h = 0; h < it->size(); ++h) {
    const Json& v = (*it)[h];
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      return Error{path + "[" + std::to_string(h) + "]: expected a finite number, got " + v.dump()};
    out.push_back(v.get<float>());
  }
  return Status();
}

}  // namespace

std::vector<float> KvCalibration::scales(int64_t layer) const {
  std::vector<float> t(static_cast<size_t>(4 * num_kv_heads));
  for (int which = 0; which < 2; ++which)
    for (int64_t h = 0; h < num_kv_heads; ++h) {
      const size_t i = static_cast<size_t>(layer * num_kv_heads + h);
      const float mn = which == 0 ? k_min[i] : v_min[i], mx = which == 0 ? k_max[i] : v_max[i];
      float* o = &t[static_cast<size_t>((which * num_kv_heads + h) * 2)];
      o[0] = (mx - mn) / 255.0f;
      o[1] = 0.5f * mn + 0.5f * mx;
    }
  return t;
}

Result<KvCalibration> parse_kv_calibration(const std::string& text, const std::string& source) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::parse_error& e) {
    return Error{source + ": not JSON: " + e.what()};
  }
  const std::string at = source + ": $";
  if (!j.is_object()) return Error{at + ": expected an object (a KV calibration)"};
  auto format = j.find("format");
  if (format == j.end() || *format != kKvCalibrationFormat)
    return Error{at + ".format: expected \"" + std::string(kKvCalibrationFormat) + "\"" +
                 (format == j.end() ? std::string(", missing") : ", got " + format->dump())};
  auto version = j.find("version");
  if (version == j.end() || *version != 1)
    return Error{at + ".version: expected 1" + (version == j.end() ? std::string(", missing") : ", got " + version->dump())};
  KvCalibration c;
  c.source = source;
  for (const char* key : {"num_layers", "num_kv_heads"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 1)
      return Error{at + "." + key + ": expected an integer >= 1" +
                   (it == j.end() ? std::string(", missing") : ", got " + it->dump())};
  }
  c.num_layers = j["num_layers"].get<int64_t>();
  c.num_kv_heads = j["num_kv_heads"].get<int64_t>();
  if (auto it = j.find("model"); it != j.end()) {
    if (!it->is_string()) return Error{at + ".model: expected a string, got " + it->dump()};
    c.model = it->get<std::string>();
  }
  if (auto it = j.find("keys"); it != j.end()) {
    if (*it != "rotated" && *it != "unrotated")
      return Error{at + ".keys: expected \"rotated\" or \"unrotated\", got " + it->dump()};
    c.keys = it->get<std::string>();
  }
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array() || static_cast<int64_t>(layers->size()) != c.num_layers)
    return Error{at + ".layers: expected an array of num_layers = " + std::to_string(c.num_layers) + " entries" +
                 (layers == j.end() ? std::string(", missing")
                                    : (layers->is_array() ? ", got " + std::to_string(layers->size()) : ", got " + layers->dump().substr(0, 80)))};
  for (size_t l = 0; l < layers->size(); ++l) {
    const Json& e = (*layers)[l];
    const std::string where = at + ".layers[" + std::to_string(l) + "]";
    if (!e.is_object()) return Error{where + ": expected an object with k_min, k_max, v_min, v_max"};
    for (auto [name, out] : {std::pair{"k_min", &c.k_min}, {"k_max", &c.k_max}, {"v_min", &c.v_min}, {"v_max", &c.v_max}})
      if (Status s = read_heads(e, name, c.num_kv_heads, where, *out); !s.ok()) return s.error();
    for (int64_t h = 0; h < c.num_kv_heads; ++h) {
      const size_t i = l * static_cast<size_t>(c.num_kv_heads) + static_cast<size_t>(h);
      if (c.k_min[i] > c.k_max[i] || c.v_min[i] > c.v_max[i])
        return Error{where + ": head " + std::to_string(h) + ": expected min <= max"};
    }
  }
  return c;
}

Result<KvCalibration> read_kv_calibration(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read KV calibration " + path + " (" + std::strerror(errno) + ")"};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{"cannot read KV calibration " + path + " (read error)"};
  return parse_kv_calibration(text.str(), path);
}

Json kv_calibration_json(const KvCalibration& c) {
  Json j = {{"format", kKvCalibrationFormat}, {"version", 1}, {"num_layers", c.num_layers},
            {"num_kv_heads", c.num_kv_heads}};
  if (!c.model.empty()) j["model"] = c.model;
  if (!c.keys.empty()) j["keys"] = c.keys;
  Json layers = Json::array();
  for (int64_t l = 0; l < c.num_layers; ++l) {
    auto slice = [&](const std::vector<float>& v) {
      return std::vector<float>(v.begin() + l * c.num_kv_heads, v.begin() + (l + 1) * c.num_kv_heads);
    };
    layers.push_back({{"k_min", slice(c.k_min)}, {"k_max", slice(c.k_max)}, {"v_min", slice(c.v_min)},
                      {"v_max", slice(c.v_max)}});
  }
  j["layers"] = layers;
  return j;
}

}  // namespace gb::engine

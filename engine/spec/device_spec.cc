// Device references (engine/spec/device_spec.h): the presets table, and a preset name
// or an object giving the three roofline figures.
#include "engine/spec/device_spec.h"

#include <cmath>

namespace gb::engine {
namespace {

using nlohmann::json;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kTiB = kGiB * 1024.0;

// One figure given in either of two units: {key, factor to SI}.
struct Figure {
  const char* what;
  const char* key_a;
  double factor_a;
  const char* key_b;
  double factor_b;
};

constexpr Figure kFigures[] = {
    {"memory", "memory_gib", kGiB, "memory_bytes", 1},
    {"bandwidth", "bandwidth_gib_s", kGiB, "bandwidth_bytes_per_s", 1},
    {"compute", "tflops", 1e12, "flops_per_s", 1},
};

constexpr const char* kObjectForm =
    "{\"name\": ..., \"memory_gib\"|\"memory_bytes\", \"bandwidth_gib_s\"|\"bandwidth_bytes_per_s\", "
    "\"tflops\"|\"flops_per_s\"[, \"source\"]}";

std::string preset_names() {
  std::string s;
  for (const auto& d : device_presets()) s += (s.empty() ? "" : ", ") + d.name;
  return s;
}

}  // namespace

Result<DeviceSpec> resolve_device(const json& ref) {
  if (ref.is_string()) {
    const std::string name = ref.get<std::string>();
    if (const DeviceSpec* d = find_device_preset(name)) return *d;
    return Error{"unknown device '" + name + "' (presets: " + preset_names() + "; or an object " + kObjectForm + ")"};
  }
  if (!ref.is_object())
    return Error{"a device is a preset name (" + preset_names() + ") or an object " + kObjectForm};

  std::vector<std::string> errors;
  for (auto it = ref.begin(); it != ref.end(); ++it) {
    const std::string& k = it.key();
    bool known = k == "name" || k == "source";
    for (const auto& f : kFigures) known = known || k == f.key_a || k == f.key_b;
    if (!known) errors.push_back("unknown key '" + k + "'");
  }
  DeviceSpec d;
  if (auto it = ref.find("name"); it == ref.end()) {
    errors.push_back("missing name");
  } else if (!it->is_string() || it->get<std::string>().empty()) {
    errors.push_back("name must be a non-empty string");
  } else {
    d.name = it->get<std::string>();
  }
  if (auto it = ref.find("source"); it != ref.end()) {
    if (it->is_string())
      d.source = it->get<std::string>();
    else
      errors.push_back("source must be a string");
  }
  if (d.source.empty()) d.source = "given in the grid";

  double* targets[] = {&d.memory_bytes, &d.bandwidth_bytes_per_s, &d.flops_per_s};
  for (size_t i = 0; i < std::size(kFigures); ++i) {
    const Figure& f = kFigures[i];
    const bool has_a = ref.contains(f.key_a), has_b = ref.contains(f.key_b);
    if (has_a == has_b) {
      errors.push_back(std::string(has_a ? "give only one of " : "missing ") + f.what + " (" + f.key_a + " or " +
                       f.key_b + ")");
      continue;
    }
    const char* key = has_a ? f.key_a : f.key_b;
    const json& v = ref.at(key);
    if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>())) {
      errors.push_back(std::string(key) + " must be a positive number, got " + v.dump());
      continue;
    }
    *targets[i] = v.get<double>() * (has_a ? f.factor_a : f.factor_b);
  }
  if (!errors.empty()) {
    std::string m = "device object: ";
    for (size_t i = 0; i < errors.size(); ++i) m += (i ? "; " : "") + errors[i];
    return Error{m + " (expected " + kObjectForm + ")"};
  }
  return d;
}

json device_to_json(const DeviceSpec& d) {
  return json{{"name", d.name},
              {"memory_bytes", d.memory_bytes},
              {"bandwidth_bytes_per_s", d.bandwidth_bytes_per_s},
              {"flops_per_s", d.flops_per_s},
              {"source", d.source}};
}

const std::vector<DeviceSpec>& device_presets() {
  static const std::vector<DeviceSpec> devices = {
      {"rtx4090", 24 * kGiB, 1008 * kGiB, 82.58 * kTiB,
       "reference 003's convention: 24 GiB, 1008 GiB/s, 82.58 x 2^40 FLOP/s"},
      {"a100-80g", 80e9, 2039e9, 312e12, "NVIDIA A100 80GB SXM datasheet: 80 GB, 2039 GB/s, 312 TFLOP/s dense bf16"},
      {"h100-sxm", 80e9, 3.35e12, 989.4e12, "NVIDIA H100 SXM datasheet: 80 GB, 3.35 TB/s, 989.4 TFLOP/s dense bf16"},
      {"h200", 141e9, 4.8e12, 989.4e12, "NVIDIA H200 SXM datasheet: 141 GB, 4.8 TB/s, 989.4 TFLOP/s dense bf16"},
  };
  return devices;
}

const DeviceSpec* find_device_preset(std::string_view name) {
  for (const auto& d : device_presets())
    if (d.name == name) return &d;
  return nullptr;
}

}  // namespace gb::engine

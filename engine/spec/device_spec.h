// DeviceSpec: what the roofline theory needs of a device. Presets from vendor
// datasheets use decimal units (GB = 1e9 B, TB/s = 1e12 B/s) and dense bf16 tensor
// FLOP/s; rtx4090 keeps reference 003's binary convention (24 GiB, 1008 GiB/s,
// 82.58 x 2^40 FLOP/s) so that its tables come out exactly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gb::engine {

struct DeviceSpec {
  std::string name;
  double memory_bytes = 0;
  double bandwidth_bytes_per_s = 0;
  double flops_per_s = 0;
  std::string source;  // where the figures come from
};

const std::vector<DeviceSpec>& device_presets();
const DeviceSpec* find_device_preset(std::string_view name);

// A device as grids write it: a preset name, or an object
// {"name": ..., "memory_gib"|"memory_bytes", "bandwidth_gib_s"|"bandwidth_bytes_per_s",
//  "tflops"|"flops_per_s"} (gib: 2^30, tflops: 1e12).
Result<DeviceSpec> resolve_device(const nlohmann::json& ref);

// {"name", "memory_bytes", "bandwidth_bytes_per_s", "flops_per_s", "source"}.
nlohmann::json device_to_json(const DeviceSpec& d);

}  // namespace gb::engine

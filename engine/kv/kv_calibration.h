// A KV-cache calibration: the range of every layer's and KV head's keys and values
// over a calibration set, from which an int8-calib cache takes its static scales
// (reference 002: zp = (min + max) / 2, scale = (max - min) / 255 per layer and
// head). The kv_calibrate job (the reports issue) writes the file; this reads and
// checks it. Not the cache itself (engine/kv/kv_cache.h).
//
// The file is JSON:
//
//   {"format": "gridbench-kv-calibration", "version": 1,
//    "model": "hf:models/qwen2-0.5b",          (optional: what it was measured on)
//    "keys": "rotated",                          (optional: "rotated" = keys after
//                                                 RoPE, as a full cache stores them;
//                                                 "unrotated" = before, as a
//                                                 streaming cache stores them)
//    "num_layers": 2, "num_kv_heads": 2,
//    "layers": [{"k_min": [..], "k_max": [..], "v_min": [..], "v_max": [..]}, ...]}
//
// with num_layers entries in "layers", each array num_kv_heads finite numbers,
// min <= max. Values outside a head's range are clamped by the cache.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json_util.h"
#include "common/status.h"

namespace gb::engine {

inline constexpr const char* kKvCalibrationFormat = "gridbench-kv-calibration";

struct KvCalibration {
  std::string source;  // the file, for messages
  std::string model;
  std::string keys;    // "", "rotated" or "unrotated"
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  // [layer][head], row-major.
  std::vector<float> k_min, k_max, v_min, v_max;

  // The cache's table of layer l: [2 (k, v)][heads][2 (scale, zero point)].
  std::vector<float> scales(int64_t layer) const;
};

// Parses a calibration from JSON text; errors are "SOURCE: $.path: what was expected".
Result<KvCalibration> parse_kv_calibration(const std::string& text, const std::string& source);
// Reads and parses a calibration file.
Result<KvCalibration> read_kv_calibration(const std::string& path);
// The file's JSON (what a calibrating job writes).
Json kv_calibration_json(const KvCalibration& c);

}  // namespace gb::engine

// `gridbench quantize --model hf:DIR --weight-format F --out DIR`: a model quantized
// once and saved packed (engine/weights/hf/quantized_checkpoint.h,
// docs/QUANTIZED_LAYOUT.md), loaded again by `hf:DIR` as stored.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace gb::cli {

struct QuantizeFlags {
  std::string model, weight_format, out;
};

// Adds `quantize` to `app`, its flags bound to `flags`.
CLI::App* add_quantize_command(CLI::App& app, QuantizeFlags& flags);

// Runs it: 0 written, 2 invalid flags or format, 1 a model or file error.
int run_quantize_command(const QuantizeFlags& flags);

}  // namespace gb::cli

// `gridbench quant-error`: reference 004's matmul error table (its 4.4) for any
// weight formats and shapes, or on a model's weight matrix: one quant_error job
// (engine/measure/quant_error_job.cc) per format and shape, run here as
// gridbench-job runs it, printed as a table (rows: shapes, a column per format) or
// as JSON rows {weight_format, shape, rel_error}.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace gb::cli {

struct QuantErrorFlags {
  std::string weight_formats;  // "int8-tensor,fp8-tensor"
  std::string shapes;          // "16x512,100x1024"
  std::string model, tensor;   // a model's weight matrix instead of seeded W
  std::string format = "md";
  int64_t seed = 0;
  int threads = 0;
  CLI::App* command = nullptr;
};

// Adds `quant-error` to `app`, its flags bound to `flags`.
CLI::App* add_quant_error_command(CLI::App& app, QuantErrorFlags& flags);

// Runs it. Exit codes as run_cli's: 2 for invalid flags, 1 when a job fails.
int run_quant_error_command(const QuantErrorFlags& flags);

}  // namespace gb::cli

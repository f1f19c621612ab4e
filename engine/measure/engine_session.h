// What the engine kinds (ppl, memory, speed) share: a model opened from a job's
// parameters on a backend, ready to run, the device record their figures come
// with, and small helpers for their parameters.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/backend/backend.h"
#include "engine/jobs/job_output.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/spec/model_config.h"
#include "engine/weights/weight_source.h"

namespace gb::engine {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0);

// An optional parameter of a validated job, or the fallback.
int64_t int_param(const Json& p, const char* name, int64_t fallback);
std::string str_param(const Json& p, const char* name, const std::string& fallback);

// A loaded model with its backend, ready to run.
struct EngineSession {
  std::unique_ptr<WeightSource> weights;
  std::unique_ptr<Backend> backend;
  std::string backend_name = "cpu";  // the job's `backend` parameter
  std::unique_ptr<Backend> wrapper;  // what the model runs on when open_engine_session was given `wrap`
  std::unique_ptr<Model> model;
  KvCacheOptions kv;
  std::string weight_format = std::string(kAsStored);
  std::string kv_format = "f32";
  int threads = 0;
  // How the linear layers treat their activations, for the results' device record:
  // "f32", "int8 per token", "fp8 per token", "llm.int8 threshold 6", with
  // ", smoothquant alpha 0.5, calibrated on N sequences of DATASET" for +smooth;
  // "bf16 compute (...)" with the `compute` parameter.
  std::string activations = "f32";
  double load_ms = 0;  // opening the weights and loading them into the backend
  // The quantized-model cache (engine/weights/quantized_cache.h): "" when not used,
  // "hit" (loaded from it) or "written" (quantized now and saved there).
  std::string quant_cache;
};

// The CUDA device a cuda session runs on (a worker maps its --device cuda:N to its
// child's cuda:0 through CUDA_VISIBLE_DEVICES).
inline constexpr int kSessionCudaDevice = 0;

// Opens params.model in params.weight_format with a params.kv_format cache on
// (through the quantized-model cache where GRIDBENCH_QUANT_CACHE names one: stderr
// gets "quantized_from_cache KEY ..." or "quantized_to_cache KEY ...")
// params.backend: "cpu" (params.threads threads) or "cuda" (engine/backend/
// cuda_backend.h, cuda:kSessionCudaDevice; an error in a build without CUDA).
// With `wrap`, the model is loaded onto wrap(*backend) (a measuring wrapper,
// engine/measure/backends/), which the session keeps.
using BackendWrapper = std::function<std::unique_ptr<Backend>(Backend& inner)>;
// Formats that quantize activations (W8A8, int8-llm) take llm_int8_threshold; the
// +smooth ones run SmoothQuant's calibration first (engine/measure/backends/
// smooth_calibration.h), on the CPU, over smooth_samples sequences (default 8) of up to
// 512 tokens of smooth_dataset, else of the job's dataset, else of seeded random
// tokens (a model without a tokenizer, or a kind without a dataset: memory, speed).
Result<EngineSession> open_engine_session(const Json& params, const BackendWrapper& wrap = {});

// The device record of figures measured on the session's backend:
// {"backend": "cpu", "kind": "cpu", "name", "memory_bytes", "cores", "threads"} (cuda:
// {"backend": "cuda", "kind": "cuda", "name", "memory_bytes", "compute_capability",
// "cores" (SMs)}): the
// device class measured results are compared and reused by.
Json session_device_json(const EngineSession& e);

// Says in the job's log (stderr, "cuda_graphs_off: ...") why the session's model
// stopped launching decode steps from recorded CUDA graphs, if it did.
void log_recording_failure(const EngineSession& e);

// The copy bandwidth of the session's device, measured now, bytes/s (read + write
// counted once each): the device-to-device copy kernel on a cuda session (the host's
// memcpy where that measurement fails), the host memcpy on a cpu session. The
// ceiling a measured job's roofline divides by.
double measured_copy_bandwidth(const EngineSession& e);

// The process's peak resident memory so far, bytes.
double peak_rss_bytes();
// The process's resident memory now, bytes (/proc/self/statm; 0 where unreadable).
double current_rss_bytes();
// Restarts the peak that run_peak_rss_bytes() reports from the resident memory now
// (Linux: "5" written to /proc/self/clear_refs resets VmHWM), so that a job's peak
// leaves out the transients of loading (a checkpoint converted to f32, then packed).
void reset_run_peak_rss();
// The peak resident memory since reset_run_peak_rss() (VmHWM of /proc/self/status),
// bytes; peak_rss_bytes() where the reset or the read is not available.
double run_peak_rss_bytes();

// Seeded random prompt tokens (speed and memory measure time and bytes, which
// do not depend on which tokens they are).
std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed);

// Bytes of the parameters in a weight format of `bits` per weight.
double format_weight_bytes(const ModelConfig& c, double bits);

}  // namespace gb::engine

// Placement estimates of the kinds that run the engine: the device kind and the
// memory a job will need, from its parameters and the model's config alone (no
// weights are read), so that the coordinator can place a job before it runs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "engine/jobs/job_kinds.h"

namespace gb::engine {

// The weight format name that means "as the file stores it" (engine/model/model.h's
// kAsStored; repeated here so that placement does not depend on the model code).
inline constexpr std::string_view kAsStoredName = "as stored";

// The backend a measured job runs on: its `backend` parameter, "cpu" without one.
std::string job_backend(const Json& params);

// Bits per weight the estimate uses: the weight format's effective bits (scales
// included; fake:FMT formats are held in bf16, 16), 32 for weights as stored.
double placement_weight_bits(const Json& params);
// Bits per KV element: the KV format's effective bits, 32 without one (f32 default).
double placement_kv_bits(const Json& params);

// ppl, memory, speed, ...: the job's backend (`backend`, default cpu), with the
// weights at the weight format's bits and a KV cache at the KV format's bits of the
// job's context (context + prompt_tokens + gen_tokens, at most a streaming cache's
// sink + window) for every sequence of the batch. A model that does not resolve
// gives 0 bytes (validation reports it).
Requirement engine_job_requirement(const Json& params);

// quant_error: any device (host arithmetic), X, W, Wq and their f64 copies.
Requirement quant_error_requirement(const Json& params);

// context_search: the job's backend, with its memory budget (memory_budget_gib) on
// top of the weights (the job holds the model twice: once to open it, once counted
// against the budget).
Requirement context_search_requirement(const Json& params);

// Whether a requirement fits the host memory this process may still take
// (common/host_memory.h, `limit_bytes` or GRIDBENCH_MEMORY_LIMIT first): nullopt when
// it does, or when the free memory cannot be read; else why not, naming `what` and
// the bytes needed and available. Checked before anything is loaded, so a model
// that cannot fit ends at once as `oom` instead of being killed by the kernel.
std::optional<std::string> host_memory_shortfall(const Requirement& r, const std::string& what,
                                                 std::optional<int64_t> limit_bytes = std::nullopt);

}  // namespace gb::engine

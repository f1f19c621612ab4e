// Placement estimates of the kinds that run the engine: the device kind and the
// memory a job will need, from its parameters and the model's config alone (no
// weights are read), so that the coordinator can place a job before it runs.
#pragma once

#include <optional>
#include <string>

#include "engine/jobs/job_kinds.h"

namespace gb::engine {

// ppl, memory, speed: the CPU, with the f32 weights and an f32 KV cache of the
// job's context (context + prompt_tokens + gen_tokens) for every sequence of the
// batch. A model that does not resolve gives 0 bytes (validation reports it).
Requirement engine_job_requirement(const Json& params);

// Whether a requirement fits the host memory this process may still take
// (common/host_memory.h, `limit_bytes` or GRIDBENCH_MEMORY_LIMIT first): nullopt when
// it does, or when the free memory cannot be read; else why not, naming `what` and
// the bytes needed and available. Checked before anything is loaded, so a model
// that cannot fit ends at once as `oom` instead of being killed by the kernel.
std::optional<std::string> host_memory_shortfall(const Requirement& r, const std::string& what,
                                                 std::optional<int64_t> limit_bytes = std::nullopt);

}  // namespace gb::engine

// Placement estimates of the kinds that run the engine: the device kind and the
// memory a job will need, from its parameters and the model's config alone (no
// weights are read), so that the coordinator can place a job before it runs.
#pragma once

#include "engine/jobs/job_kinds.h"

namespace gb::engine {

// ppl, memory, speed: the CPU, with the f32 weights and an f32 KV cache of the
// job's context (context + prompt_tokens + gen_tokens) for every sequence of the
// batch. A model that does not resolve gives 0 bytes (validation reports it).
Requirement engine_job_requirement(const Json& params);

// quant_error: any device (host arithmetic), X, W, Wq and their f64 copies.
Requirement quant_error_requirement(const Json& params);

}  // namespace gb::engine

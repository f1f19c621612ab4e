// Whether the engine can run each job of a loaded grid: its model x weight format x
// KV format x backend, by the engine's own rule (engine/spec/format_support.h, which
// Model::load applies again), checked before any job runs. load_grid runs it, so
// the CLI refuses such a grid before it submits and the embedded runner before it
// writes anything. Not here: the files themselves (grid_inputs.h), memory; a
// coordinator, which sees no model files, does not run it (the worker's load does).
#pragma once

#include <string>

#include "common/status.h"

namespace gb::coord {

struct Grid;

// Each distinct combination of the jobs of kinds that run the engine (not
// theory-only, taking a model and a kv_format) whose model's config resolves here;
// a model written with ${VAR} (each machine's own copy), or one whose config does
// not resolve, is left to the other checks and to the load where the job runs. Errors: every problem, one line each, "SOURCE: $.path: what
// (model M, backend B)", the path being where the format is written.
Status check_grid_support(const Grid& grid);

}  // namespace gb::coord

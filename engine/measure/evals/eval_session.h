// What the accuracy kinds (mc_accuracy, gen_accuracy) share on top of an engine
// session: the tokenizer a job scores text with (its `tokenizer` parameter or the
// model's own) and the accuracy metrics with their standard errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/measure/engine_session.h"
#include "engine/tokenizer/tokenizer.h"

namespace gb::engine {

// The job's tokenizer: params.tokenizer loaded into `own`, else the model's. Errors:
// none at all, one that does not read, or more ids than the model's vocabulary.
Result<const Tokenizer*> eval_tokenizer(const Json& params, const EngineSession& e, std::optional<Tokenizer>& own);

// `name` = right / n and `name`_stderr = sqrt(p (1 - p) / n), appended to `out`; with
// a key, the keyed metrics `name`:KEY and `name`_stderr:KEY.
void add_accuracy(JobOutput& out, const std::string& name, int64_t right, int64_t n, const std::string& key = "");

}  // namespace gb::engine

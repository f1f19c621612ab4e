// The parameters of a job that name files: `model` (hf:DIR, gguf:FILE), `dataset`
// (text:FILE, wikitext:FILE, pg19:DIR, jsonl:FILE:FIELD, mmlu:DIR) and `tokenizer` (FILE); the digest of what such a
// value reads, and the ${VAR} expansion done where a job runs. Used by the grid
// (coordinator/grid/grid_inputs.h: relative paths and hashes) and by gridbench-job.
// Not here: reading the files' content as models or datasets.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gb::engine {

// Whether parameter `name` may name a file.
bool is_file_param(const std::string& name);

// The file part of a file-naming value, or "" when it names none (a preset,
// synthetic:NAME): hf:DIR -> DIR, gguf:FILE -> FILE, text:FILE -> FILE (likewise
// wikitext:, pg19:DIR, mmlu:DIR), jsonl:FILE:FIELD -> FILE, a tokenizer -> the value itself.
std::string file_part(const std::string& param, const std::string& value);

// `value` with its file part replaced by `file` (the inverse of file_part).
std::string with_file_part(const std::string& param, const std::string& value, const std::string& file);

// The digest of what a file-naming value reads, 16 hex digits of SHA-256 over: the
// whole file for datasets and tokenizers (every .txt book of pg19:DIR and every
// CSV of mmlu:DIR, by relative name; an mmlu: directory is also parsed, so a
// malformed row is an error "FILE:LINE: what" before anything runs); a GGUF file's size and first 256 MiB (the
// header and the leading tensors: whole files of many GiB would take minutes); for an
// hf: directory its config.json and model.safetensors.index.json, or config.json and
// model.safetensors' header when unsharded. Errors name the file and what is wrong.
Result<std::string> input_digest(const std::string& param, const std::string& value);

// ${NAME} in the file-naming values of `params` replaced by the environment's NAME.
// Error: "$.params.PARAM: ${NAME} is not set in the environment".
Status expand_job_vars(nlohmann::json& params);

}  // namespace gb::engine

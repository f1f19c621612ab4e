// Hugging Face model directories: config + safetensors, validated (engine/weights/hf/hf_checkpoint.h).
#include "engine/weights/hf/hf_checkpoint.h"

#include "common/json_parse.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;


bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Joins up to `limit` items, then "and N more".
std::string join_limited(const std::vector<std::string>& items, size_t limit = 6) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < limit; ++i) s += (i ? "; " : "") + items[i];
  if (items.size() > limit) s += "; and " + std::to_string(items.size() - limit) + " more";
  return s;
}

std::string in_file(const std::string& file) { return file.empty() ? "" : " in " + file; }

}  // namespace


bool is_ignored_hf_buffer(Family family, std::string_view name) {
  switch (family) {
    case Family::kGpt2:
      return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias");
    case Family::kGptNeoX:
      return ends_with(name, ".attention.bias") || ends_with(name, ".attention.masked_bias") ||
             ends_with(name, ".attention.rotary_emb.inv_freq");
    default:
      return ends_with(name, ".self_attn.rotary_emb.inv_freq");
  }
}

Status validate_hf_tensors(const ModelConfig& c, const std::map<std::string, StoredTensor, std::less<>>& stored,
                           const std::string& where, std::vector<ExpectedTensor>* expected_out, bool* head_tied) {
  std::string gpt2_prefix = "transformer.";
  if (c.family == Family::kGpt2 && !stored.contains("transformer.wte.weight") && stored.contains("wte.weight"))
    gpt2_prefix = "";
  std::vector<ExpectedTensor> expected = expected_hf_tensors(c, gpt2_prefix);
  const HfEmbeddingNames names = hf_embedding_names(c.family, gpt2_prefix);
  const int64_t V = c.vocab_size, H = c.hidden_size;
  // A tied head may still be stored: then it must look like the embedding.
  if (c.tie_embeddings && stored.contains(names.head)) expected.push_back({names.head, {V, H}});
  *head_tied = c.tie_embeddings && !stored.contains(names.head);

  std::vector<std::string> missing, unexpected, mismatched;
  std::set<std::string, std::less<>> expected_names;
  for (const ExpectedTensor& e : expected) {
    expected_names.insert(e.name);
    auto it = stored.find(e.name);
    if (it == stored.end()) {
      missing.push_back("'" + e.name + "' " + shape_string(e.shape));
      continue;
    }
    const StoredTensor& s = it->second;
    if (s.shape != e.shape)
      mismatched.push_back("tensor '" + e.name + "'" + in_file(s.file) + " has shape " + shape_string(s.shape) +
                           " but the config expects " + shape_string(e.shape));
    if (!is_float_weight_dtype(s.dtype))
      mismatched.push_back("tensor '" + e.name + "'" + in_file(s.file) + " has dtype " +
                           std::string(dtype_name(s.dtype)) + ", expected F32, F16 or BF16");
  }
  for (const auto& [name, s] : stored)
    if (!expected_names.contains(name) && !is_ignored_hf_buffer(c.family, name))
      unexpected.push_back("'" + name + "'" + in_file(s.file));

  std::vector<std::string> problems;
  if (!missing.empty()) problems.push_back("missing tensor" + std::string(missing.size() > 1 ? "s " : " ") +
                                           join_limited(missing));
  if (!unexpected.empty())
    problems.push_back("unexpected tensor" + std::string(unexpected.size() > 1 ? "s " : " ") +
                       join_limited(unexpected) + " (not a " + std::string(family_name(c.family)) +
                       " parameter for this config.json)");
  if (!mismatched.empty()) problems.push_back(join_limited(mismatched));
  if (!problems.empty()) {
    std::string m = where + ": ";
    for (size_t i = 0; i < problems.size(); ++i) m += (i ? "; " : "") + problems[i];
    return Error{m};
  }
  *expected_out = std::move(expected);
  return Status::Ok();
}

Result<std::unique_ptr<HfCheckpoint>> HfCheckpoint::open(const std::string& dir, const HfCheckpointOptions& options) {
  Result<ModelConfig> config = resolve_model("hf:" + dir);
  if (!config) return config.error();
  std::unique_ptr<HfCheckpoint> ck(new HfCheckpoint());
  ck->dir_ = dir;
  ck->config_ = std::move(*config);

  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::error_code ec;
  std::string where;
  std::map<std::string, StoredTensor, std::less<>> stored;
  if (fs::exists(single, ec)) {
    where = single.string();
    Result<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::open(where);
    if (!f) return f.error();
    ck->files_.push_back(std::move(*f));
  } else if (fs::exists(index, ec)) {
    where = index.string();
    Result<json> parsed = read_json_file(where);  // 16 MiB, 64 levels, finite numbers
    if (!parsed) return parsed.error();
    json j = std::move(*parsed);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return Error{where + ": expected an object with a \"weight_map\" object"};
    const json& map = j["weight_map"];
    if (map.empty()) return Error{where + ": weight_map is empty"};
    std::map<std::string, size_t> shard_index;  // file name -> files_ index
    std::map<std::string, std::string> mapped;  // tensor -> shard file name
    for (const auto& [name, v] : map.items()) {
      if (!v.is_string()) return Error{where + ": weight_map['" + name + "'] must be a file name, got " + v.dump()};
      const std::string shard = v.get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        return Error{where + ": weight_map['" + name + "'] = '" + shard +
                     "' must name a file in the model directory"};
      mapped[name] = shard;
      if (!shard_index.contains(shard)) {
        Result<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::open((fs::path(dir) / shard).string());
        if (!f) return Error{f.message() + " (a shard named by " + where + ")"};
        shard_index[shard] = ck->files_.size();
        ck->files_.push_back(std::move(*f));
      }
    }
    for (const auto& [name, shard] : mapped) {
      const SafetensorsFile& f = *ck->files_[shard_index.at(shard)];
      if (f.find(name) == nullptr)
        return Error{where + ": tensor '" + name + "' is mapped to " + shard + ", which has no such tensor"};
    }
    for (const auto& [shard, i] : shard_index)
      for (const SafetensorsEntry& e : ck->files_[i]->tensors()) {
        auto it = mapped.find(e.name);
        if (it == mapped.end())
          return Error{ck->files_[i]->path() + ": tensor '" + e.name + "' is not in " + where + "'s weight_map"};
        if (it->second != shard)
          return Error{ck->files_[i]->path() + ": tensor '" + e.name + "' is also in " + it->second +
                       ", where " + where + " maps it"};
      }
  } else {
    return Error{dir + ": no model.safetensors or model.safetensors.index.json in the model directory"};
  }

  for (const auto& f : ck->files_)
    for (const SafetensorsEntry& e : f->tensors()) {
      stored[e.name] = StoredTensor{f->path(), e.dtype, e.shape};
      ck->tensors_[e.name] = Located{f.get(), &e};
    }
  GB_RETURN_IF_ERROR(validate_hf_tensors(ck->config_, stored, where, &ck->expected_, &ck->head_tied_));
  const HfEmbeddingNames names =
      hf_embedding_names(ck->config_.family, ck->config_.family == Family::kGpt2 && !stored.contains("transformer.wte.weight")
                                           ? ""
                                           : "transformer.");
  ck->embed_name_ = names.embed;
  ck->head_name_ = names.head;

  if (options.check_finite) {
    for (const ExpectedTensor& e : ck->expected_) {
      auto it = ck->tensors_.find(e.name);
      if (it == ck->tensors_.end()) continue;  // the tied head
      const TensorView v = it->second.file->view(*it->second.entry);
      const int64_t i = first_non_finite(v);
      if (i >= 0) {
        const float x = element_as_f32(v, i);
        return Error{it->second.file->path() + ": tensor '" + e.name + "' has " +
                     (std::isnan(x) ? "a NaN" : "an infinity") + " at element " + std::to_string(i) + " of " +
                     std::to_string(v.numel()) + " (finite-weights check)"};
      }
    }
  }
  return ck;
}

Result<TensorView> HfCheckpoint::tensor(std::string_view name) const {
  if (head_tied_ && name == head_name_) name = embed_name_;
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return Error{dir_ + ": the checkpoint has no tensor '" + std::string(name) + "'"};
  return it->second.file->view(*it->second.entry);
}

std::string HfCheckpoint::file_of(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? "" : it->second.file->path();
}

uint64_t HfCheckpoint::parameter_bytes() const {
  uint64_t n = 0;
  for (const ExpectedTensor& e : expected_) {
    auto it = tensors_.find(e.name);
    if (it != tensors_.end()) n += it->second.entry->end - it->second.entry->begin;
  }
  return n;
}

}  // namespace gb::engine

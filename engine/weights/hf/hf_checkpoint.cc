// Hugging Face model directories: config + safetensors, validated (engine/weights/hf/hf_checkpoint.h).
#include "engine/weights/hf/hf_checkpoint.h"

#include "common/json_parse.h"
#include "common/strings.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;


std::string in_file(const std::string& file) { return file.empty() ? "" : " in " + file; }

}  // namespace


bool is_ignored_hf_buffer(Family family, std::string_view name) {
  switch (family) {
    case Family::kGpt2:
      return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias");
    case Family::kGptNeoX:
      return name.ends_with(".attention.bias") || name.ends_with(".attention.masked_bias") ||
             name.ends_with(".attention.rotary_emb.inv_freq");
    default:
      return name.ends_with(".self_attn.rotary_emb.inv_freq");
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

  std::set<std::string, std::less<>> companions;  // the scale arrays of packed matrices
  for (const auto& f : ck->files_) {
    GB_RETURN_IF_ERROR(ck->read_packed(*f, &companions));
  }
  for (const auto& f : ck->files_)
    for (const SafetensorsEntry& e : f->tensors()) {
      ck->tensors_[e.name] = Located{f.get(), &e};
      if (companions.contains(e.name)) continue;
      auto pk = ck->packed_.find(e.name);
      if (pk != ck->packed_.end())  // checked against the config by its logical shape
        stored[e.name] = StoredTensor{f->path(), DType::kF32, {e.shape[0], pk->second.info.cols}};
      else
        stored[e.name] = StoredTensor{f->path(), e.dtype, e.shape};
    }
  GB_RETURN_IF_ERROR(ck->read_awq_gptq(&stored));
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

Status HfCheckpoint::read_packed(const SafetensorsFile& f, std::set<std::string, std::less<>>* companions) {
  Result<std::map<std::string, PackedTensorInfo>> infos = parse_packed_tensors(f.metadata(), f.path());
  if (!infos) return infos.error();
  if (f.metadata().contains(kQuantLayoutKey) && quantized_metadata_.empty()) quantized_metadata_ = f.metadata();
  for (const auto& [name, info] : *infos) {
    const std::string at = f.path() + ": packed tensor '" + name + "'";
    const SafetensorsEntry* codes = f.find(name);
    if (codes == nullptr) return Error{at + " is named in __metadata__ but the file does not hold it"};
    if (codes->dtype != DType::kU8 || codes->shape.size() != 2)
      return Error{at + " is " + std::string(dtype_name(codes->dtype)) + " " + shape_string(codes->shape) +
                   ", expected U8 [rows, row_bytes]"};
    Packed p;
    p.info = info;
    p.file = &f;
    const kernels::WeightCodec c = info.spec.codec;
    const bool int_scaled = c == kernels::WeightCodec::kInt8 || c == kernels::WeightCodec::kFp8;
    const bool bnb = c == kernels::WeightCodec::kNf4 || c == kernels::WeightCodec::kFp4;
    const bool row = int_scaled && info.spec.layout == kernels::ScaleLayout::kRow;
    auto companion = [&](const std::string& n, DType want, const SafetensorsEntry** out) -> Status {
      const SafetensorsEntry* e = f.find(n);
      if (e == nullptr) return Error{at + ": its array '" + n + "' is missing"};
      if (e->dtype != want)
        return Error{at + ": its array '" + n + "' is " + std::string(dtype_name(e->dtype)) + ", expected " +
                     std::string(dtype_name(want))};
      companions->insert(n);
      *out = e;
      return Status::Ok();
    };
    if (int_scaled || bnb || c == kernels::WeightCodec::kInt4)
      GB_RETURN_IF_ERROR(companion(scales_tensor(name),
                                   row || (bnb && !info.spec.double_quant) ? DType::kF32
                                   : bnb ? DType::kU8 : DType::kF16,
                                   &p.scales));
    if (c == kernels::WeightCodec::kInt4) GB_RETURN_IF_ERROR(companion(zeros_tensor(name), DType::kF16, &p.zeros));
    if (bnb && info.spec.double_quant) {
      GB_RETURN_IF_ERROR(companion(dq_scales_tensor(name), DType::kF32, &p.dq_scales));
      GB_RETURN_IF_ERROR(companion(dq_offsets_tensor(name), DType::kF32, &p.dq_offsets));
    }
    auto bytes = [](const SafetensorsEntry* e) -> size_t { return e ? e->end - e->begin : 0; };
    GB_RETURN_IF_ERROR(kernels::check_quantized_sizes(
        info.spec, codes->shape[0], info.cols,
        {bytes(codes), bytes(p.scales), bytes(p.zeros), bytes(p.dq_scales) / 4, bytes(p.dq_offsets) / 4}, at));
    packed_[name] = p;
  }
  return Status::Ok();
}

Status HfCheckpoint::read_awq_gptq(std::map<std::string, StoredTensor, std::less<>>* stored) {
  Result<HfQuantConfig> hq = read_hf_quant_config((fs::path(dir_) / "config.json").string());
  if (!hq) return hq.error();
  hf_quant_ = *hq;
  if (hq->method == HfQuantConfig::Method::kNone) return Status::Ok();
  for (const ExpectedTensor& e : expected_hf_tensors(config_, "transformer.")) {
    if (e.shape.size() != 2 || !e.name.ends_with(".weight")) continue;
    const std::string base = e.name.substr(0, e.name.size() - 7);
    auto qw = tensors_.find(qweight_name(base));
    if (qw == tensors_.end()) continue;  // stored unquantized (the embedding, the head)
    HfQuantArrays a;
    a.file = qw->second.file;
    a.qweight = qw->second.entry;
    const std::string where = a.file->path() + ": " + hq->name() + " linear '" + base + "'";
    std::vector<std::string> arrays = {qweight_name(base), qzeros_name(base), qscales_name(base)};
    if (hq->method == HfQuantConfig::Method::kGptq) arrays.push_back(g_idx_name(base));
    for (size_t i = 1; i < arrays.size(); ++i) {
      auto it = tensors_.find(arrays[i]);
      if (it == tensors_.end()) continue;  // reported as missing by the check
      if (it->second.file != a.file)
        return Error{where + ": its " + arrays[i] + " is in " + it->second.file->path() + ", not beside its qweight"};
      (i == 1 ? a.qzeros : i == 2 ? a.scales : a.g_idx) = it->second.entry;
    }
    GB_RETURN_IF_ERROR(check_hf_quant_arrays(*hq, a, e.shape[0], e.shape[1], where));
    for (const std::string& n : arrays) stored->erase(n);
    (*stored)[e.name] = StoredTensor{a.file->path(), DType::kF32, e.shape};
    hf_packed_[e.name] = a;
  }
  return Status::Ok();
}

Result<TensorView> HfCheckpoint::tensor(std::string_view name) const {
  if (head_tied_ && name == head_name_) name = embed_name_;
  if (auto hp = hf_packed_.find(name); hp != hf_packed_.end()) {
    // An AWQ/GPTQ linear, unpacked into int4 (or f32 for act-order GPTQ).
    const auto expected = std::find_if(expected_.begin(), expected_.end(),
                                       [&](const ExpectedTensor& e) { return e.name == name; });
    GB_CHECK(expected != expected_.end());
    Result<std::shared_ptr<kernels::QuantizedMatrix>> q =
        unpack_hf_quant(hf_quant_, hp->second, expected->shape[0], expected->shape[1],
                        hp->second.file->path() + ": " + hf_quant_.name() + " linear '" + std::string(name) + "'");
    if (!q) return q.error();
    TensorView v;
    v.shape = expected->shape;
    v.data = (*q)->codes.data();
    v.packed = (*q)->spec.codec;
    v.quantized = std::move(*q);
    return v;
  }
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return Error{dir_ + ": the checkpoint has no tensor '" + std::string(name) + "'"};
  auto pk = packed_.find(name);
  if (pk == packed_.end()) return it->second.file->view(*it->second.entry);
  // A packed matrix: every array copied out of the mapping (aligned, owned by the view).
  const Packed& p = pk->second;
  auto q = std::make_shared<kernels::QuantizedMatrix>();
  q->spec = p.info.spec;
  q->rows = it->second.entry->shape[0];
  q->cols = p.info.cols;
  q->row_bytes = kernels::codec_row_bytes(q->spec.codec, q->cols);
  auto copy = [&](const SafetensorsEntry* e, std::vector<uint8_t>& out) {
    if (e == nullptr) return;
    const uint8_t* b = p.file->view(*e).bytes();
    out.assign(b, b + (e->end - e->begin));
  };
  auto copy_f32 = [&](const SafetensorsEntry* e, std::vector<float>& out) {
    if (e == nullptr) return;
    out.resize((e->end - e->begin) / 4);
    std::memcpy(out.data(), p.file->view(*e).bytes(), out.size() * 4);
  };
  copy(it->second.entry, q->codes);
  copy(p.scales, q->scales);
  copy(p.zeros, q->zeros);
  copy_f32(p.dq_scales, q->dq_scales);
  copy_f32(p.dq_offsets, q->dq_offsets);
  TensorView v;
  v.shape = {q->rows, q->cols};
  v.data = q->codes.data();
  v.packed = q->spec.codec;
  v.quantized = std::move(q);
  return v;
}

std::string HfCheckpoint::file_of(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? "" : it->second.file->path();
}

uint64_t HfCheckpoint::parameter_bytes() const {
  uint64_t n = 0;
  for (const ExpectedTensor& e : expected_) {
    auto it = tensors_.find(e.name);
    if (auto hp = hf_packed_.find(e.name); hp != hf_packed_.end()) {
      for (const SafetensorsEntry* a : {hp->second.qweight, hp->second.qzeros, hp->second.scales, hp->second.g_idx})
        if (a != nullptr) n += a->end - a->begin;
      continue;
    }
    if (it == tensors_.end()) continue;
    n += it->second.entry->end - it->second.entry->begin;
    auto pk = packed_.find(e.name);
    if (pk == packed_.end()) continue;
    for (const SafetensorsEntry* c : {pk->second.scales, pk->second.zeros, pk->second.dq_scales, pk->second.dq_offsets})
      if (c != nullptr) n += c->end - c->begin;
  }
  return n;
}

}  // namespace gb::engine

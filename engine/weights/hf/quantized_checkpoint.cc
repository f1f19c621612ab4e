// Saved quantized models (engine/weights/hf/quantized_checkpoint.h): the metadata
// parser and the writer.
#include "engine/weights/hf/quantized_checkpoint.h"

#include <unistd.h>

#include <cmath>
#include <deque>
#include <filesystem>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/json_parse.h"
#include "engine/spec/model_tensors.h"
#include "engine/weights/hf/safetensors.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
using kernels::QuantizedMatrix;
using kernels::QuantSpec;
using kernels::ScaleLayout;
using kernels::WeightCodec;
using nlohmann::json;

constexpr const char* kLayoutNames[] = {"none", "row", "group"};

std::optional<WeightCodec> codec_by_name(const std::string& name) {
  for (int c = 0; c <= static_cast<int>(WeightCodec::kQ6_K); ++c)
    if (name == kernels::codec_name(static_cast<WeightCodec>(c))) return static_cast<WeightCodec>(c);
  return std::nullopt;
}

bool plain(WeightCodec c) { return c == WeightCodec::kF32 || c == WeightCodec::kF16 || c == WeightCodec::kBF16; }

DType plain_dtype(WeightCodec c) {
  return c == WeightCodec::kF16 ? DType::kF16 : c == WeightCodec::kBF16 ? DType::kBF16 : DType::kF32;
}

// What Model::load keeps the embedding (and bitsandbytes' output head) in: f16 for
// formats of 16 bits or fewer, bf16 for bf16, f32 for f32.
QuantSpec sixteen_bit(const WeightFormat& f) {
  QuantSpec s;
  s.codec = f.codec == WeightCodec::kF32 ? WeightCodec::kF32
            : f.codec == WeightCodec::kBF16 ? WeightCodec::kBF16 : WeightCodec::kF16;
  return s;
}

TensorView view_of(DType d, std::vector<int64_t> shape, const void* data) {
  TensorView v;
  v.dtype = d;
  v.shape = std::move(shape);
  v.data = data;
  return v;
}

}  // namespace

Result<std::map<std::string, PackedTensorInfo>> parse_packed_tensors(const std::map<std::string, std::string>& metadata,
                                                                     const std::string& where) {
  std::map<std::string, PackedTensorInfo> out;
  auto layout = metadata.find(kQuantLayoutKey);
  if (layout == metadata.end()) return out;
  const std::string at = where + ": __metadata__";
  if (layout->second != kQuantLayoutVersion)
    return Error{at + "[\"" + kQuantLayoutKey + "\"]: layout '" + layout->second + "' is not one this build reads (" +
                 kQuantLayoutVersion + ")"};
  auto tensors = metadata.find(kQuantTensorsKey);
  if (tensors == metadata.end()) return Error{at + ": \"" + kQuantTensorsKey + "\" is missing"};
  Result<json> j = parse_json(tensors->second, at + "[\"" + kQuantTensorsKey + "\"]");
  if (!j) return j.error();
  const std::string base = at + "[\"" + kQuantTensorsKey + "\"]";
  if (!j->is_object()) return Error{base + ": expected an object NAME -> {codec, cols, ...}"};
  for (const auto& [name, v] : j->items()) {
    const std::string p = json_path_key(base, name);
    if (!v.is_object()) return Error{p + ": expected an object {codec, cols, scale_layout, group, ...}"};
    auto str = [&](const char* k) -> Result<std::string> {
      if (!v.contains(k) || !v[k].is_string()) return Error{p + "." + k + ": expected a string"};
      return v[k].get<std::string>();
    };
    auto integer = [&](const char* k) -> Result<int64_t> {
      if (!v.contains(k) || !v[k].is_number_integer() || v[k].get<int64_t>() < 0)
        return Error{p + "." + k + ": expected a non-negative integer"};
      return v[k].get<int64_t>();
    };
    auto boolean = [&](const char* k) -> Result<bool> {
      if (!v.contains(k) || !v[k].is_boolean()) return Error{p + "." + k + ": expected true or false"};
      return v[k].get<bool>();
    };
    PackedTensorInfo info;
    Result<std::string> codec = str("codec"), sl = str("scale_layout");
    if (!codec) return codec.error();
    if (!sl) return sl.error();
    std::optional<WeightCodec> c = codec_by_name(*codec);
    if (!c || plain(*c)) return Error{p + ".codec: '" + *codec + "' is not a packed weight codec"};
    info.spec.codec = *c;
    bool found = false;
    for (int i = 0; i < 3; ++i)
      if (*sl == kLayoutNames[i]) {
        info.spec.layout = static_cast<ScaleLayout>(i);
        found = true;
      }
    if (!found) return Error{p + ".scale_layout: '" + *sl + "' is not none, row or group"};
    Result<int64_t> cols = integer("cols"), group = integer("group");
    Result<bool> per_tensor = boolean("per_tensor"), dq = boolean("double_quant");
    if (!cols) return cols.error();
    if (!group) return group.error();
    if (!per_tensor) return per_tensor.error();
    if (!dq) return dq.error();
    info.cols = *cols;
    info.spec.group = *group;
    info.spec.per_tensor = *per_tensor;
    info.spec.double_quant = *dq;
    out[name] = info;
  }
  return out;
}

Status write_quantized_checkpoint(WeightSource& source, const std::string& source_dir, const WeightFormat& format,
                                  const QuantizedModelIdentity& identity, const std::string& out_dir) {
  const ModelConfig& c = source.config();
  const std::string what = "quantize " + source.describe() + " as " + format.name;
  if (c.family == Family::kGpt2 || c.family == Family::kGptNeoX)
    return Error{what + ": " + std::string(family_name(c.family)) +
                 " checkpoints are rearranged at load (GPT-2's Conv1D, GPT-NeoX's interleaved qkv) and cannot be "
                 "saved packed yet; quantize them at load time with weight_format"};
  if (format.fake) return Error{what + ": fake formats are quantized at load time and held in bf16: nothing to save"};
  if (format.activations != "f32")
    return Error{what + ": activation quantization (" + format.activations + ") is not supported by the engine yet"};
  std::error_code ec;
  if (fs::exists(fs::path(out_dir) / "model.safetensors", ec) ||
      fs::exists(fs::path(out_dir) / "model.safetensors.index.json", ec))
    return Error{out_dir + ": already holds a model; give an empty or new directory"};

  const HfEmbeddingNames names = hf_embedding_names(c.family, "");
  std::vector<std::shared_ptr<QuantizedMatrix>> held;
  std::deque<std::vector<uint8_t>> copies;  // a deque: pointers into it stay valid
  std::vector<SafetensorsWriteEntry> entries;
  json packed = json::object();
  for (const ExpectedTensor& e : expected_hf_tensors(c, "")) {
    Result<TensorView> t = source.tensor(e.name);
    if (!t) return t.error();
    if (t->shape != e.shape)
      return Error{source.describe() + ": tensor " + e.name + " has shape " + shape_string(t->shape) + ", expected " +
                   shape_string(e.shape)};
    if (e.shape.size() != 2) {  // norms and biases: as stored
      if (t->packed || !is_float_weight_dtype(t->dtype))
        return Error{source.describe() + ": tensor " + e.name + " is not F32, F16 or BF16"};
      copies.emplace_back(t->bytes(), t->bytes() + t->nbytes());
      entries.push_back({e.name, view_of(t->dtype, t->shape, copies.back().data())});
      source.release_tensors();
      continue;
    }
    std::vector<float> w = to_f32(*t);
    source.release_tensors();
    for (size_t i = 0; i < w.size(); ++i)
      if (!std::isfinite(w[i]))
        return Error{source.describe() + ": tensor " + e.name + " has a non-finite value (NaN or infinity) at element " +
                     std::to_string(i)};
    const bool embed = e.name == names.embed;
    const bool head16 = e.name == names.head && format.head_in_16_bits;
    const QuantSpec spec = embed || head16 ? sixteen_bit(format) : quant_spec(format);
    Result<QuantizedMatrix> q =
        kernels::quantize_matrix(spec, w.data(), e.shape[0], e.shape[1], source.describe() + ": " + e.name);
    if (!q) return Error{"weight format '" + format.name + "': " + q.message()};
    held.push_back(std::make_shared<QuantizedMatrix>(std::move(*q)));
    const QuantizedMatrix& m = *held.back();
    const int64_t rows = m.rows;
    if (plain(spec.codec)) {
      entries.push_back({e.name, view_of(plain_dtype(spec.codec), e.shape, m.codes.data())});
      continue;
    }
    entries.push_back({e.name, view_of(DType::kU8, {rows, static_cast<int64_t>(m.row_bytes)}, m.codes.data())});
    const int64_t groups = spec.group > 0 ? m.cols / spec.group : 0;
    if (!m.scales.empty()) {
      const bool row = (spec.codec == WeightCodec::kInt8 || spec.codec == WeightCodec::kFp8) &&
                       spec.layout == ScaleLayout::kRow;
      const bool bnb = spec.codec == WeightCodec::kNf4 || spec.codec == WeightCodec::kFp4;
      const DType d = row ? DType::kF32 : bnb ? (spec.double_quant ? DType::kU8 : DType::kF32) : DType::kF16;
      const std::vector<int64_t> shape = row ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, groups};
      entries.push_back({scales_tensor(e.name), view_of(d, shape, m.scales.data())});
    }
    if (!m.zeros.empty()) entries.push_back({zeros_tensor(e.name), view_of(DType::kF16, {rows, groups}, m.zeros.data())});
    if (spec.double_quant) {
      const int64_t n = static_cast<int64_t>(m.dq_scales.size());
      entries.push_back({dq_scales_tensor(e.name), view_of(DType::kF32, {n}, m.dq_scales.data())});
      entries.push_back({dq_offsets_tensor(e.name), view_of(DType::kF32, {n}, m.dq_offsets.data())});
    }
    packed[e.name] = {{"codec", kernels::codec_name(spec.codec)},
                      {"cols", m.cols},
                      {"scale_layout", kLayoutNames[static_cast<int>(spec.layout)]},
                      {"per_tensor", spec.per_tensor},
                      {"group", spec.group},
                      {"double_quant", spec.double_quant}};
  }
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {kQuantLayoutKey, kQuantLayoutVersion},
      {kQuantFormatKey, format.name},
      {kQuantCodecKey, kernels::codec_name(format.codec)},
      {kQuantGroupKey, std::to_string(format.block_size)},
      {kQuantSourceKey, identity.source_model},
      {kQuantDigestKey, identity.source_digest},
      {kQuantTensorsKey, packed.dump()},
  };
  fs::create_directories(out_dir, ec);
  if (ec) return Error{out_dir + ": cannot create the directory: " + ec.message()};
  const fs::path final_path = fs::path(out_dir) / "model.safetensors";
  const fs::path tmp = fs::path(out_dir) / ("model.safetensors.tmp-" + std::to_string(::getpid()));
  GB_RETURN_IF_ERROR(write_safetensors(tmp.string(), entries, metadata));
  for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json"}) {
    const fs::path from = fs::path(source_dir) / f;
    if (!fs::exists(from, ec)) continue;
    fs::copy_file(from, fs::path(out_dir) / f, fs::copy_options::overwrite_existing, ec);
    if (ec) return Error{(fs::path(out_dir) / f).string() + ": cannot copy " + from.string() + ": " + ec.message()};
  }
  fs::rename(tmp, final_path, ec);
  if (ec) return Error{final_path.string() + ": cannot rename " + tmp.string() + ": " + ec.message()};
  return Status::Ok();
}

}  // namespace gb::engine

// AWQ and GPTQ packed linears read into int4 (engine/weights/hf/awq_gptq.h).
#include "engine/weights/hf/awq_gptq.h"

#include <cstring>
#include <vector>

#include "common/json_parse.h"

namespace gb::engine {
namespace {

using kernels::QuantizedMatrix;
using kernels::WeightCodec;

// AWQ's packing order and its inverse: output column 8c + j is nibble kAwqNibble[j].
constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

uint32_t u32_at(const uint8_t* p, size_t i) {
  uint32_t v;
  std::memcpy(&v, p + 4 * i, 4);
  return v;
}

uint16_t u16_at(const uint8_t* p, size_t i) {
  uint16_t v;
  std::memcpy(&v, p + 2 * i, 2);
  return v;
}

void put_u16(std::vector<uint8_t>& v, size_t i, uint16_t h) { std::memcpy(v.data() + 2 * i, &h, 2); }

}  // namespace

Result<HfQuantConfig> read_hf_quant_config(const std::string& path) {
  HfQuantConfig c;
  Result<nlohmann::json> j = read_json_file(path);
  if (!j) return j.error();
  if (!j->is_object() || !j->contains("quantization_config")) return c;
  const nlohmann::json& q = (*j)["quantization_config"];
  const std::string at = path + ": $.quantization_config";
  if (!q.is_object()) return Error{at + ": expected an object"};
  const std::string method = q.value("quant_method", "");
  if (method != "awq" && method != "gptq") return c;  // bitsandbytes, fp8, ...: not read here
  c.method = method == "awq" ? HfQuantConfig::Method::kAwq : HfQuantConfig::Method::kGptq;
  auto integer = [&](const char* k, int64_t fallback) -> Result<int64_t> {
    if (!q.contains(k)) return fallback;
    if (!q[k].is_number_integer()) return Error{at + "." + k + ": expected an integer"};
    return q[k].get<int64_t>();
  };
  Result<int64_t> bits = integer(method == "awq" && q.contains("w_bit") ? "w_bit" : "bits", 4);
  if (!bits) return bits.error();
  if (*bits != 4) return Error{at + ".bits: " + std::to_string(*bits) + "-bit " + method + " is not supported (4 only)"};
  Result<int64_t> group = integer(method == "awq" && q.contains("q_group_size") ? "q_group_size" : "group_size", 128);
  if (!group) return group.error();
  if (*group != -1 && *group <= 0) return Error{at + ".group_size: expected a positive size or -1"};
  c.group = *group == -1 ? 0 : *group;
  if (c.method == HfQuantConfig::Method::kAwq) {
    const std::string version = q.value("version", "gemm");
    if (version != "gemm" && version != "GEMM")
      return Error{at + ".version: AWQ '" + version + "' packing is not supported (gemm only)"};
    if (q.contains("zero_point") && !(q["zero_point"].is_boolean() && q["zero_point"].get<bool>()))
      return Error{at + ".zero_point: AWQ without zero points is not supported"};
  } else {
    const std::string fmt = q.value("checkpoint_format", "gptq");
    if (fmt != "gptq") return Error{at + ".checkpoint_format: '" + fmt + "' is not supported (gptq, i.e. v1)"};
    if (q.contains("desc_act")) {
      if (!q["desc_act"].is_boolean()) return Error{at + ".desc_act: expected true or false"};
      c.desc_act = q["desc_act"].get<bool>();
    }
  }
  return c;
}

Status check_hf_quant_arrays(const HfQuantConfig& c, const HfQuantArrays& a, int64_t out, int64_t in,
                             const std::string& where) {
  const int64_t g = c.group > 0 ? c.group : in;
  if (out % 8 != 0 || in % 8 != 0 || in % g != 0)
    return Error{where + ": a " + std::to_string(out) + "x" + std::to_string(in) + " linear does not fit " + c.name() +
                 "'s packing (out and in multiples of 8, in of the group size " + std::to_string(g) + ")"};
  const int64_t groups = in / g;
  const bool awq = c.method == HfQuantConfig::Method::kAwq;
  auto check = [&](const char* what, const SafetensorsEntry* e, DType d, std::vector<int64_t> shape) -> Status {
    if (e == nullptr) return Error{where + ": its " + what + " is missing"};
    if (e->dtype != d || e->shape != shape)
      return Error{where + ": its " + what + " is " + std::string(dtype_name(e->dtype)) + " " + shape_string(e->shape) +
                   ", expected " + std::string(dtype_name(d)) + " " + shape_string(shape)};
    return Status::Ok();
  };
  GB_RETURN_IF_ERROR(check("qweight", a.qweight, DType::kI32, awq ? std::vector<int64_t>{in, out / 8}
                                                                  : std::vector<int64_t>{in / 8, out}));
  GB_RETURN_IF_ERROR(check("qzeros", a.qzeros, DType::kI32, {groups, out / 8}));
  GB_RETURN_IF_ERROR(check("scales", a.scales, DType::kF16, {groups, out}));
  if (!awq) GB_RETURN_IF_ERROR(check("g_idx", a.g_idx, DType::kI32, {in}));
  return Status::Ok();
}

Result<std::shared_ptr<QuantizedMatrix>> unpack_hf_quant(const HfQuantConfig& c, const HfQuantArrays& a, int64_t out,
                                                          int64_t in, const std::string& where) {
  const int64_t g = c.group > 0 ? c.group : in, groups = in / g;
  const bool awq = c.method == HfQuantConfig::Method::kAwq;
  const uint8_t* qw = a.file->view(*a.qweight).bytes();
  const uint8_t* qz = a.file->view(*a.qzeros).bytes();
  const uint8_t* sc = a.file->view(*a.scales).bytes();
  // Codes q[i][o], zero points z[group][o] (GPTQ v1: nibble + 1) and each input row's group.
  auto code = [&](int64_t i, int64_t o) -> int {
    if (awq) return static_cast<int>(u32_at(qw, static_cast<size_t>(i * (out / 8) + o / 8)) >> (4 * kAwqNibble[o % 8])) & 15;
    return static_cast<int>(u32_at(qw, static_cast<size_t>((i / 8) * out + o)) >> (4 * (i % 8))) & 15;
  };
  auto zero = [&](int64_t grp, int64_t o) -> int {
    const uint32_t word = u32_at(qz, static_cast<size_t>(grp * (out / 8) + o / 8));
    return awq ? static_cast<int>(word >> (4 * kAwqNibble[o % 8])) & 15 : (static_cast<int>(word >> (4 * (o % 8))) & 15) + 1;
  };
  std::vector<int64_t> group_of(static_cast<size_t>(in));
  bool contiguous = true;
  for (int64_t i = 0; i < in; ++i) {
    int64_t gi = i / g;
    if (!awq) {
      gi = static_cast<int32_t>(u32_at(a.file->view(*a.g_idx).bytes(), static_cast<size_t>(i)));
      if (gi < 0 || gi >= groups)
        return Error{where + ": g_idx[" + std::to_string(i) + "] = " + std::to_string(gi) + " is not a group (0 to " +
                     std::to_string(groups - 1) + ")"};
    }
    group_of[static_cast<size_t>(i)] = gi;
    contiguous = contiguous && gi == i / g;
  }
  auto q = std::make_shared<QuantizedMatrix>();
  q->rows = out;
  q->cols = in;
  if (!contiguous) {
    // Act-order: the exact values s (q - z), in f32.
    q->spec.codec = WeightCodec::kF32;
    q->row_bytes = kernels::codec_row_bytes(WeightCodec::kF32, in);
    q->codes.resize(q->row_bytes * static_cast<size_t>(out));
    auto* w = reinterpret_cast<float*>(q->codes.data());
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        const int64_t grp = group_of[static_cast<size_t>(i)];
        const float s = kernels::f16_to_f32(u16_at(sc, static_cast<size_t>(grp * out + o)));
        w[o * in + i] = s * (static_cast<float>(code(i, o)) - static_cast<float>(zero(grp, o)));
      }
    return q;
  }
  q->spec.codec = WeightCodec::kInt4;
  q->spec.layout = kernels::ScaleLayout::kGroup;
  q->spec.group = g;
  q->row_bytes = kernels::codec_row_bytes(WeightCodec::kInt4, in);
  q->codes.assign(q->row_bytes * static_cast<size_t>(out), 0);
  q->scales.resize(static_cast<size_t>(out * groups) * 2);
  q->zeros.resize(static_cast<size_t>(out * groups) * 2);
  for (int64_t o = 0; o < out; ++o) {
    uint8_t* row = q->codes.data() + o * static_cast<int64_t>(q->row_bytes);
    for (int64_t i = 0; i < in; ++i)
      row[i / 2] = static_cast<uint8_t>(row[i / 2] | ((i & 1) ? code(i, o) << 4 : code(i, o)));
    for (int64_t grp = 0; grp < groups; ++grp) {
      put_u16(q->scales, static_cast<size_t>(o * groups + grp), u16_at(sc, static_cast<size_t>(grp * out + o)));
      put_u16(q->zeros, static_cast<size_t>(o * groups + grp), kernels::f32_to_f16(static_cast<float>(zero(grp, o))));
    }
  }
  return q;
}

}  // namespace gb::engine

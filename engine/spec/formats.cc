// The weight and KV-cache format tables (engine/spec/formats.h). Effective bits count
// what a format stores per weight beyond its codes: group scales and zero points,
// block absmax values, and per-row scales taken over rows of kNominalRowLength.
#include "engine/spec/formats.h"

#include <charconv>

#include "common/strings.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::engine {
namespace {

// Per-row (per output channel) scales are one number per row; rows are counted as
// this many weights, the hidden size of a 7B-class model.
constexpr double kNominalRowLength = 4096;
// The head_dim at which the KV table's effective bits are given (a 7B-class model's).
constexpr double kKvHeadDim = 128;
constexpr std::string_view kFakePrefix = "fake:";

using kernels::ScaleLayout;
using kernels::WeightCodec;

WeightFormat row(std::string name, double nominal, double effective, int64_t block,
                 std::string layout, bool symmetric, std::string description) {
  WeightFormat f;
  f.name = std::move(name);
  f.nominal_bits = nominal;
  f.effective_bits = effective;
  f.block_size = block;
  f.scale_layout = std::move(layout);
  f.symmetric = symmetric;
  f.description = std::move(description);
  return f;
}

WeightFormat with_codec(WeightFormat f, WeightCodec codec, ScaleLayout layout = ScaleLayout::kNone) {
  f.codec = codec;
  f.codec_layout = layout;
  return f;
}

std::vector<WeightFormat> make_weight_formats() {
  std::vector<WeightFormat> v;
  v.push_back(with_codec(row("f32", 32, 32, 0, "none", true, "IEEE float32"), WeightCodec::kF32));
  v.push_back(with_codec(row("f16", 16, 16, 0, "none", true, "IEEE float16"), WeightCodec::kF16));
  v.push_back(with_codec(row("bf16", 16, 16, 0, "none", true, "bfloat16"), WeightCodec::kBF16));

  // int8 and fp8 (e4m3): one scale per tensor (negligible), per row (f32), or per group (f16).
  for (const std::string elem : {"int8", "fp8"}) {
    const std::string what = elem == "int8" ? "symmetric int8" : "fp8 e4m3";
    const WeightCodec codec = elem == "int8" ? WeightCodec::kInt8 : WeightCodec::kFp8;
    WeightFormat tensor = with_codec(row(elem + "-tensor", 8, 8, 0, "tensor", true, what + ", one f32 scale per tensor"),
                                     codec, ScaleLayout::kRow);
    tensor.per_tensor = true;
    v.push_back(tensor);
    v.push_back(with_codec(row(elem + "-channel", 8, 8 + 32 / kNominalRowLength, 0, "row", true,
                               what + ", one f32 scale per output row"),
                           codec, ScaleLayout::kRow));
    for (int g : {32, 64, 128, 256, 512})
      v.push_back(with_codec(row(elem + "-g" + std::to_string(g), 8, 8 + 16.0 / g, g, "group", true,
                                 what + ", one f16 scale per group of " + std::to_string(g)),
                             codec, ScaleLayout::kGroup));
  }
  for (int g : {32, 64, 128, 256})
    v.push_back(with_codec(row("int4-g" + std::to_string(g), 4, 4 + 32.0 / g, g, "group", false,
                               "asymmetric int4, f16 scale and f16 zero point per group of " + std::to_string(g)),
                           WeightCodec::kInt4, ScaleLayout::kGroup));

  // bitsandbytes 4-bit: f32 absmax per block of 64; double quantization stores the
  // absmax as int8 with one f32 scale per 256 blocks.
  for (const std::string elem : {"nf4", "fp4"}) {
    const WeightCodec codec = elem == "nf4" ? WeightCodec::kNf4 : WeightCodec::kFp4;
    WeightFormat plain = with_codec(row(elem + "-b64", 4, 4 + 32.0 / 64, 64, "block", true,
                                        elem + " (bitsandbytes), f32 absmax per block of 64"),
                                    codec);
    plain.head_in_16_bits = true;
    v.push_back(plain);
    WeightFormat dq = with_codec(row(elem + "-b64-dq", 4, 4 + 8.0 / 64 + 32.0 / (64 * 256), 64, "block", true,
                                     elem + " (bitsandbytes) with double quantization: int8 absmax per block of 64, "
                                            "f32 scale per 256 blocks"),
                                 codec);
    dq.double_quant = true;
    dq.head_in_16_bits = true;
    v.push_back(dq);
  }
  // LLM.int8(): int8 weights with an f32 absmax per row. Outlier feature columns are
  // found in the activations at run time and multiplied in f16; the weights store
  // nothing extra for them.
  WeightFormat llm = with_codec(row("int8-llm", 8, 8 + 32 / kNominalRowLength, 0, "row", true,
                                    "LLM.int8() (bitsandbytes): int8 with f32 row absmax; activations int8 per token, input columns "
                                    "with an |x| >= llm_int8_threshold (6.0) multiplied in float (CPU)"),
                                WeightCodec::kInt8, ScaleLayout::kRow);
  llm.activations = "llm.int8";
  llm.head_in_16_bits = true;
  v.push_back(llm);

  // GGUF (llama.cpp) block formats; effective bits are llama.cpp's bits per weight.
  v.push_back(with_codec(row("q8_0", 8, 8.5, 32, "block", true, "GGUF q8_0: int8, f16 scale per block of 32"),
                         WeightCodec::kQ8_0));
  v.push_back(with_codec(row("q4_0", 4, 4.5, 32, "block", true, "GGUF q4_0: 4-bit, f16 scale per block of 32"),
                         WeightCodec::kQ4_0));
  v.push_back(with_codec(
      row("q4_1", 4, 5.0, 32, "block", false, "GGUF q4_1: 4-bit, f16 scale and min per block of 32"),
      WeightCodec::kQ4_1));
  v.push_back(with_codec(row("q5_0", 5, 5.5, 32, "block", true, "GGUF q5_0: 5-bit, f16 scale per block of 32"),
                         WeightCodec::kQ5_0));
  v.push_back(with_codec(
      row("q5_1", 5, 6.0, 32, "block", false, "GGUF q5_1: 5-bit, f16 scale and min per block of 32"),
      WeightCodec::kQ5_1));
  v.push_back(with_codec(row("q2_k", 2, 2.625, 256, "superblock", false,
                             "GGUF q2_K: 2-bit, 4-bit scales and mins per 16, f16 per superblock of 256"),
                         WeightCodec::kQ2_K));
  v.push_back(with_codec(row("q3_k", 3, 3.4375, 256, "superblock", true,
                             "GGUF q3_K: 3-bit, 6-bit scales per 16, f16 per superblock of 256"),
                         WeightCodec::kQ3_K));
  v.push_back(with_codec(row("q4_k", 4, 4.5, 256, "superblock", false,
                             "GGUF q4_K: 4-bit, 6-bit scales and mins per 32, f16 per superblock of 256"),
                         WeightCodec::kQ4_K));
  v.push_back(with_codec(row("q5_k", 5, 5.5, 256, "superblock", false,
                             "GGUF q5_K: 5-bit, 6-bit scales and mins per 32, f16 per superblock of 256"),
                         WeightCodec::kQ5_K));
  v.push_back(with_codec(row("q6_k", 6, 6.5625, 256, "superblock", true,
                             "GGUF q6_K: 6-bit, int8 scales per 16, f16 per superblock of 256"),
                         WeightCodec::kQ6_K));

  // W8A8 (SmoothQuant-style): weights per row with an f32 scale, activations
  // quantized per token at run time (the CPU backend's kernels/cpu/packed/
  // linear_w8a8.cc). +smooth multiplies the smoothing factors into the weights and
  // divides them out of the preceding norm (q|k|v, gate|up) or, for o_proj and
  // down_proj, out of x at run time (one f32 per input column, counted in the loaded
  // bytes, not in the effective bits).
  for (const std::string elem : {"int8", "fp8"})
    for (const std::string smooth : {"", "+smooth"}) {
      WeightFormat w = with_codec(row("w8a8-" + elem + smooth, 8, 8 + 32 / kNominalRowLength, 0, "row", true,
                                      "W8A8 " + elem + ": weights per row (f32 scale), activations per token (dynamic absmax), " +
                                          (elem == "int8" ? "int8 x int8 dot products" : "e4m3 x e4m3 on f32 tiles") +
                                          (smooth.empty() ? "" : ", SmoothQuant (smooth_alpha 0.5, calibrated)") +
                                          " (CPU)"),
                                  elem == "int8" ? WeightCodec::kInt8 : WeightCodec::kFp8, ScaleLayout::kRow);
      w.activations = elem;
      w.smooth = !smooth.empty();
      v.push_back(w);
    }
  return v;
}

const std::vector<WeightFormat>& weight_formats() {
  static const std::vector<WeightFormat> formats = make_weight_formats();
  return formats;
}

const WeightFormat* find_weight_format(std::string_view name) {
  for (const auto& f : weight_formats())
    if (f.name == name) return &f;
  return nullptr;
}

std::vector<std::string> base_names() {
  std::vector<std::string> names;
  for (const auto& f : weight_formats()) names.push_back(f.name);
  return names;
}

struct KvElementRow {
  std::string_view name;
  kernels::KvElement codec;
  double nominal_bits;
  const char* description;
};

constexpr KvElementRow kKvElements[] = {
    {"f32", kernels::KvElement::kF32, 32, "IEEE float32"},
    {"f16", kernels::KvElement::kF16, 16, "IEEE float16"},
    {"bf16", kernels::KvElement::kBF16, 16, "bfloat16"},
    {"int8", kernels::KvElement::kInt8, 8,
     "asymmetric int8, f16 scale and zero point per token and head, computed online"},
    {"fp8", kernels::KvElement::kFp8, 8, "fp8 e4m3fn, one f16 scale (absmax / 448) per token and head"},
    {"int4", kernels::KvElement::kInt4, 4, "asymmetric int4, f16 scale and zero point per token and head"},
    {"int4-g32", kernels::KvElement::kInt4G32, 4,
     "asymmetric int4, f16 scale and zero point per 32 elements of a head"},
    {"int8-calib", kernels::KvElement::kInt8Calib, 8,
     "int8 with a static scale and zero point per layer and head, zp=(min+max)/2, scale=(max-min)/255, "
     "from the kv_calibration file (reference 002)"},
};

// Parses the decimal digits at the start of `s` into `out`; returns how many were used.
size_t parse_count(std::string_view s, int64_t& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc()) return 0;
  return static_cast<size_t>(ptr - s.data());
}

}  // namespace

kernels::QuantSpec quant_spec(const WeightFormat& f) {
  kernels::QuantSpec s;
  s.codec = f.codec;
  s.layout = f.codec_layout;
  s.per_tensor = f.per_tensor;
  s.group = f.block_size;
  s.double_quant = f.double_quant;
  return s;
}

Result<WeightFormat> parse_weight_format(std::string_view name) {
  if (name.starts_with(kFakePrefix)) {
    std::string_view inner = name.substr(kFakePrefix.size());
    const WeightFormat* base = inner.starts_with(kFakePrefix) ? nullptr : find_weight_format(inner);
    if (base == nullptr)
      return Error{"unknown weight format '" + std::string(name) + "' (fake: takes one of: " +
                   join(base_names()) + ")"};
    // Quantize-dequantize: the codes' rounding, stored back in bf16.
    WeightFormat f = *base;
    f.name = std::string(name);
    f.nominal_bits = 16;
    f.effective_bits = 16;
    f.fake = true;
    f.description = "fake quantization (quantize-dequantize, stored in bf16) of " + base->description;
    return f;
  }
  if (const WeightFormat* f = find_weight_format(name)) return *f;
  return Error{"unknown weight format '" + std::string(name) + "' (known: " + join(weight_format_names()) +
               ")"};
}

Result<KvFormat> parse_kv_format(std::string_view name) {
  const size_t plus = name.find('+');
  const std::string_view elem = name.substr(0, plus);
  const KvElementRow* found = nullptr;
  for (const auto& e : kKvElements)
    if (e.name == elem) found = &e;
  if (found == nullptr)
    return Error{"unknown KV format '" + std::string(name) + "' (known: " + join(kv_format_names()) + ")"};

  KvFormat f;
  f.name = std::string(name);
  f.element = std::string(found->name);
  f.codec = found->codec;
  f.nominal_bits = found->nominal_bits;
  f.effective_bits = kv_effective_bits(f, static_cast<int64_t>(kKvHeadDim));
  f.description = found->description;
  if (plus == std::string_view::npos) return f;

  // "+sink{S}+win{W}"
  const std::string_view policy = name.substr(plus);
  const Error bad{"bad KV cache policy '" + std::string(policy) + "' in '" + std::string(name) +
                  "': expected +sink{S}+win{W} with S >= 0 and W >= 1, e.g. f16+sink4+win256"};
  std::string_view rest = policy;
  if (!rest.starts_with("+sink")) return bad;
  rest.remove_prefix(5);
  size_t used = parse_count(rest, f.sink_tokens);
  if (used == 0 || f.sink_tokens < 0) return bad;
  rest.remove_prefix(used);
  if (!rest.starts_with("+win")) return bad;
  rest.remove_prefix(4);
  used = parse_count(rest, f.window_tokens);
  if (used == 0 || used != rest.size() || f.window_tokens < 1) return bad;
  return f;
}

double kv_effective_bits(const KvFormat& format, int64_t head_dim) {
  if (head_dim < 1) head_dim = static_cast<int64_t>(kKvHeadDim);
  const kernels::KvSlotLayout one_head{format.codec, 1, head_dim};
  return static_cast<double>(one_head.slot_bytes()) * 8.0 / static_cast<double>(head_dim);
}

Result<ComputeDtype> parse_compute_dtype(std::string_view name) {
  for (ComputeDtype d : {ComputeDtype::kF32, ComputeDtype::kBf16, ComputeDtype::kF16})
    if (name == kernels::compute_dtype_name(d)) return d;
  return Error{"unknown compute dtype '" + std::string(name) + "': expected \"f32\", \"f16\" or \"bf16\""};
}

std::vector<std::string> weight_format_names() {
  std::vector<std::string> names = base_names();
  names.push_back("fake:<format>");
  return names;
}

std::vector<std::string> kv_format_names() {
  std::vector<std::string> names;
  for (const auto& e : kKvElements) names.emplace_back(e.name);
  names.push_back("<kv>+sink{S}+win{W}");
  return names;
}

}  // namespace gb::engine

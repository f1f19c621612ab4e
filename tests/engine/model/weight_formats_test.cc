// Models run in every weight format: each matrix quantized at load time (or kept as a
// GGUF file stores it) and computed on packed data; logits stay within the format's
// budget of the f32 model's, held bytes shrink with the format's bits, and a file's
// quantized tensors are refused in another format unless requantized.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/measure/backends/smooth_calibration.h"
#include "engine/model/model.h"
#include "engine/spec/format_support.h"
#include "engine/spec/model_tensors.h"
#include "engine/weights/hf/hf_checkpoint.h"
#include "engine/weights/hf/quantized_checkpoint.h"
#include "engine/weights/weight_source.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {
namespace weight_formats_test {

namespace fs = std::filesystem;

struct Outcome {
  std::vector<float> logits;
  uint64_t weight_bytes = 0;
};

Result<Outcome> run(const std::string& ref, const std::string& format, bool requantize = false,
                    ComputeDtype compute = ComputeDtype::kF32) {
  Result<std::unique_ptr<WeightSource>> w = open_weights(ref);
  if (!w) return w.error();
  Result<LoadOptions> o = load_options(format);
  if (!o) return o.error();
  o->requantize = requantize;
  o->compute = compute;
  std::unique_ptr<Backend> b = make_cpu_backend(2);
  Result<std::unique_ptr<Model>> m = Model::load(**w, *b, *o);
  if (!m) return m.error();
  Result<std::unique_ptr<KvCache>> c = (*m)->make_cache({}, 1);
  if (!c) return c.error();
  const std::vector<int32_t> ids = {1, 5, 9, 2, 7, 3, 11, 4};
  const SequenceStep step{0, ids};
  Outcome r;
  if (Status s = (*m)->forward({&step, 1}, **c, LogitsMode::kAll, &r.logits); !s.ok()) return s.error();
  r.weight_bytes = (*m)->weight_bytes();
  return r;
}

double rel_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
    den += double{b[i]} * b[i];
  }
  return std::sqrt(num / den);
}

// Logits of the activation-quantized formats against f32 (relative RMS, golden llama):
// per-token 8-bit activations on top of per-row 8-bit weights (measured: int8
// 0.020 to 0.029 with or without SmoothQuant or LLM.int8(), fp8 0.103 to 0.111).
constexpr double kMaxW8A8Int8LogitErr = 0.05;
constexpr double kMaxW8A8Fp8LogitErr = 0.16;

struct FormatCase {
  std::string format;
  double max_logit_err;  // relative RMS of all logits against f32
};

// The golden llama (GQA; rows of 64 and 128 elements) in every format whose blocks fit.
TEST(WeightFormats, GoldenLlamaRunsInEveryFormatThatFitsItsRows) {
  const std::string ref = "hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/llama_gqa";
  Result<Outcome> f32 = run(ref, "f32");
  ASSERT_TRUE(f32.ok()) << f32.message();
  const std::vector<FormatCase> cases = {
      {"f16", 2e-3},          {"bf16", 1e-2},        {"int8-channel", 0.03}, {"int8-tensor", 0.05},
      {"int8-g32", 0.03},     {"fp8-channel", 0.08}, {"fp8-g64", 0.08},      {"int4-g32", 0.25},
      {"nf4-b64", 0.25},      {"nf4-b64-dq", 0.25},  {"fp4-b64", 0.35},      {"q8_0", 0.03},
      {"q5_0", 0.12},         {"q5_1", 0.12},        {"q4_0", 0.25},         {"q4_1", 0.25},
      {"fake:int8-channel", 0.03}, {"fake:q4_0", 0.25},
  };
  for (const FormatCase& c : cases) {
    Result<Outcome> q = run(ref, c.format);
    ASSERT_TRUE(q.ok()) << c.format << ": " << q.message();
    const double err = rel_rms(q->logits, f32->logits);
    EXPECT_LT(err, c.max_logit_err) << c.format;
    EXPECT_GT(err, 0.0) << c.format << " computed exactly what f32 does";
    if (c.format.rfind("fake:", 0) != 0)
      EXPECT_LT(q->weight_bytes, f32->weight_bytes) << c.format << " holds no fewer bytes than f32";
  }
  // A format whose blocks do not fit names the format and the tensor.
  Result<Outcome> k = run(ref, "q4_k");
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.message().find("weight format 'q4_k': "), std::string::npos) << k.message();
  EXPECT_NE(k.message().find("blocks of 256"), std::string::npos) << k.message();
}

// A compute dtype (the `compute` parameter; reference 000's fp4 with bf16 compute) on
// the golden llama: bf16 and f16 compute move the logits of fp4-b64 (and of the f32
// model as stored) from f32 compute by a bounded, nonzero amount (measured: bf16
// BF16_MEASURED, f16 F16_MEASURED). The op itself equals a direct emulation:
// tests/engine/backend/cpu_backend_linear_test.cc.
TEST(WeightFormats, ComputeDtypeMovesTheLogitsByABoundedNonzeroAmount) {
  const std::string ref = "hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/llama_gqa";
  constexpr double kMaxBf16ComputeLogitErr = 0.03, kMaxF16ComputeLogitErr = 0.005;
  for (const std::string format : {"fp4-b64", ""}) {
    Result<Outcome> f32 = run(ref, format);
    ASSERT_TRUE(f32.ok()) << f32.message();
    for (const auto& [d, budget] : {std::pair{ComputeDtype::kBf16, kMaxBf16ComputeLogitErr},
                                    std::pair{ComputeDtype::kF16, kMaxF16ComputeLogitErr}}) {
      Result<Outcome> q = run(ref, format, false, d);
      ASSERT_TRUE(q.ok()) << q.message();
      const double err = rel_rms(q->logits, f32->logits);
      EXPECT_GT(err, 0.0) << format << " " << kernels::compute_dtype_name(d);
      EXPECT_LT(err, budget) << format << " " << kernels::compute_dtype_name(d);
      EXPECT_EQ(q->weight_bytes, f32->weight_bytes) << "the compute dtype rounds at run time, not in memory";
      std::printf("golden llama %s, %s compute: logits relative RMS error %.5f against f32 compute\n",
                  format.empty() ? "as stored" : format.c_str(), kernels::compute_dtype_name(d), err);
    }
  }
  // A format with an activation path of its own is refused, in the rule's words.
  Result<Outcome> w8a8 = run(ref, "w8a8-int8", false, ComputeDtype::kBf16);
  ASSERT_FALSE(w8a8.ok());
  EXPECT_NE(w8a8.message().find("compute dtype 'bf16' with weight format 'w8a8-int8'"), std::string::npos)
      << w8a8.message();
}

// The K types on llama.cpp's own small llama (rows of 256 and 768; random weights,
// so logits move far more than on a trained model): the error falls with the bits,
// and each K type is close to the simple type of its bits.
TEST(WeightFormats, PeerLlamaRunsInTheKTypes) {
  const std::string file = std::string(GB_SOURCE_DIR) + "/../shared/peers/llama-gguf/peer-llama-f16.gguf";
  if (!fs::exists(file)) GTEST_SKIP() << "peer GGUF files not found (../shared is absent)";
  Result<Outcome> f16 = run("gguf:" + file, "");
  ASSERT_TRUE(f16.ok()) << f16.message();
  std::map<std::string, double> err;
  for (const std::string f : {"q8_0", "q6_k", "q5_0", "q5_k", "q4_0", "q4_k", "q3_k", "q2_k"}) {
    Result<Outcome> q = run("gguf:" + file, f);
    ASSERT_TRUE(q.ok()) << f << ": " << q.message();
    err[f] = rel_rms(q->logits, f16->logits);
    EXPECT_GT(err[f], 0.0) << f;
    EXPECT_LT(q->weight_bytes, f16->weight_bytes) << f;
    std::printf("peer llama %s: logits relative RMS error %.4f, %llu weight bytes\n", f.c_str(), err[f],
                static_cast<unsigned long long>(q->weight_bytes));
  }
  EXPECT_LT(err["q8_0"], err["q6_k"]);
  EXPECT_LT(err["q6_k"], err["q5_k"]);
  EXPECT_LT(err["q5_k"], err["q4_k"]);
  EXPECT_LT(err["q4_k"], err["q3_k"]);
  EXPECT_LT(err["q3_k"], err["q2_k"]);
  // On Gaussian weights the K types' quantized scales cost about what their
  // asymmetric ranges gain (measured: q5_k 0.137 vs q5_0 0.117, q4_k 0.390 vs q4_0 0.437).
  EXPECT_LE(err["q5_k"], 1.3 * err["q5_0"]);
  EXPECT_LE(err["q4_k"], 1.3 * err["q4_0"]);
}

// llama.cpp's quantized files run as stored, their tensors in their own types: the
// bytes held are the file's tensors, and the logits computed on the packed blocks
// equal those of the same weights dequantized to f32 (to float rounding); naming
// another format is refused unless requantize is set. (Against the f16 file the
// logits of this random-weight model move by 1 to 40 %: its attention is nearly
// one-hot, so a small perturbation can flip which key a position attends to.)
TEST(WeightFormats, PeerQuantizedFilesRunAsStored) {
  const std::string dir = std::string(GB_SOURCE_DIR) + "/../shared/peers/llama-gguf";
  if (!fs::exists(dir + "/peer-llama-f16.gguf")) GTEST_SKIP() << "peer GGUF files not found (../shared is absent)";
  for (const std::string type : {"q8_0", "q6_k", "q5_0", "q5_1", "q4_0", "q4_1", "q4_k_m"}) {
    const std::string ref = "gguf:" + dir + "/peer-llama-" + type + ".gguf";
    Result<Outcome> packed = run(ref, "");
    ASSERT_TRUE(packed.ok()) << type << ": " << packed.message();
    Result<Outcome> widened = run(ref, "f32", /*requantize=*/true);
    ASSERT_TRUE(widened.ok()) << type << ": " << widened.message();
    Result<std::unique_ptr<WeightSource>> w = open_weights(ref);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(packed->weight_bytes, (*w)->parameter_bytes()) << type << ": held bytes are the file's tensors";
    EXPECT_GT(widened->weight_bytes, packed->weight_bytes) << type;
    EXPECT_LT(rel_rms(packed->logits, widened->logits), 1e-5) << type;
  }
  Result<Outcome> refused = run("gguf:" + dir + "/peer-llama-q4_0.gguf", "int8-channel");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("is stored as q4_0; weight format 'int8-channel' would quantize it again"),
            std::string::npos)
      << refused.message();
  EXPECT_TRUE(run("gguf:" + dir + "/peer-llama-q4_0.gguf", "int8-channel", true).ok());
}

// Model::load refuses exactly the formats the engine's rule (format_support.h) does,
// with its words, so that a grid refused before running and a job refused at load
// never disagree: every weight format (and its fake: form) on the golden llama.
TEST(WeightFormats, LoadRefusesExactlyWhatTheFormatRuleRefuses) {
  const std::string ref = "hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/llama_gqa";
  std::vector<std::string> names;
  for (const std::string& n : weight_format_names())
    if (n.find('<') == std::string::npos) names.insert(names.end(), {n, "fake:" + n});
  int refused = 0;
  for (const std::string& name : names) {
    Result<WeightFormat> f = parse_weight_format(name);
    ASSERT_TRUE(f.ok()) << f.message();
    Result<std::unique_ptr<WeightSource>> w = open_weights(ref);
    ASSERT_TRUE(w.ok()) << w.message();
    const std::vector<FormatProblem> rule = format_support_problems((*w)->config(), &*f, nullptr, "cpu");
    LoadOptions o;
    o.format = *f;
    std::unique_ptr<Backend> b = make_cpu_backend(1);
    if (f->smooth) {  // SmoothQuant loads with a calibration (a run-time input, not a format rule)
      Result<ActivationAbsmax> a = calibrate_activation_absmax(**w, *b, {{1, 5, 9, 2, 7, 3, 11, 4}});
      ASSERT_TRUE(a.ok()) << a.message();
      o.smooth_absmax = std::move(*a);
    }
    Result<std::unique_ptr<Model>> m = Model::load(**w, *b, o);
    EXPECT_EQ(m.ok(), rule.empty()) << name << ": " << (m.ok() ? "loaded" : m.message());
    if (!m.ok() && !rule.empty()) {
      EXPECT_NE(m.message().find(rule.front().what), std::string::npos) << name << ": " << m.message();
      ++refused;
    }
  }
  EXPECT_GT(refused, 10) << "the golden llama's rows of 64 refuse the 128+ groups and the K types";
}

TEST(WeightFormats, F16AndBf16AreHeldIn16Bits) {
  const std::string ref = "hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/llama_gqa";
  Result<Outcome> f32 = run(ref, "f32"), f16 = run(ref, "f16"), bf16 = run(ref, "bf16");
  ASSERT_TRUE(f32.ok() && f16.ok() && bf16.ok());
  // Every matrix at 2 bytes per element; norms stay f32, so a little over half.
  EXPECT_LT(f16->weight_bytes, f32->weight_bytes * 0.55);
  EXPECT_EQ(f16->weight_bytes, bf16->weight_bytes);
}

// The formats that quantize activations at run time (W8A8 per token, LLM.int8(),
// SmoothQuant calibrated on seeded token sequences) on the golden llama: logits
// within a named budget of f32's, and the activation quantization is real (each
// differs from its weight-only twin).
TEST(WeightFormats, ActivationQuantizedFormatsRunNearF32) {
  const std::string ref = "hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/llama_gqa";
  Result<Outcome> f32 = run(ref, "f32");
  ASSERT_TRUE(f32.ok()) << f32.message();
  Result<Outcome> channel = run(ref, "int8-channel"), fp8_channel = run(ref, "fp8-channel");
  ASSERT_TRUE(channel.ok() && fp8_channel.ok());
  std::vector<std::vector<int32_t>> samples;
  for (int i = 0; i < 2; ++i) {
    std::vector<int32_t> s;
    for (int k = 0; k < 16; ++k) s.push_back((7 * k + 3 * i + 1) % 90 + 1);
    samples.push_back(s);
  }
  const std::vector<FormatCase> cases = {{"w8a8-int8", kMaxW8A8Int8LogitErr},        {"w8a8-fp8", kMaxW8A8Fp8LogitErr},
                                         {"w8a8-int8+smooth", kMaxW8A8Int8LogitErr}, {"w8a8-fp8+smooth", kMaxW8A8Fp8LogitErr},
                                         {"int8-llm", kMaxW8A8Int8LogitErr},
                                         // weight-only, bf16 weights times s: checks the f32 path's act_mul
                                         {"fake:w8a8-int8+smooth", kMaxW8A8Int8LogitErr}};
  for (const FormatCase& c : cases) {
    Result<std::unique_ptr<WeightSource>> w = open_weights(ref);
    ASSERT_TRUE(w.ok());
    Result<LoadOptions> o = load_options(c.format);
    ASSERT_TRUE(o.ok()) << c.format << ": " << o.message();
    std::unique_ptr<Backend> b = make_cpu_backend(2);
    if (o->format->smooth) {
      Result<ActivationAbsmax> a = calibrate_activation_absmax(**w, *b, samples);
      ASSERT_TRUE(a.ok()) << a.message();
      o->smooth_absmax = std::move(*a);
    }
    Result<std::unique_ptr<Model>> m = Model::load(**w, *b, *o);
    ASSERT_TRUE(m.ok()) << c.format << ": " << m.message();
    Result<std::unique_ptr<KvCache>> cache = (*m)->make_cache({}, 1);
    ASSERT_TRUE(cache.ok());
    const std::vector<int32_t> ids = {1, 5, 9, 2, 7, 3, 11, 4};
    const SequenceStep step{0, ids};
    std::vector<float> logits;
    ASSERT_TRUE((*m)->forward({&step, 1}, **cache, LogitsMode::kAll, &logits).ok());
    const double err = rel_rms(logits, f32->logits);
    const double vs_weight_only = rel_rms(logits, c.format.find("fp8") != std::string::npos ? fp8_channel->logits
                                                                                              : channel->logits);
    std::printf("%s: logits relative RMS error %.5f against f32, %.5f against weight-only\n", c.format.c_str(), err,
                vs_weight_only);
    EXPECT_LT(err, c.max_logit_err) << c.format;
    EXPECT_GT(vs_weight_only, 0.0) << c.format << ": the activations were not quantized";
  }
  // Without a calibration a +smooth format is refused, saying what it needs.
  Result<Outcome> bare = run(ref, "w8a8-int8+smooth");
  ASSERT_FALSE(bare.ok());
  EXPECT_NE(bare.message().find("needs a calibration"), std::string::npos) << bare.message();
}

const std::string kGoldenLlama = std::string(GB_SOURCE_DIR) + "/tests/data/golden/llama_gqa";

Status save_quantized(const std::string& format, const std::string& out) {
  Result<std::unique_ptr<WeightSource>> w = open_weights("hf:" + kGoldenLlama);
  if (!w) return w.error();
  Result<WeightFormat> f = parse_weight_format(format);
  if (!f) return f.error();
  return write_quantized_checkpoint(**w, kGoldenLlama, *f, {"hf:" + kGoldenLlama, "0123456789abcdef"}, out);
}

// Quantize -> save -> load: every matrix's arrays are the bytes quantizing at load
// gives, the logits are exactly those of quantizing at load, naming the stored
// format is the same as leaving it out, and another format needs requantize.
TEST(QuantizedCheckpoint, SavedModelLoadsBitIdenticalToQuantizingAtLoad) {
  for (const std::string format : {"int8-channel", "int8-tensor", "int8-g32", "fp8-g64", "int4-g32", "nf4-b64",
                                   "nf4-b64-dq", "fp4-b64", "q8_0", "q4_1", "f16"}) {
    test_support::TempDir dir;
    const std::string out = dir.file("saved");
    ASSERT_TRUE(save_quantized(format, out).ok()) << format << ": " << save_quantized(format, out).message();
    EXPECT_TRUE(fs::exists(out + "/config.json")) << format;
    Result<std::unique_ptr<HfCheckpoint>> saved = HfCheckpoint::open(out);
    ASSERT_TRUE(saved.ok()) << format << ": " << saved.message();
    EXPECT_EQ((*saved)->quantized_metadata().at(kQuantFormatKey), format);
    EXPECT_EQ((*saved)->quantized_metadata().at(kQuantDigestKey), "0123456789abcdef");
    Result<std::unique_ptr<HfCheckpoint>> source = HfCheckpoint::open(kGoldenLlama);
    ASSERT_TRUE(source.ok());
    const WeightFormat f = *parse_weight_format(format);
    int packed = 0;
    for (const ExpectedTensor& e : (*source)->parameters()) {
      if (e.shape.size() != 2 || e.name == "model.embed_tokens.weight") continue;
      Result<TensorView> s = (*source)->tensor(e.name), t = (*saved)->tensor(e.name);
      ASSERT_TRUE(s.ok() && t.ok()) << e.name;
      kernels::QuantSpec spec{f.codec, f.codec_layout, f.per_tensor, f.block_size, f.double_quant};
      if (f.codec == kernels::WeightCodec::kF16 || (f.head_in_16_bits && e.name == "lm_head.weight")) {
        EXPECT_EQ(t->dtype, DType::kF16) << e.name;  // bitsandbytes' head stays in f16, as at load
        EXPECT_FALSE(t->quantized) << e.name;
        continue;
      }
      const std::vector<float> w = to_f32(*s);
      Result<kernels::QuantizedMatrix> want = kernels::quantize_matrix(spec, w.data(), e.shape[0], e.shape[1], e.name);
      ASSERT_TRUE(want.ok() && t->quantized) << format << " " << e.name;
      EXPECT_EQ(t->shape, e.shape);
      EXPECT_EQ(t->quantized->codes, want->codes) << format << " " << e.name;
      EXPECT_EQ(t->quantized->scales, want->scales) << format << " " << e.name;
      EXPECT_EQ(t->quantized->zeros, want->zeros) << format << " " << e.name;
      EXPECT_EQ(t->quantized->dq_scales, want->dq_scales) << format << " " << e.name;
      EXPECT_EQ(t->quantized->dq_offsets, want->dq_offsets) << format << " " << e.name;
      ++packed;
    }
    if (f.codec != kernels::WeightCodec::kF16) {
      EXPECT_EQ(packed, 2 * 7 + (f.head_in_16_bits ? 0 : 1)) << format << ": 7 matrices a layer, the head";
    }
    Result<Outcome> at_load = run("hf:" + kGoldenLlama, format);
    Result<Outcome> as_stored = run("hf:" + out, "");
    Result<Outcome> named = run("hf:" + out, format);
    ASSERT_TRUE(at_load.ok() && as_stored.ok() && named.ok()) << format << ": " << as_stored.message();
    EXPECT_EQ(as_stored->logits, at_load->logits) << format;
    EXPECT_EQ(as_stored->weight_bytes, at_load->weight_bytes) << format;
    EXPECT_EQ(named->logits, at_load->logits) << format;
  }
  test_support::TempDir dir;
  ASSERT_TRUE(save_quantized("int4-g32", dir.file("m")).ok());
  Result<Outcome> refused = run("hf:" + dir.file("m"), "int8-channel");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("is stored as int4 in groups of 32; weight format 'int8-channel' would quantize it "
                                   "again"),
            std::string::npos)
      << refused.message();
  Result<Outcome> requantized = run("hf:" + dir.file("m"), "int8-channel", /*requantize=*/true);
  ASSERT_TRUE(requantized.ok()) << requantized.message();
  Result<Outcome> f32 = run("hf:" + kGoldenLlama, "f32");
  EXPECT_LT(rel_rms(requantized->logits, f32->logits), 0.3);
}

// A saved model whose file was damaged: each damage refused at open, naming the file,
// the tensor and what is wrong; and what cannot be saved is refused before writing.
TEST(QuantizedCheckpoint, BadFilesAreRefusedWithTheTensorNamed) {
  test_support::TempDir dir;
  const std::string good = dir.file("good");
  ASSERT_TRUE(save_quantized("int4-g32", good).ok());
  const std::string name = "model.layers.0.mlp.down_proj.weight";
  // Rewrites the saved model into DIR with its tensors and metadata edited.
  auto rewrite = [&](const std::string& sub, const std::function<void(std::vector<SafetensorsWriteEntry>&,
                                                                       std::map<std::string, std::string>&)>& edit) {
    Result<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::open(good + "/model.safetensors");
    GB_CHECK(f.ok());
    std::vector<SafetensorsWriteEntry> entries;
    for (const SafetensorsEntry& e : (*f)->tensors()) entries.push_back({e.name, (*f)->view(e)});
    std::map<std::string, std::string> meta = (*f)->metadata();
    edit(entries, meta);
    const std::string out = dir.file(sub);
    fs::create_directories(out);
    fs::copy_file(good + "/config.json", out + "/config.json");
    GB_CHECK(write_safetensors(out + "/model.safetensors", entries, meta).ok());
    Result<std::unique_ptr<HfCheckpoint>> ck = HfCheckpoint::open(out);
    return ck.ok() ? std::string() : ck.message();
  };
  auto find = [](std::vector<SafetensorsWriteEntry>& es, const std::string& n) -> SafetensorsWriteEntry& {
    for (auto& e : es)
      if (e.name == n) return e;
    GB_CHECK(false);
    return es.front();
  };
  std::string m = rewrite("version", [](auto&, auto& meta) { meta[kQuantLayoutKey] = "quantized-v9"; });
  EXPECT_NE(m.find("layout 'quantized-v9' is not one this build reads"), std::string::npos) << m;
  m = rewrite("codec", [&](auto&, auto& meta) {
    std::string& t = meta[kQuantTensorsKey];
    t.replace(t.find("\"int4\""), 6, "\"int5\"");
  });
  EXPECT_NE(m.find(".codec: 'int5' is not a packed weight codec"), std::string::npos) << m;
  m = rewrite("missing", [&](auto& es, auto&) {
    es.erase(std::find_if(es.begin(), es.end(), [&](auto& e) { return e.name == name + ".zeros"; }));
  });
  EXPECT_NE(m.find("packed tensor '" + name + "': its array '" + name + ".zeros' is missing"), std::string::npos) << m;
  m = rewrite("dtype", [&](auto& es, auto&) {
    SafetensorsWriteEntry& e = find(es, name + ".scales");
    e.tensor.dtype = DType::kBF16;
  });
  EXPECT_NE(m.find("its array '" + name + ".scales' is BF16, expected F16"), std::string::npos) << m;
  m = rewrite("size", [&](auto& es, auto&) {
    SafetensorsWriteEntry& e = find(es, name + ".scales");
    e.tensor.shape = {e.tensor.shape[0] - 1, e.tensor.shape[1]};
  });
  EXPECT_NE(m.find("model.safetensors: packed tensor '" + name + "': scales (bytes) holds"), std::string::npos) << m;
  m = rewrite("shape", [&](auto&, auto& meta) {
    std::string& t = meta[kQuantTensorsKey];
    const size_t at = t.find("\"cols\":", t.find(name));
    t.replace(at, 10, "\"cols\":256");
  });
  EXPECT_NE(m.find("packed tensor '" + name + "': codes (bytes) holds 4096, expected 8192 for 64x256 int4"),
            std::string::npos)
      << m;
  m = rewrite("stray", [&](auto& es, auto&) {
    SafetensorsWriteEntry z = find(es, name + ".zeros");
    z.name = "model.layers.0.self_attn.q_proj.weight.extra";
    es.push_back(z);
  });
  EXPECT_NE(m.find("unexpected tensor 'model.layers.0.self_attn.q_proj.weight.extra'"), std::string::npos) << m;

  Result<std::unique_ptr<WeightSource>> w = open_weights("hf:" + kGoldenLlama);
  ASSERT_TRUE(w.ok());
  Status fake = write_quantized_checkpoint(**w, kGoldenLlama, *parse_weight_format("fake:int8-channel"), {},
                                           dir.file("fake"));
  EXPECT_NE(fake.message().find("fake formats are quantized at load time"), std::string::npos) << fake.message();
  Status again = save_quantized("int8-channel", good);
  EXPECT_NE(again.message().find("already holds a model"), std::string::npos) << again.message();
}

// AWQ and GPTQ checkpoints (tools/gen_awq_gptq_vectors.py packs random int4 codes,
// zero points and f16 scales the AutoAWQ/AutoGPTQ way in numpy and stores the f32
// weights they stand for): each linear unpacks to exactly those weights, in int4 groups
// (AWQ 128, GPTQ 64) or f32 (GPTQ act-order, groups of 32 scattered by g_idx); the model runs as stored, its packed
// kernels agree with the dequantized f32 model, and another format needs requantize.
TEST(AwqGptq, CheckpointsUnpackToTheKnownAnswers) {
  const std::string data = std::string(GB_SOURCE_DIR) + "/tests/data/quantized_ckpt/";
  for (const std::string kind : {"awq", "gptq", "gptq_act"}) {
    Result<std::unique_ptr<HfCheckpoint>> ck = HfCheckpoint::open(data + kind);
    ASSERT_TRUE(ck.ok()) << kind << ": " << ck.message();
    Result<std::unique_ptr<SafetensorsFile>> expected = SafetensorsFile::open(data + kind + "/expected.safetensors");
    ASSERT_TRUE(expected.ok()) << expected.message();
    ASSERT_EQ((*expected)->tensors().size(), 7u);
    for (const SafetensorsEntry& e : (*expected)->tensors()) {
      Result<TensorView> t = (*ck)->tensor(e.name);
      ASSERT_TRUE(t.ok()) << kind << ": " << t.message();
      ASSERT_TRUE(t->quantized) << kind << " " << e.name;
      EXPECT_EQ(t->shape, e.shape);
      if (kind == "gptq_act") {
        EXPECT_EQ(t->quantized->spec.codec, kernels::WeightCodec::kF32) << e.name;
      } else {
        EXPECT_EQ(t->quantized->spec.codec, kernels::WeightCodec::kInt4) << e.name;
        EXPECT_EQ(t->quantized->spec.group, kind == "awq" ? 128 : 64) << e.name;
      }
      const std::vector<float> got = to_f32(*t), want = to_f32((*expected)->view(e));
      ASSERT_EQ(got.size(), want.size());
      size_t differ = 0;
      for (size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], 4) != 0;
      EXPECT_EQ(differ, 0u) << kind << " " << e.name << ": elements not bit-identical to the known answer";
    }
    const std::string ref = "hf:" + data + kind;
    Result<Outcome> stored = run(ref, "");
    ASSERT_TRUE(stored.ok()) << kind << ": " << stored.message();
    Result<Outcome> widened = run(ref, "f32", /*requantize=*/true);
    ASSERT_TRUE(widened.ok()) << kind << ": " << widened.message();
    EXPECT_LT(rel_rms(stored->logits, widened->logits), 1e-5) << kind;
    if (kind != "gptq_act") {
      EXPECT_LT(stored->weight_bytes, widened->weight_bytes / 4) << kind;
    }
    Result<Outcome> refused = run(ref, "int8-channel");
    ASSERT_FALSE(refused.ok()) << kind;
    EXPECT_NE(refused.message().find("would quantize it again"), std::string::npos) << refused.message();
  }
  // Naming the stored format needs no requantize (the f16 head is then quantized too).
  Result<Outcome> named = run("hf:" + data + "awq", "int4-g128");
  ASSERT_TRUE(named.ok()) << named.message();
}

TEST(AwqGptq, BadCheckpointsAreRefusedNamingWhat) {
  const std::string data = std::string(GB_SOURCE_DIR) + "/tests/data/quantized_ckpt/gptq";
  test_support::TempDir dir;
  auto variant = [&](const std::string& sub, const std::string& config_from, const std::string& config_to,
                     const std::string& drop) {
    const std::string out = dir.file(sub);
    fs::create_directories(out);
    std::ifstream in(data + "/config.json");
    std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!config_from.empty()) config.replace(config.find(config_from), config_from.size(), config_to);
    std::ofstream(out + "/config.json") << config;
    Result<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::open(data + "/model.safetensors");
    GB_CHECK(f.ok());
    std::vector<SafetensorsWriteEntry> entries;
    for (const SafetensorsEntry& e : (*f)->tensors())
      if (e.name != drop) entries.push_back({e.name, (*f)->view(e)});
    GB_CHECK(write_safetensors(out + "/model.safetensors", entries).ok());
    Result<std::unique_ptr<HfCheckpoint>> ck = HfCheckpoint::open(out);
    return ck.ok() ? std::string() : ck.message();
  };
  std::string m = variant("bits", "\"bits\": 4", "\"bits\": 3", "");
  EXPECT_NE(m.find("$.quantization_config.bits: 3-bit gptq is not supported (4 only)"), std::string::npos) << m;
  m = variant("v2", "\"checkpoint_format\": \"gptq\"", "\"checkpoint_format\": \"gptq_v2\"", "");
  EXPECT_NE(m.find(".checkpoint_format: 'gptq_v2' is not supported"), std::string::npos) << m;
  m = variant("missing", "", "", "model.layers.0.mlp.up_proj.qzeros");
  EXPECT_NE(m.find("gptq linear 'model.layers.0.mlp.up_proj': its qzeros is missing"), std::string::npos) << m;
  m = variant("group", "\"group_size\": 64", "\"group_size\": 32", "");
  EXPECT_NE(m.find("its qzeros is I32 [2, 16], expected I32 [4, 16]"), std::string::npos) << m;
}

}  // namespace weight_formats_test
}  // namespace
}  // namespace gb::engine

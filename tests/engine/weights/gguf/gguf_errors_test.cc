// GGUF: every kind of corrupt or unsupported file gives an error that names the
// file and the problem (truncations, bad magic and versions, huge counts, bad
// values and tensor infos, config problems, rope factors, missing or misshaped
// tensors, unimplemented quantized types).
#include "engine/spec/gguf/gguf_config.h"
#include "engine/spec/gguf/gguf_header.h"
#include "engine/tokenizer/gguf_vocab.h"
#include "engine/weights/gguf/gguf_file.h"
#include "engine/weights/gguf/gguf_weights.h"
#include "engine/weights/gguf/gguf_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/weights/hf/hf_checkpoint.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/engine/temp_dir.h"
#include "tests/engine/weights/gguf/gguf_test_converter.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
using namespace gguf_test;

// ---- corrupt files ----

std::string parse_error(const std::string& bytes) {
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "bad.gguf");
  return h ? "" : h.message();
}

// A small valid file: two keys, two F32 tensors.
std::string small_file() {
  return gguf_file_bytes({{"general.architecture", W::string("llama")}, {"x.n", W::u32(3)}},
                         {{"a", static_cast<uint32_t>(GgmlType::kF32), {4, 2}, std::vector<uint8_t>(32, 1), {}},
                          {"b", static_cast<uint32_t>(GgmlType::kF32), {3}, std::vector<uint8_t>(12, 2), {}}});
}

void put_u64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}
void put_u32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

TEST(GgufErrors, EveryTruncationIsAnError) {
  const std::string full = small_file();
  ASSERT_EQ(parse_error(full), "");
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(full.data()), full.size(), "f");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(full.size(), h->data_start + 32 + 12);  // a at 0, b at 32
  for (size_t n = 0; n < full.size(); ++n) {
    // Cutting into the padding before the last tensor's bytes still loses them.
    const std::string e = parse_error(full.substr(0, n));
    ASSERT_NE(e, "") << "prefix of " << n << " bytes parsed";
    ASSERT_EQ(e.rfind("bad.gguf: ", 0), 0u) << e;
  }
  EXPECT_HAS(parse_error(full.substr(0, 3)), "file is 3 bytes, too short for the GGUF magic");
  EXPECT_HAS(parse_error(full.substr(0, 6)), "file truncated: the version at byte 4 needs 4 bytes");
  EXPECT_HAS(parse_error(full.substr(0, 20)), "file truncated: the metadata count at byte 16 needs 8 bytes");
}

TEST(GgufErrors, TruncationMessagesSayWhere) {
  const std::string full = small_file();
  // 24 bytes of header; the counts are checked against what is left first.
  EXPECT_HAS(parse_error(full.substr(0, 24)), "metadata count 2 cannot fit in the 0 bytes after the header");
  // The metadata takes bytes [24, 88); tensor 'a' starts with its name (9 bytes)
  // and dimension count, then ne[0] at byte 101.
  EXPECT_HAS(parse_error(full.substr(0, 108)),
             "file truncated: dimension 0 of tensor 'a' at byte 101 needs 8 bytes but the file ends after 7");
  const std::string one_key = gguf_file_bytes({{"x.n", W::u32(7)}}, {});  // key at 24, type at 35, value at 39
  EXPECT_HAS(parse_error(one_key.substr(0, 40)),
             "bad.gguf: file truncated: metadata key 'x.n' (u32) at byte 39 needs 4 bytes but the file ends after 1");
  EXPECT_HAS(parse_error(one_key.substr(0, 38)), "file truncated: the value type of metadata key 'x.n' at byte 35");
  EXPECT_HAS(parse_error(full.substr(0, full.size() - 1)),
             "tensor 'b': bytes [32, 44) of the data section are beyond the end of the file");
}

TEST(GgufErrors, BadMagicAndVersions) {
  std::string s = small_file();
  s[3] = 'X';
  EXPECT_EQ(parse_error(s), "bad.gguf: bad magic 'GGUX' (expected 'GGUF'): not a GGUF file");
  for (auto [version, message] : std::vector<std::pair<uint32_t, std::string>>{
           {1, "GGUF version 1 is not supported"},
           {4, "unsupported GGUF version 4 (versions 2 and 3 are supported)"},
           {0x03000000u, "a big-endian GGUF file (version 3)"}}) {
    std::string v = small_file();
    put_u32(v, 4, version);
    EXPECT_HAS(parse_error(v), message);
  }
  std::string v2 = small_file();
  put_u32(v2, 4, 2);
  EXPECT_EQ(parse_error(v2), "");  // version 2 has the same little-endian layout
}

TEST(GgufErrors, HugeCountsAndLengthsAreRefusedBeforeAllocating) {
  std::string s = small_file();
  put_u64(s, 8, uint64_t{1} << 62);
  EXPECT_HAS(parse_error(s), "tensor count 4611686018427387904 cannot fit");
  s = small_file();
  put_u64(s, 16, ~uint64_t{0});
  EXPECT_HAS(parse_error(s), "metadata count 18446744073709551615 cannot fit");
  s = small_file();
  put_u64(s, 24, uint64_t{1} << 60);  // the first key's length
  EXPECT_HAS(parse_error(s), "string length 1152921504606846976 at byte 24 is larger than the");
  // A huge array.
  std::string a = gguf_file_bytes({{"k", W::i32_array({1, 2})}}, {});
  put_u64(a, 24 + 8 + 1 + 4 + 4, uint64_t{1} << 61);
  EXPECT_HAS(parse_error(a), "metadata key 'k': array of 2305843009213693952 i32 at byte 41 cannot fit");
  std::string sa = gguf_file_bytes({{"k", W::string_array({"a"})}}, {});
  put_u64(sa, 24 + 8 + 1 + 4 + 4, uint64_t{1} << 40);
  EXPECT_HAS(parse_error(sa), "array of 1099511627776 string");
}

TEST(GgufErrors, BadValues) {
  std::string s = gguf_file_bytes({{"k", W::u32(1)}}, {});
  put_u32(s, 24 + 8 + 1, 13);
  EXPECT_HAS(parse_error(s), "metadata key 'k': unknown value type 13 at byte 33");
  s = gguf_file_bytes({{"k", W::boolean(true)}}, {});
  s[24 + 8 + 1 + 4] = 2;
  EXPECT_HAS(parse_error(s), "metadata key 'k': bool at byte 37 is 2, not 0 or 1");
  s = gguf_file_bytes({{"k", W::i32_array({1})}}, {});
  put_u32(s, 24 + 8 + 1 + 4, 9);
  EXPECT_HAS(parse_error(s), "metadata key 'k': arrays of arrays are not supported");
  put_u32(s, 24 + 8 + 1 + 4, 99);
  EXPECT_HAS(parse_error(s), "unknown array element type 99");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"k", W::u32(1)}, {"k", W::u32(2)}}, {})), "duplicate metadata key 'k'");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"", W::u32(1)}}, {})), "metadata entry 0 at byte 24 has an empty key");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"general.alignment", W::u64(32)}}, {})),
             "metadata key 'general.alignment' is u64, expected u32");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"general.alignment", W::u32(48)}}, {})),
             "general.alignment 48 is not a power of two");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"general.alignment", W::u32(0)}}, {})), "general.alignment 0 is not");
}

TEST(GgufErrors, BadTensorInfos) {
  const uint32_t f32 = static_cast<uint32_t>(GgmlType::kF32);
  auto one = [&](GgufWriteTensor t) { return parse_error(gguf_file_bytes({}, {std::move(t)})); };
  EXPECT_HAS(parse_error(gguf_file_bytes({}, {{"a", f32, {2}, std::vector<uint8_t>(8), {}},
                                              {"a", f32, {2}, std::vector<uint8_t>(8), {}}})),
             "duplicate tensor name 'a'");
  EXPECT_HAS(one({"", f32, {2}, std::vector<uint8_t>(8), {}}), "tensor info 0 at byte 24 has an empty name");
  EXPECT_HAS(one({std::string(64, 'n'), f32, {2}, std::vector<uint8_t>(8), {}}),
             "the name is 64 bytes, longer than the limit of 63");
  EXPECT_HAS(one({"a", f32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4), {}}), "tensor 'a': 5 dimensions (1 to 4");
  EXPECT_HAS(one({"a", f32, {}, {}, {}}), "tensor 'a': 0 dimensions");
  EXPECT_HAS(one({"a", f32, {2, -1}, {}, {}}), "tensor 'a': dimension 1 is negative (-1)");
  EXPECT_HAS(one({"a", 4, {2}, std::vector<uint8_t>(8), {}}), "tensor 'a': unknown ggml type 4");
  EXPECT_HAS(one({"a", static_cast<uint32_t>(GgmlType::kQ4_0), {48}, std::vector<uint8_t>(36), {}}),
             "tensor 'a': row length ne[0] = 48 is not a multiple of Q4_0's block size 32");
  EXPECT_HAS(one({"a", f32, {int64_t{1} << 40, int64_t{1} << 30}, {}, {}}), "larger than fits in 63 bits");
  EXPECT_HAS(one({"a", f32, {int64_t{1} << 31, int64_t{1} << 31, 4}, {}, {}}), "larger than fits in 63 bits");
  EXPECT_HAS(one({"a", f32, {2}, std::vector<uint8_t>(8), 4}),
             "tensor 'a': offset 4 is not a multiple of the alignment 32");
  EXPECT_HAS(one({"a", f32, {2}, {}, 64}),
             "tensor 'a': bytes [64, 72) of the data section are beyond the end of the file");
  EXPECT_HAS(one({"a", f32, {int64_t{1} << 40}, {}, {}}), "tensor 'a': bytes [0, 4398046511104) of the data section");
  EXPECT_HAS(parse_error(gguf_file_bytes({}, {{"a", f32, {16}, std::vector<uint8_t>(64), 0},
                                              {"b", f32, {16}, std::vector<uint8_t>(64), 32}})),
             "tensor 'b' at offset 32 overlaps tensor 'a' (bytes [0, 64))");
  // Zero-size tensors may share an offset; a quantized tensor's size is in blocks.
  EXPECT_EQ(parse_error(gguf_file_bytes({}, {{"a", f32, {0, 3}, {}, 0}, {"b", f32, {0}, {}, 0}})), "");
  auto q =
      gguf_file_bytes({}, {{"q", static_cast<uint32_t>(GgmlType::kQ4_K), {512, 3}, std::vector<uint8_t>(864), {}}});
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(q.data()), q.size(), "q");
  ASSERT_TRUE(h.ok()) << h.message();
  EXPECT_EQ(h->tensors[0].nbytes, 2u * 144u * 3u);
  EXPECT_EQ(h->tensors[0].shape, (std::vector<int64_t>{3, 512}));
  // Names in messages are escaped.
  EXPECT_HAS(one({"a\nb", f32, {2}, {}, 64}), "tensor 'a\\x0ab'");
}

TEST(GgufErrors, CustomAlignment) {
  const uint32_t f32 = static_cast<uint32_t>(GgmlType::kF32);
  const std::string s =
      gguf_file_bytes({{"general.alignment", W::u32(64)}},
                      {{"a", f32, {3}, std::vector<uint8_t>(12), {}}, {"b", f32, {3}, std::vector<uint8_t>(12), {}}});
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "a.gguf");
  ASSERT_TRUE(h.ok()) << h.message();
  EXPECT_EQ(h->alignment, 64u);
  EXPECT_EQ(h->data_start % 64, 0u);
  EXPECT_EQ(h->tensors[1].offset, 64u);
  EXPECT_HAS(parse_error(gguf_file_bytes({{"general.alignment", W::u32(64)}},
                                         {{"a", f32, {3}, std::vector<uint8_t>(12), 32}})),
             "offset 32 is not a multiple of the alignment 64");
}

TEST(GgufErrors, FilesThatCannotBeOpened) {
  TempDir dir;
  auto f = GgufFile::open(dir.file("absent.gguf"));
  ASSERT_FALSE(f.ok());
  EXPECT_HAS(f.message(), "absent.gguf: cannot open: No such file or directory");
  auto d = GgufFile::open(dir.file(""));
  ASSERT_FALSE(d.ok());
  EXPECT_HAS(d.message(), "not a regular file");
  std::ofstream(dir.file("empty.gguf")).close();
  auto e = GgufFile::open(dir.file("empty.gguf"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.message(), dir.file("empty.gguf") + ": file is 0 bytes, too short for the GGUF magic (not a GGUF file)");
}

// ---- config and weight errors ----

TEST(GgufErrors, ConfigProblemsNameTheKey) {
  TempDir dir;
  auto config_error = [&](const TinyModel& m) {
    auto c = gguf_model_config(write(dir, m));
    return c ? "" : c.message();
  };
  TinyModel m = convert(families()[0].config);
  erase_meta(m, "llama.block_count");
  set_meta(m, "llama.embedding_length", W::string("32"));
  const std::string e = config_error(m);
  EXPECT_HAS(e, dir.file("m.gguf") + ": ");
  EXPECT_HAS(e, "metadata key 'llama.embedding_length' is string, expected an integer");
  EXPECT_HAS(e, "missing metadata key 'llama.block_count'");

  m = convert(families()[0].config);
  set_meta(m, "general.architecture", W::string("mamba"));
  EXPECT_HAS(config_error(m),
             "unsupported general.architecture 'mamba' (supported: llama, qwen2, qwen3, gptneox, gpt2)");
  m = convert(families()[0].config);
  erase_meta(m, "general.architecture");
  EXPECT_HAS(config_error(m), "missing metadata key 'general.architecture'");
  m = convert(families()[0].config);
  set_meta(m, "llama.attention.head_count_kv", W::u32(3));
  EXPECT_HAS(config_error(m), "llama.attention.head_count 4 is not a multiple of llama.attention.head_count_kv 3");
  m = convert(families()[0].config);
  set_meta(m, "llama.attention.head_count", W::u32(0));
  EXPECT_HAS(config_error(m), "metadata key 'llama.attention.head_count' = 0 is out of range");
  m = convert(families()[0].config);
  set_meta(m, "llama.rope.scaling.type", W::string("yarn"));
  EXPECT_HAS(config_error(m), "llama.rope.scaling.type 'yarn' is not supported (none, linear)");
  m = convert(families()[0].config);
  set_meta(m, "llama.rope.dimension_count", W::u32(4));
  EXPECT_HAS(config_error(m), "partial rotary is supported for gptneox only");
  m = convert(families()[0].config);
  set_meta(m, "llama.attention.layer_norm_rms_epsilon", W::f32(-1.0f));
  EXPECT_HAS(config_error(m), "'llama.attention.layer_norm_rms_epsilon' must be a positive number");
  m = convert(families()[0].config);
  set_meta(m, "tokenizer.ggml.tokens", W::string_array({"a", "b"}));
  EXPECT_HAS(config_error(m), "tokenizer.ggml.tokens has 2 tokens but token_embd.weight has 40 rows");
  m = convert(families()[0].config);
  set_meta(m, "tokenizer.ggml.eos_token_id", W::u32(40));
  EXPECT_HAS(config_error(m), "tokenizer.ggml.eos_token_id 40 is outside the vocabulary of 40");
  m = convert(families()[0].config);
  std::erase_if(m.tensors, [](const GgufWriteTensor& t) { return t.name == "token_embd.weight"; });
  EXPECT_HAS(config_error(m), "no tensor 'token_embd.weight'");
  // The older rope.scale_linear key, and linear scaling with factor 1 being none.
  m = convert(families()[0].config);
  set_meta(m, "llama.rope.scale_linear", W::f32(2.0f));
  auto c = gguf_model_config(write(dir, m));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->rope_scaling, ModelConfig::RopeScaling::kLinear);
  EXPECT_EQ(c->rope_factor, 2.0);
  set_meta(m, "llama.rope.scaling.type", W::string("none"));
  c = gguf_model_config(write(dir, m));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->rope_scaling, ModelConfig::RopeScaling::kNone);
}

// The factors llama.cpp's converter writes for "rope_type": "llama3".
std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  std::vector<float> out;
  const double low_wavelen = c.rope_original_max_positions / c.rope_low_freq_factor;
  const double high_wavelen = c.rope_original_max_positions / c.rope_high_freq_factor;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    const double freq = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(c.head_dim));
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(c.rope_factor));
    } else {
      const double smooth = (c.rope_original_max_positions / wavelen - c.rope_low_freq_factor) /
                            (c.rope_high_freq_factor - c.rope_low_freq_factor);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / c.rope_factor + smooth)));
    }
  }
  return out;
}

TEST(Gguf, RopeFreqsBecomeLlama3Scaling) {
  TempDir dir;
  TinyModel m = convert(R"({"model_type":"llama","vocab_size":40,"hidden_size":128,"num_hidden_layers":1,
      "intermediate_size":64,"num_attention_heads":2,"num_key_value_heads":1,"rope_theta":500000.0,
      "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
                      "original_max_position_embeddings":8192}})");
  ASSERT_EQ(m.config.rope_scaling, ModelConfig::RopeScaling::kLlama3);
  const std::vector<float> factors = llama3_rope_factors(m.config);
  m.tensors.push_back(
      {"rope_freqs.weight", static_cast<uint32_t>(GgmlType::kF32), {32}, encode(factors, DType::kF32), {}});
  const std::string path = write(dir, m);
  auto c = gguf_model_config(path);
  ASSERT_TRUE(c.ok()) << c.message();
  expect_same_config(*c, m.config);
  EXPECT_EQ(c->rope_low_freq_factor, 1.0);
  EXPECT_EQ(c->rope_high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_original_max_positions, 8192);
  auto w = open_gguf_weights(path);  // rope_freqs.weight is not a parameter
  ASSERT_TRUE(w.ok()) << w.message();

  // Other llama3 parameters are recovered the same way.
  m.config.rope_factor = 32;
  m.config.rope_low_freq_factor = 2;
  m.config.rope_high_freq_factor = 16;
  m.tensors.back().bytes = encode(llama3_rope_factors(m.config), DType::kF32);
  c = gguf_model_config(write(dir, m));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->rope_factor, 32.0);
  EXPECT_EQ(c->rope_low_freq_factor, 2.0);
  EXPECT_EQ(c->rope_high_freq_factor, 16.0);

  // All ones: no scaling.
  m.tensors.back().bytes = encode(std::vector<float>(32, 1.0f), DType::kF32);
  c = gguf_model_config(write(dir, m));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->rope_scaling, ModelConfig::RopeScaling::kNone);
}

TEST(GgufErrors, RopeFreqsThatAreNotLlama3AreRefused) {
  TempDir dir;
  TinyModel m = convert(families()[0].config);  // head_dim 8: 4 factors
  m.tensors.push_back({"rope_freqs.weight", static_cast<uint32_t>(GgmlType::kF32), {4},
                       encode({1.0f, 1.0f, 2.5f, 8.0f}, DType::kF32), {}});
  EXPECT_HAS(weights_error(dir, m),
             "tensor 'rope_freqs.weight' holds rope factors that are not Llama 3.1-style rope scaling (fewer than two "
             "blended factors to recover it from)");
  m.tensors.back().bytes = encode({1.0f, 3.0f, 2.0f, 8.0f}, DType::kF32);
  EXPECT_HAS(weights_error(dir, m), "holds rope factors that are not Llama 3.1-style rope scaling (recovered");
  m.tensors.back().bytes = encode({1.0f, 0.5f, 1.0f, 1.0f}, DType::kF32);
  EXPECT_HAS(weights_error(dir, m), "tensor 'rope_freqs.weight' factor 1 is 0.500000 (rope factors are >= 1)");
  m.tensors.back().ne = {3};
  m.tensors.back().bytes.resize(12);
  EXPECT_HAS(weights_error(dir, m), "tensor 'rope_freqs.weight' has 3 factors, expected head_dim / 2 = 4");
}

TEST(GgufErrors, MissingUnexpectedAndMisshapedTensors) {
  TempDir dir;
  TinyModel m = convert(families()[0].config);
  std::erase_if(m.tensors, [](const GgufWriteTensor& t) { return t.name == "blk.1.ffn_up.weight"; });
  m.tensors.push_back(
      {"blk.0.ffn_gate_inp.weight", static_cast<uint32_t>(GgmlType::kF32), {2}, std::vector<uint8_t>(8), {}});
  m.tensors.push_back({"blk.7.attn_q.weight", static_cast<uint32_t>(GgmlType::kF32), {2}, std::vector<uint8_t>(8), {}});
  const std::string path = dir.file("m.gguf");
  const std::string e = weights_error(dir, m);
  EXPECT_HAS(e, path + ": missing tensor 'blk.1.ffn_up.weight' (model.layers.1.mlp.up_proj.weight [48, 32])");
  EXPECT_HAS(
      e,
      "unexpected tensors 'blk.0.ffn_gate_inp.weight'; 'blk.7.attn_q.weight' (model.layers.7.self_attn.q_proj.weight) "
      "(not a llama parameter for this file's metadata)");

  m = convert(families()[0].config);
  find_tensor(m, "blk.0.attn_k.weight")->ne = {32, 8};
  find_tensor(m, "blk.0.attn_k.weight")->bytes.resize(32 * 8 * 4);
  EXPECT_HAS(weights_error(dir, m), "tensor 'blk.0.attn_k.weight' has shape [8, 32] but the metadata implies [16, 32]");

  m = convert(families()[5].config);  // GPT-2: shapes are reported as stored
  find_tensor(m, "blk.1.ffn_up.weight")->ne = {32, 64};
  EXPECT_HAS(weights_error(dir, m),
             "tensor 'blk.1.ffn_up.weight' has shape [64, 32] but the metadata implies [128, 32]");

  m = convert(families()[0].config);
  GgufWriteTensor* norm = find_tensor(m, "blk.0.attn_norm.weight");
  norm->type = static_cast<uint32_t>(GgmlType::kF64);
  norm->bytes.resize(32 * 8);
  EXPECT_HAS(weights_error(dir, m), "tensor 'blk.0.attn_norm.weight' is F64, expected F32, F16 or BF16");
}

TEST(GgufErrors, QuantizedTensorsComeOutPackedAndUnimplementedTypesAreRefused) {
  TempDir dir;
  TinyModel m = convert(families()[0].config);
  GgufWriteTensor* q = find_tensor(m, "blk.0.attn_q.weight");
  q->type = static_cast<uint32_t>(GgmlType::kQ8_0);
  q->bytes.assign(32 * 34, 0);  // 32 rows of one 34-byte block
  q->bytes[0] = 0x00;
  q->bytes[1] = 0x3c;  // block 0: d = 1.0
  q->bytes[2] = 5;     // element 0 = 5
  // ffn_gate is HF [48, 32]: ne [32, 48], 48 rows of one Q4_0 block.
  GgufWriteTensor* g = find_tensor(m, "blk.1.ffn_gate.weight");
  g->type = static_cast<uint32_t>(GgmlType::kQ4_0);
  g->bytes.assign(48 * 18, 0);
  const std::string path = write(dir, m);
  auto w = open_gguf_weights(path);
  ASSERT_TRUE(w.ok()) << w.message();
  auto qv = (*w)->tensor("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(qv.ok()) << qv.message();
  ASSERT_TRUE(qv->packed.has_value());
  EXPECT_EQ(*qv->packed, kernels::WeightCodec::kQ8_0);
  EXPECT_EQ(qv->nbytes(), 32u * 34u);
  // The q/k row permutation of llama.cpp's converter is undone on whole rows of blocks,
  // so the element written at stored row 0 is in the row the permutation sends it to.
  const std::vector<float> deq = to_f32(*qv);
  int fives = 0;
  for (float v : deq) fives += v == 5.0f;
  EXPECT_EQ(fives, 1);
  EXPECT_TRUE((*w)->tensor("model.layers.0.self_attn.k_proj.weight").ok());
  // The stored bytes, quantized ones included.
  uint64_t bytes = 0;
  for (const auto& t : m.tensors) bytes += t.bytes.size();
  EXPECT_EQ((*w)->parameter_bytes(), bytes);

  // A type gridbench does not implement is refused at open, named with its tensor.
  GgufWriteTensor* iq = find_tensor(m, "blk.0.attn_k.weight");
  iq->type = static_cast<uint32_t>(GgmlType::kIQ4_NL);  // 32-element blocks of 18 bytes
  iq->bytes.assign(16 * 18, 0);
  const std::string bad = write(dir, m);
  auto r = open_gguf_weights(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.message(), bad + ": tensor 'blk.0.attn_k.weight' is IQ4_NL, a GGUF type gridbench does not implement");
  // The config still reads.
  EXPECT_TRUE(gguf_model_config(bad).ok());
}

}  // namespace
}  // namespace gb::engine

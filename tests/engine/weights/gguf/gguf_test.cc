// GGUF: tiny models of every family written the way llama.cpp's converter writes
// them (gguf_test_converter.h) read back as the Hugging Face model they came from;
// the metadata getters, ggml's type sizes and the embedded tokenizer. Corrupt files:
// gguf_errors_test.cc; llama.cpp's own files: gguf_peer_test.cc.
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

// ---- the families ----

TEST(Gguf, EveryFamilyReadsBackAsTheHfModel) {
  for (const FamilyCase& f : families()) {
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      SCOPED_TRACE(std::string(f.name) + " " + std::string(dtype_name(dtype)));
      TempDir dir;
      const TinyModel m = convert(f.config, dtype);
      const std::string path = write(dir, m);

      auto config = gguf_model_config(path);
      ASSERT_TRUE(config.ok()) << config.message();
      EXPECT_EQ(config->name, path);
      expect_same_config(*config, m.config);

      auto w = open_gguf_weights(path);
      ASSERT_TRUE(w.ok()) << w.message();
      EXPECT_EQ((*w)->describe(), "gguf:" + path);
      expect_same_config((*w)->config(), m.config);
      uint64_t bytes = 0;
      for (const HfTensor& h : m.hf) {
        auto v = (*w)->tensor(h.name);
        ASSERT_TRUE(v.ok()) << v.message();
        EXPECT_EQ(v->shape, h.shape) << h.name;
        EXPECT_EQ(v->dtype, h.shape.size() == 1 ? DType::kF32 : dtype) << h.name;
        ASSERT_EQ(v->nbytes(), h.bytes.size()) << h.name;
        EXPECT_EQ(std::memcmp(v->data, h.bytes.data(), h.bytes.size()), 0) << h.name << " differs from the HF tensor";
        bytes += h.bytes.size();
        // Asking again gives the same bytes (owned buffers are made once).
        EXPECT_EQ((*w)->tensor(h.name)->data, v->data);
      }
      EXPECT_EQ((*w)->parameter_bytes(), bytes);
      if (m.config.tie_embeddings) {
        const std::string head = m.config.family == Family::kGptNeoX ? "embed_out.weight" : "lm_head.weight";
        auto head_view = (*w)->tensor(head);
        ASSERT_TRUE(head_view.ok()) << head_view.message();
        EXPECT_EQ(head_view->data, (*w)->tensor(m.hf[0].name)->data);
      }
      auto none = (*w)->tensor("model.nope");
      ASSERT_FALSE(none.ok());
      EXPECT_HAS(none.message(), path + ": the model has no tensor 'model.nope'");
      // Its tokenizer ("t0".."t39", no merges) is there.
      ASSERT_NE((*w)->tokenizer(), nullptr);
      EXPECT_EQ((*w)->tokenizer()->token_id("t7"), 7);
    }
  }
}

TEST(Gguf, UntransformedTensorsAreViewsOfTheMapping) {
  TempDir dir;
  const TinyModel m = convert(families()[2].config);  // qwen2: nothing is rearranged
  auto w = open_gguf_weights(write(dir, m));
  ASSERT_TRUE(w.ok()) << w.message();
  auto q = (*w)->tensor("model.layers.1.self_attn.q_proj.weight");
  auto b = (*w)->tensor("model.layers.1.self_attn.q_proj.bias");
  ASSERT_TRUE(q.ok() && b.ok());
  // Consecutive tensors of the file lie at aligned offsets of one mapping.
  const auto* qp = static_cast<const uint8_t*>(q->data);
  const auto* bp = static_cast<const uint8_t*>(b->data);
  EXPECT_EQ(bp - qp, 32 * 32 * 4);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(qp) % 32, 0u);
}

TEST(Gguf, LlamaQkRowsAreUnpermutedExactly) {
  // One head of dimension 8, one input column: HF rows 0..7; llama.cpp's permute
  // stores them as 0 4 1 5 2 6 3 7 (the halves interleaved).
  TinyModel m = convert(families()[0].config);
  GgufWriteTensor* q = find_tensor(m, "blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  // head_dim 8, 4 heads, 32 inputs: check the first input column of head 0.
  std::vector<float> stored(32 * 32);
  std::memcpy(stored.data(), q->bytes.data(), q->bytes.size());
  std::vector<float> col;
  for (int r = 0; r < 8; ++r) col.push_back(stored[r * 32]);
  const HfTensor* hf = nullptr;
  for (const HfTensor& h : m.hf)
    if (h.name == "model.layers.0.self_attn.q_proj.weight") hf = &h;
  ASSERT_NE(hf, nullptr);
  auto hf_row = [&](int r) {  // element (r, 0) of the HF matrix
    float x;
    std::memcpy(&x, hf->bytes.data() + r * 32 * 4, 4);
    return x;
  };
  const int order[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  for (int r = 0; r < 8; ++r) EXPECT_EQ(col[r], hf_row(order[r])) << "stored row " << r;

  TempDir dir;
  auto w = open_gguf_weights(write(dir, m));
  ASSERT_TRUE(w.ok()) << w.message();
  auto v = (*w)->tensor("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(v.ok());
  const std::vector<float> got = to_f32(*v);
  for (int r = 0; r < 32; ++r) EXPECT_EQ(got[r * 32], hf_row(r)) << "HF row " << r;
}

TEST(Gguf, NamesMapToHuggingFace) {
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "blk.11.attn_q.weight"), "model.layers.11.self_attn.q_proj.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kQwen3, "blk.0.attn_k_norm.weight"), "model.layers.0.self_attn.k_norm.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kQwen2, "output.weight"), "lm_head.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kGptNeoX, "blk.3.attn_qkv.bias"),
            "gpt_neox.layers.3.attention.query_key_value.bias");
  EXPECT_EQ(gguf_to_hf_name(Family::kGptNeoX, "output.weight"), "embed_out.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kGpt2, "position_embd.weight"), "transformer.wpe.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kGpt2, "blk.2.ffn_down.weight"), "transformer.h.2.mlp.c_proj.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "blk.01.attn_q.weight"), "");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "blk.x.attn_q.weight"), "");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "blk.0.attn_qkv.weight"), "");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "position_embd.weight"), "");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "rope_freqs.weight"), "");
}

TEST(Gguf, Gpt2WithASeparateHeadIsUntied) {
  TempDir dir;
  TinyModel m = convert(families()[5].config);
  GgufWriteTensor* out = find_tensor(m, "output.weight");
  ASSERT_NE(out, nullptr);
  out->bytes[0] ^= 1;  // no longer a copy of the embedding
  auto w = open_gguf_weights(write(dir, m));
  ASSERT_TRUE(w.ok()) << w.message();
  EXPECT_FALSE((*w)->config().tie_embeddings);
  auto head = (*w)->tensor("lm_head.weight");
  ASSERT_TRUE(head.ok());
  EXPECT_NE(head->data, (*w)->tensor("transformer.wte.weight")->data);
  // And without any output.weight, tied.
  std::erase_if(m.tensors, [](const GgufWriteTensor& t) { return t.name == "output.weight"; });
  auto c = gguf_model_config(write(dir, m, "tied.gguf"));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_TRUE(c->tie_embeddings);
}

TEST(Gguf, ResolveModelReadsTheMetadata) {
  TempDir dir;
  const std::string path = write(dir, convert(families()[3].config));
  auto c = resolve_model("gguf:" + path);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->name, "gguf:" + path);
  EXPECT_EQ(c->family, Family::kQwen3);
  auto bad = resolve_model("gguf:" + dir.file("absent.gguf"));
  ASSERT_FALSE(bad.ok());
  EXPECT_HAS(bad.message(), "absent.gguf: cannot open");
}

// ---- metadata ----

TEST(Gguf, MetadataGettersCheckTypes) {
  const std::string bytes = gguf_file_bytes(
      {{"a.u8", {GgufValueType::kUint8, GgufValueType::kUint8, {200}, {}, {}, {}}},
       {"a.i8", {GgufValueType::kInt8, GgufValueType::kInt8, {}, {-5}, {}, {}}},
       {"a.u16", {GgufValueType::kUint16, GgufValueType::kUint16, {65535}, {}, {}, {}}},
       {"a.i16", {GgufValueType::kInt16, GgufValueType::kInt16, {}, {-300}, {}, {}}},
       {"a.u32", W::u32(4000000000u)},
       {"a.i32", W::i32(-7)},
       {"a.u64", W::u64(~uint64_t{0})},
       {"a.i64", {GgufValueType::kInt64, GgufValueType::kInt64, {}, {INT64_MIN}, {}, {}}},
       {"a.f32", W::f32(1e-5f)},
       {"a.f64", W::f64(0.1)},
       {"a.bool", W::boolean(true)},
       {"a.str", W::string("héllo")},
       {"a.strs", W::string_array({"x", "", "zz"})},
       {"a.ints", W::i32_array({1, -2, 3})},
       {"a.floats", W::f32_array({0.5f, 1e-6f})},
       {"a.bools", {GgufValueType::kArray, GgufValueType::kBool, {1, 0}, {}, {}, {}}}},
      {});
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "m.gguf");
  ASSERT_TRUE(h.ok()) << h.message();
  EXPECT_EQ(h->version, 3u);
  EXPECT_EQ(h->metadata.size(), 16u);
  EXPECT_EQ(*h->get_int("a.u8"), 200);
  EXPECT_EQ(*h->get_int("a.i8"), -5);
  EXPECT_EQ(*h->get_int("a.u16"), 65535);
  EXPECT_EQ(*h->get_int("a.i16"), -300);
  EXPECT_EQ(*h->get_int("a.u32"), 4000000000);
  EXPECT_EQ(*h->get_int("a.i32"), -7);
  EXPECT_EQ(*h->get_int("a.i64"), INT64_MIN);
  EXPECT_EQ(h->find("a.u64")->as_uint(), ~uint64_t{0});
  auto big = h->get_int("a.u64");
  ASSERT_FALSE(big.ok());
  EXPECT_HAS(big.message(), "m.gguf: metadata key 'a.u64' = 18446744073709551615 does not fit");
  EXPECT_EQ(*h->get_float("a.f32"), 1e-5);  // the float's shortest decimal, not 9.99999974e-06
  EXPECT_EQ(*h->get_float("a.f64"), 0.1);
  EXPECT_TRUE(*h->get_bool("a.bool"));
  EXPECT_EQ(*h->get_string("a.str"), "héllo");
  EXPECT_EQ(*h->get_string_array("a.strs"), (std::vector<std::string_view>{"x", "", "zz"}));
  EXPECT_EQ(*h->get_int_array("a.ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*h->get_float_array("a.floats"), (std::vector<double>{0.5, 1e-6}));
  EXPECT_EQ(h->find("a.bools")->type_description(), "array of bool");
  EXPECT_EQ(h->find("a.bools")->size(), 2u);

  auto wrong = h->get_int("a.str");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.message(), "m.gguf: metadata key 'a.str' is string, expected an integer");
  EXPECT_EQ(h->get_string("a.ints").message(), "m.gguf: metadata key 'a.ints' is array of i32, expected a string");
  EXPECT_EQ(h->get_float("a.i32").message(), "m.gguf: metadata key 'a.i32' is i32, expected f32 or f64");
  EXPECT_EQ(h->get_bool("a.u8").message(), "m.gguf: metadata key 'a.u8' is u8, expected a bool");
  EXPECT_EQ(h->get_string_array("a.ints").message(),
            "m.gguf: metadata key 'a.ints' is array of i32, expected an array of string");
  EXPECT_EQ(h->get_int_array("a.strs").message(),
            "m.gguf: metadata key 'a.strs' is array of string, expected an array of integers");
  EXPECT_EQ(h->get_int("a.missing").message(), "m.gguf: missing metadata key 'a.missing' (an integer)");
  EXPECT_EQ(*h->get_int("a.missing", 9), 9);
  EXPECT_EQ(*h->get_string("a.missing", "d"), "d");
  EXPECT_FALSE(h->get_int("a.str", 9).ok());  // present with the wrong type
  EXPECT_EQ(h->alignment, 32u);
  EXPECT_EQ(h->data_start % 32, 0u);
}

TEST(Gguf, GgmlTypeSizes) {
  struct Row {
    GgmlType t;
    const char* name;
    uint32_t block, size;
  };
  for (const Row& r : {Row{GgmlType::kF32, "F32", 1, 4}, Row{GgmlType::kF16, "F16", 1, 2},
                       Row{GgmlType::kBF16, "BF16", 1, 2}, Row{GgmlType::kQ4_0, "Q4_0", 32, 18},
                       Row{GgmlType::kQ4_1, "Q4_1", 32, 20}, Row{GgmlType::kQ5_0, "Q5_0", 32, 22},
                       Row{GgmlType::kQ5_1, "Q5_1", 32, 24}, Row{GgmlType::kQ8_0, "Q8_0", 32, 34},
                       Row{GgmlType::kQ8_1, "Q8_1", 32, 36}, Row{GgmlType::kQ2_K, "Q2_K", 256, 84},
                       Row{GgmlType::kQ3_K, "Q3_K", 256, 110}, Row{GgmlType::kQ4_K, "Q4_K", 256, 144},
                       Row{GgmlType::kQ5_K, "Q5_K", 256, 176}, Row{GgmlType::kQ6_K, "Q6_K", 256, 210},
                       Row{GgmlType::kQ8_K, "Q8_K", 256, 292}, Row{GgmlType::kIQ4_NL, "IQ4_NL", 32, 18},
                       Row{GgmlType::kIQ4_XS, "IQ4_XS", 256, 136}, Row{GgmlType::kI8, "I8", 1, 1},
                       Row{GgmlType::kI64, "I64", 1, 8}, Row{GgmlType::kF64, "F64", 1, 8}}) {
    const GgmlTypeTraits* t = ggml_type_traits(static_cast<uint32_t>(r.t));
    ASSERT_NE(t, nullptr) << r.name;
    EXPECT_EQ(t->name, r.name);
    EXPECT_EQ(t->block_size, r.block) << r.name;
    EXPECT_EQ(t->type_size, r.size) << r.name;
  }
  EXPECT_EQ(ggml_type_traits(4), nullptr);  // Q4_2, removed
  EXPECT_EQ(ggml_type_name(4), "type 4");
  EXPECT_EQ(ggml_type_traits(1000), nullptr);
}

// ---- the embedded tokenizer ----

TEST(Gguf, TokenizerJsonFollowsThePreTokenizerType) {
  auto doc = [](GgufWriteMetadata extra) {
    GgufWriteMetadata md = {{"tokenizer.ggml.model", W::string("gpt2")},
                            {"tokenizer.ggml.tokens", W::string_array({"a", "b", "ab", "<s>", "<u>"})},
                            {"tokenizer.ggml.token_type", W::i32_array({1, 1, 1, 3, 4})},
                            {"tokenizer.ggml.merges", W::string_array({"a b"})},
                            {"tokenizer.ggml.bos_token_id", W::u32(3)}};
    for (auto& kv : extra) md.push_back(kv);
    const std::string bytes = gguf_file_bytes(md, {});
    auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t.gguf");
    GB_CHECK(h.ok());
    auto j = gguf_tokenizer_json(*h);
    return j.ok() ? json::parse(*j) : json{{"error", j.message()}};
  };
  json qwen = doc({{"tokenizer.ggml.pre", W::string("qwen2")}});
  EXPECT_EQ(qwen["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"].get<std::string>().substr(0, 8), "(?i:'s|'");
  EXPECT_EQ(qwen["post_processor"]["type"], "ByteLevel");
  EXPECT_EQ(qwen["added_tokens"].size(), 2u);
  EXPECT_EQ(qwen["added_tokens"][0]["special"], true);
  EXPECT_EQ(qwen["added_tokens"][1]["special"], false);
  EXPECT_EQ(qwen["model"]["ignore_merges"], false);
  json llama3 = doc({{"tokenizer.ggml.pre", W::string("llama-bpe")}});
  EXPECT_NE(llama3["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"].get<std::string>().find("\\p{N}{1,3}"),
            std::string::npos);
  EXPECT_EQ(llama3["post_processor"]["type"], "TemplateProcessing");  // llama3 adds BOS by default
  EXPECT_EQ(llama3["model"]["ignore_merges"], true);
  json no_bos =
      doc({{"tokenizer.ggml.pre", W::string("llama-bpe")}, {"tokenizer.ggml.add_bos_token", W::boolean(false)}});
  EXPECT_EQ(no_bos["post_processor"]["type"], "ByteLevel");
  json gpt2 = doc({{"tokenizer.ggml.pre", W::string("gpt-2")}});
  EXPECT_EQ(gpt2["pre_tokenizer"]["use_regex"], true);
  json def = doc({});
  EXPECT_EQ(def["pre_tokenizer"]["pretokenizers"].size(), 5u);
  json bad = doc({{"tokenizer.ggml.pre", W::string("tekken")}});
  EXPECT_HAS(bad["error"].get<std::string>(), "t.gguf: tokenizer.ggml.pre 'tekken' is not supported");

  // The document loads and encodes: "ab" merges, "<s>" is special.
  const std::string bytes = gguf_file_bytes({{"tokenizer.ggml.model", W::string("gpt2")},
                                             {"tokenizer.ggml.pre", W::string("llama-bpe")},
                                             {"tokenizer.ggml.tokens", W::string_array({"a", "b", "ab", "<s>"})},
                                             {"tokenizer.ggml.token_type", W::i32_array({1, 1, 1, 3})},
                                             {"tokenizer.ggml.merges", W::string_array({"a b"})},
                                             {"tokenizer.ggml.bos_token_id", W::u32(3)}},
                                            {});
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t.gguf");
  ASSERT_TRUE(h.ok());
  auto text = gguf_tokenizer_json(*h);
  ASSERT_TRUE(text.ok()) << text.message();
  auto t = Tokenizer::from_json_text(*text, "t");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(t->encode("ab<s>a"), (std::vector<int32_t>{2, 3, 0}));
  EXPECT_EQ(t->encode("ab", true), (std::vector<int32_t>{3, 2}));
}

}  // namespace
}  // namespace gb::engine

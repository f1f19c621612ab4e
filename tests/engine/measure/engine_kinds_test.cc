// The engine's job kinds: perplexity against transformers' values
// (tools/gen_ppl_expected.py -> tests/data/ppl), the window arithmetic of both
// modes, and the memory and speed kinds' figures.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include "engine/jobs/placement.h"
#include "engine/measure/measures.h"
#include "engine/measure/perplexity.h"
#include "engine/kv/kv_cache.h"
#include "engine/kv/kv_calibration.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/weights/weight_source.h"
#include "engine/backend/cpu_backend.h"

namespace gb::engine {
namespace {
namespace engine_kinds_test {

namespace fs = std::filesystem;
const std::string kData = std::string(GB_SOURCE_DIR) + "/tests/data";

const Metric* metric(const JobOutput& o, const std::string& name) {
  for (const Metric& m : o.metrics)
    if (m.name == name) return &m;
  return nullptr;
}
double value_of(const JobOutput& o, const std::string& name) {
  const Metric* m = metric(o, name);
  EXPECT_TRUE(m && m->value) << name;
  return m && m->value ? *m->value : NAN;
}

// The corpus prefix the reference values were computed on, as a text: file.
std::string corpus_prefix_file(size_t bytes) {
  std::ifstream in(kData + "/corpus/opticks-book1-part1.txt", std::ios::binary);
  std::string text(bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(bytes));
  const std::string path = (fs::temp_directory_path() / ("gb_ppl_" + std::to_string(::getpid()) + ".txt")).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

Result<JobOutput> run(const std::string& kind, const Json& params) {
  const MeasureFn* k = find_measure(kind);
  EXPECT_NE(k, nullptr);
  if (Status s = check_job(kind, params); !s.ok()) return s.error();
  return (*k)(params, nullptr);
}

TEST(Measures, EveryJobKindHasOneRunFunctionAndNoMeasureLacksAKind) {
  std::vector<std::string> kinds, measured;
  for (const JobKind& k : job_kinds()) kinds.push_back(k.name);
  for (const Measure& m : measures()) measured.push_back(m.kind);
  EXPECT_EQ(measured, kinds);  // the same kinds, in the same order, each once
  for (const std::string& k : kinds) EXPECT_NE(find_measure(k), nullptr) << k;
  EXPECT_EQ(find_measure("no-such-kind"), nullptr);
}

// Each kind's registry row lists every metric its run function reports (report
// columns are validated against that list, and a job without results shows its
// outcome in those cells), and every listed metric is reported by some run.
TEST(Measures, EveryReportedMetricIsListedByItsKind) {
  const std::string text = corpus_prefix_file(600);
  const std::vector<std::pair<std::string, std::vector<Json>>> runs = {
      {"roofline",
       {{{"model", "qwen1.5-7b"}, {"weight_format", "f16"}, {"kv_format", "f16+sink4+win252"}, {"device", "rtx4090"},
         {"context", 4096}, {"prompt_tokens", 512}},
        {{"model", "qwen1.5-7b"}, {"weight_format", "f16"}, {"kv_format", "f16"}, {"device", "rtx4090"}}}},
      {"sleep", {{{"seconds", 0}}}},
      {"ppl", {{{"model", "hf:" + kData + "/golden/gpt2"}, {"dataset", "text:" + text},
                {"tokenizer", kData + "/ppl/byte_tokenizer.json"}, {"context", 32}, {"chunks", 1}}}},
      {"memory", {{{"model", "hf:" + kData + "/golden/llama_gqa"}, {"context", 8}}}},
      {"speed", {{{"model", "hf:" + kData + "/golden/qwen3"}, {"prompt_tokens", 4}, {"gen_tokens", 2}},
                 {{"model", "hf:" + kData + "/golden/qwen3"}, {"prompt_tokens", 4}, {"gen_tokens", 2},
                  {"op_breakdown", true}}}},
      {"decode_curve", {{{"model", "hf:" + kData + "/golden/llama_gqa"}, {"gen_tokens", 4}}}},
      {"context_search", {{{"model", "hf:" + kData + "/golden/llama_gqa"}, {"memory_budget_gib", 0.0005},
                           {"prefill_chunk", 32}}}},
      {"quant_error", {{{"weight_format", "int8-tensor"}, {"shape", "4x64"}}}},
      {"mc_accuracy", {{{"model", "hf:" + kData + "/reference_model"}, {"dataset", "mmlu:" + kData + "/datasets/mmlu"},
                        {"shots", 1}, {"max_new_tokens", 2}}}},
      {"gen_accuracy", {{{"model", "hf:" + kData + "/reference_model"},
                         {"dataset", "jsonl:" + kData + "/datasets/jsonl/qa.jsonl:prompt,answer"},
                         {"max_new_tokens", 4}}}},
      {"kv_calibrate", {{{"model", "hf:" + kData + "/reference_model"},
                         {"dataset", "text:" + kData + "/reference_model/heldout.txt"}, {"context", 8},
                         {"calib_samples", 1}}}},
  };
  ASSERT_EQ(runs.size(), job_kinds().size());
  for (const auto& [kind, param_sets] : runs) {
    const JobKind* k = find_job_kind(kind);
    ASSERT_NE(k, nullptr) << kind;
    std::set<std::string> reported;
    for (const Json& p : param_sets) {
      Result<JobOutput> out = run(kind, p);
      ASSERT_TRUE(out.ok()) << kind << ": " << out.error().message;
      for (const Metric& m : out->metrics) {
        EXPECT_TRUE(kind_reports(*k, m.name)) << kind << " reports " << m.name << ", which its row does not list";
        reported.insert(k->keyed_metrics && m.name.find(':') != std::string::npos ? m.name.substr(0, m.name.find(':')) : m.name);
      }
    }
    for (const std::string& m : k->metrics) EXPECT_TRUE(reported.count(m)) << kind << " lists " << m << " but never reports it";
  }
  fs::remove(text);
}

TEST(PplWindows, LlamaCppScoresTheSecondHalfOfWholeChunks) {
  const auto w = llama_cpp_windows(100, 32);
  ASSERT_EQ(w.size(), 3u);  // 96 tokens in chunks, 4 left over
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(w[i].begin, static_cast<int64_t>(i) * 32);
    EXPECT_EQ(w[i].length, 32);
    EXPECT_EQ(w[i].first_scored, 16);
    EXPECT_EQ(w[i].end_scored, 31);  // 15 predictions per chunk
  }
  EXPECT_TRUE(llama_cpp_windows(31, 32).empty());
}

// Every token once, except those with no context in their window: the first,
// and (when stride == ctx, as in Hugging Face) the first of every window.
TEST(PplWindows, SlidingWindowScoresEveryTokenWithContextOnce) {
  for (auto [n, ctx, stride] : {std::tuple{100, 32, 20}, {100, 32, 32}, {64, 32, 8}, {10, 32, 16}}) {
    const auto w = sliding_windows(n, ctx, stride);
    std::vector<int> scored(static_cast<size_t>(n), 0);
    for (const PplWindow& x : w) {
      EXPECT_LE(x.length, ctx);
      for (int64_t j = x.first_scored; j < x.end_scored; ++j) ++scored[static_cast<size_t>(x.begin + j + 1)];
    }
    EXPECT_EQ(scored[0], 0);
    for (int64_t t = 1; t < n; ++t)
      EXPECT_EQ(scored[static_cast<size_t>(t)], stride == ctx && t % ctx == 0 ? 0 : 1) << n << " " << ctx << " " << stride;
    EXPECT_EQ(w.back().begin + w.back().length, n);
  }
}

TEST(PplArithmetic, NllAndStandardError) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(token_nll(logits, 0), lse - 1.0, 1e-12);
  EXPECT_NEAR(token_nll(logits, 2), lse - 3.0, 1e-12);
  PplStats s;
  for (double v : {1.0, 2.0, 3.0, 4.0}) s.add(v);
  EXPECT_DOUBLE_EQ(s.mean_nll(), 2.5);
  EXPECT_NEAR(s.ppl(), std::exp(2.5), 1e-9);
  EXPECT_NEAR(s.ppl_stderr(), std::exp(2.5) * std::sqrt(1.25 / 3), 1e-9);  // var 1.25, n - 1 = 3
}

TEST(PplJob, MatchesTransformersInBothModes) {
  std::ifstream in(kData + "/ppl/expected.json");
  const Json expected = Json::parse(in);
  const std::string text = corpus_prefix_file(expected["text_bytes"].get<size_t>());
  for (const Json& want : expected["results"]) {
    for (int64_t batch : {1, 3}) {
      Json p = {{"model", "hf:" + kData + "/golden/gpt2"},
                {"dataset", "text:" + text},
                {"tokenizer", kData + "/ppl/byte_tokenizer.json"},
                {"context", want["context"]},
                {"ppl_mode", want["mode"]},
                {"batch_size", batch},
                {"threads", 2}};
      if (want.contains("stride")) p["stride"] = want["stride"];
      Result<JobOutput> out = run("ppl", p);
      ASSERT_TRUE(out.ok()) << out.error().message;
      const std::string where = want["mode"].get<std::string>() + " batch " + std::to_string(batch);
      EXPECT_EQ(value_of(*out, "tokens_scored"), want["tokens_scored"].get<double>()) << where;
      EXPECT_EQ(value_of(*out, "dataset_tokens"), expected["tokens"].get<double>()) << where;
      EXPECT_NEAR(value_of(*out, "nll_mean"), want["nll_mean"].get<double>(), 1e-5) << where;
      EXPECT_NEAR(value_of(*out, "ppl") / want["ppl"].get<double>(), 1.0, 1e-4) << where;
      EXPECT_NEAR(value_of(*out, "ppl_stderr") / want["ppl_stderr"].get<double>(), 1.0, 1e-3) << where;
      EXPECT_EQ(out->device["backend"], "cpu");
    }
  }
  // `chunks` caps the evaluation.
  Result<JobOutput> few = run("ppl", {{"model", "hf:" + kData + "/golden/gpt2"},
                                      {"dataset", "text:" + text},
                                      {"tokenizer", kData + "/ppl/byte_tokenizer.json"},
                                      {"context", 32},
                                      {"chunks", 2}});
  ASSERT_TRUE(few.ok()) << few.error().message;
  EXPECT_EQ(value_of(*few, "tokens_scored"), 30);
  fs::remove(text);
}

TEST(PplJob, ClearErrors) {
  const std::string model = "hf:" + kData + "/golden/gpt2";
  Result<JobOutput> r = run("ppl", {{"model", model}, {"dataset", "text:/nonexistent/wiki.test.raw"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/wiki.test.raw"), std::string::npos) << r.error().message;

  const std::string text = corpus_prefix_file(200);
  r = run("ppl", {{"model", model}, {"dataset", "text:" + text}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("without a tokenizer"), std::string::npos) << r.error().message;

  r = run("ppl", {{"model", model},
                  {"dataset", "text:" + text},
                  {"tokenizer", kData + "/ppl/byte_tokenizer.json"},
                  {"context", 512}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("fewer than one context of 512"), std::string::npos) << r.error().message;

  r = run("ppl", {{"model", model}, {"dataset", "text:" + text}, {"weight_format", "int4-g128"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("int4-g128"), std::string::npos) << r.error().message;
  fs::remove(text);
}

TEST(MemoryJob, ReportsWeightAndKvBytes) {
  Result<JobOutput> out = run("memory", {{"model", "hf:" + kData + "/golden/llama_gqa"},
                                         {"kv_format", "f16"},
                                         {"context", 48},
                                         {"batch_size", 2}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  // llama_gqa: 2 layers, 2 KV heads of 16: 2 x 2 x 2 x 16 x 2 bytes per token.
  EXPECT_EQ(value_of(*out, "kv_bytes_per_token"), 256);
  EXPECT_EQ(value_of(*out, "kv_bytes"), 256 * 48 * 2);
  EXPECT_EQ(value_of(*out, "kv_allocated_bytes"), 256 * 48 * 2);
  // f32 file: stored bytes = loaded bytes = 4 x parameters.
  EXPECT_EQ(value_of(*out, "stored_weight_bytes"), value_of(*out, "loaded_weight_bytes"));
  EXPECT_EQ(value_of(*out, "weight_bytes"), value_of(*out, "stored_weight_bytes"));
  EXPECT_GT(value_of(*out, "peak_rss_bytes"), value_of(*out, "loaded_weight_bytes"));
  // The model alone: resident with the weights loaded, before the cache; the job's
  // peak is at least that.
  EXPECT_GE(value_of(*out, "model_rss_bytes"), value_of(*out, "loaded_weight_bytes"));
  EXPECT_GE(value_of(*out, "peak_rss_bytes"), value_of(*out, "model_rss_bytes"));
}

TEST(SpeedJob, TimesPrefillAndDecode) {
  Result<JobOutput> out = run("speed", {{"model", "hf:" + kData + "/golden/qwen3"},
                                        {"prompt_tokens", 16},
                                        {"gen_tokens", 5},
                                        {"batch_size", 2},
                                        {"kv_format", "bf16+sink2+win8"}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_GT(value_of(*out, "prefill_ms"), 0);
  EXPECT_GT(value_of(*out, "tpot_ms"), 0);
  EXPECT_NEAR(value_of(*out, "decode_tokens_per_s"), 2 * 1000.0 / value_of(*out, "tpot_ms"), 1e-6);
  ASSERT_EQ(out->series.size(), 1u);
  EXPECT_EQ(out->series[0].points.size(), 5u);
  EXPECT_EQ(out->series[0].points.front().x, 17);
}

// Structure and arithmetic of the figures (not their speed): two timed runs of 4
// steps give 8 step times; the series is their per-step mean, so its mean is TPOT;
// the percentiles are ordered within [min, max]; the throughput is batch x one
// sequence's tokens/s; TTFT includes the prefill.
TEST(SpeedJob, RunsWarmupAndTimedRunsWithPercentiles) {
  Result<JobOutput> out = run("speed", {{"model", "hf:" + kData + "/golden/llama_gqa"},
                                        {"prompt_tokens", 8},
                                        {"gen_tokens", 4},
                                        {"batch_size", 2},
                                        {"warmup_steps", 2},
                                        {"timed_runs", 2}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(value_of(*out, "timed_steps"), 8);
  EXPECT_EQ(value_of(*out, "graph_steps"), 0);  // the cpu backend records no steps
  ASSERT_EQ(out->series.size(), 1u);
  ASSERT_EQ(out->series[0].points.size(), 4u);
  double sum = 0;
  for (const SeriesPoint& p : out->series[0].points) sum += p.y;
  const double tpot = value_of(*out, "tpot_ms");
  EXPECT_NEAR(sum / 4, tpot, 1e-9 * std::max(1.0, tpot));
  EXPECT_LE(value_of(*out, "step_min_ms"), value_of(*out, "step_p50_ms"));
  EXPECT_LE(value_of(*out, "step_p50_ms"), value_of(*out, "step_p90_ms"));
  EXPECT_LE(value_of(*out, "step_p90_ms"), value_of(*out, "step_p99_ms"));
  EXPECT_LE(value_of(*out, "step_p99_ms"), value_of(*out, "step_max_ms"));
  EXPECT_LE(value_of(*out, "step_min_ms"), tpot);
  EXPECT_GE(value_of(*out, "step_max_ms"), tpot);
  EXPECT_NEAR(value_of(*out, "seq_tokens_per_s"), 1000.0 / tpot, 1e-9 * value_of(*out, "seq_tokens_per_s"));
  EXPECT_NEAR(value_of(*out, "decode_tokens_per_s"), 2 * value_of(*out, "seq_tokens_per_s"), 1e-6);
  EXPECT_GE(value_of(*out, "ttft_ms"), value_of(*out, "prefill_ms"));
  EXPECT_LE(value_of(*out, "prefill_min_ms"), value_of(*out, "prefill_ms"));
  EXPECT_GE(value_of(*out, "prefill_max_ms"), value_of(*out, "prefill_ms"));
  for (const Metric& m : out->metrics) {
    const JobKind* speed = find_job_kind("speed");
    EXPECT_TRUE(kind_reports(*speed, m.name)) << m.name << " is not among the kind's declared metrics";
  }
}

// The op breakdown: per decode step of llama_gqa (2 layers, no q/k norms) with 2
// sequences, attention runs once per layer and sequence (4 calls), the norms twice
// per layer and once at the end (5), the linear layers qkv, o, gate|up and down per
// layer and the head (9); the four times sum to the step time.
TEST(SpeedJob, OpBreakdownCountsEveryOpOfTheDecodeStep) {
  Result<JobOutput> out = run("speed", {{"model", "hf:" + kData + "/golden/llama_gqa"},
                                        {"prompt_tokens", 5},
                                        {"gen_tokens", 3},
                                        {"batch_size", 2},
                                        {"op_breakdown", true}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(value_of(*out, "decode_attn_calls"), 4);
  EXPECT_EQ(value_of(*out, "decode_norm_calls"), 5);
  EXPECT_EQ(value_of(*out, "decode_linear_calls"), 9);
  const double sum = value_of(*out, "decode_attn_ms") + value_of(*out, "decode_linear_ms") +
                     value_of(*out, "decode_norm_ms") + value_of(*out, "decode_other_ms");
  EXPECT_NEAR(sum, value_of(*out, "tpot_ms"), 1e-9 * std::max(1.0, sum));
  for (const char* m : {"decode_attn_ms", "decode_linear_ms", "decode_norm_ms"}) EXPECT_GT(value_of(*out, m), 0) << m;
  // Without the flag there is no breakdown.
  Result<JobOutput> plain = run("speed", {{"model", "hf:" + kData + "/golden/llama_gqa"}, {"gen_tokens", 2}});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(metric(*plain, "decode_attn_ms"), nullptr);
}

// kv_cache none: the same figures, every step recomputing the whole sequence (so a
// streaming cache, which cannot hold it, is refused).
TEST(SpeedJob, NoKvCacheRecomputesTheSequence) {
  Result<JobOutput> out = run("speed", {{"model", "hf:" + kData + "/golden/llama_gqa"},
                                        {"prompt_tokens", 6},
                                        {"gen_tokens", 3},
                                        {"kv_cache", "none"},
                                        {"warmup_steps", 0}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(value_of(*out, "timed_steps"), 3);
  ASSERT_EQ(out->series[0].points.size(), 3u);
  EXPECT_EQ(out->series[0].points.back().x, 9);
  Result<JobOutput> bad = run("speed", {{"model", "hf:" + kData + "/golden/llama_gqa"},
                                        {"kv_cache", "none"},
                                        {"kv_format", "f32+sink2+win8"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("kv_cache none"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(check_job("speed", {{"model", "synthetic:gpt2"}, {"kv_cache", "some"}}).ok());
}

TEST(EngineJobs, PlacementNeedsTheCpuAndTheWeights) {
  const Requirement r = engine_job_requirement({{"model", "synthetic:gpt2"}, {"context", 1024}});
  EXPECT_EQ(r.device, "cpu");
  // 124,439,808 parameters in f32, plus 1024 tokens of f32 KV (12 x 2 x 768 x 4 bytes each).
  EXPECT_EQ(r.memory_bytes, 124439808LL * 4 + 1024LL * 12 * 2 * 768 * 4);
}

// The estimate at the formats' bits: int8-channel weights are 8 bits plus one f16
// scale per row (effective_bits from the format table), an f16 cache 2 bytes per
// element; a streaming cache holds sink + window tokens at most.
TEST(EngineJobs, PlacementUsesTheFormatsBitsAndTheBackend) {
  const Requirement r = engine_job_requirement(
      {{"model", "synthetic:gpt2"}, {"context", 1024}, {"weight_format", "int8-channel"}, {"kv_format", "f16"},
       {"batch_size", 2}, {"backend", "cuda"}});
  EXPECT_EQ(r.device, "cuda");
  Result<WeightFormat> f = parse_weight_format("int8-channel");
  ASSERT_TRUE(f.ok());
  EXPECT_LT(f->effective_bits, 9);
  EXPECT_EQ(r.memory_bytes, static_cast<int64_t>(124439808.0 * f->effective_bits / 8.0 + 2048.0 * 12 * 2 * 768 * 2));
  const Requirement s = engine_job_requirement({{"model", "synthetic:gpt2"}, {"context", 1024},
                                                {"weight_format", "f16"}, {"kv_format", "f16+sink4+win60"}});
  EXPECT_EQ(s.device, "cpu");
  EXPECT_EQ(s.memory_bytes, 124439808LL * 2 + 64LL * 12 * 2 * 768 * 2);
}

// `backend` is a parameter of the measured kinds (so part of their hash), checked
// against its domain, and a backend this engine lacks is an error that says so.
TEST(EngineJobs, BackendParameterIsCheckedAndCudaIsRefusedWithoutABackend) {
  EXPECT_TRUE(check_job("speed", {{"model", "synthetic:gpt2"}, {"backend", "cuda"}}).ok());
  Status bad = check_job("speed", {{"model", "synthetic:gpt2"}, {"backend", "tpu"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("backend"), std::string::npos) << bad.message();
  const JobKind* speed = find_job_kind("speed");
  ASSERT_NE(speed, nullptr);
  EXPECT_EQ(project_params(*speed, {{"model", "m"}, {"backend", "cuda"}, {"device", "h100-sxm"}}),
            (Json{{"model", "m"}, {"backend", "cuda"}}));
  Result<JobOutput> out = run("memory", {{"model", "hf:" + kData + "/golden/llama_gqa"}, {"backend", "cuda"}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("cuda"), std::string::npos) << out.error().message;
}

}  // namespace engine_kinds_test
}  // namespace
}  // namespace gb::engine

namespace gb::engine {
namespace {
namespace engine_kinds_test {

// A tokenizer that adds BOS (here "<s>", id 1, by its TemplateProcessing): in
// llama.cpp mode every chunk starts with BOS in place of its first token, as
// llama-perplexity does; the sliding mode feeds the text as it is.
TEST(PplJob, LlamaCppModePutsBosFirstInEveryChunk) {
  const std::string tok_path = kData + "/tokenizer/tiny_metaspace_norm.json";
  const std::string text = corpus_prefix_file(1200);
  Result<JobOutput> out = run("ppl", {{"model", "synthetic:gpt2@2"},
                                      {"dataset", "text:" + text},
                                      {"tokenizer", tok_path},
                                      {"context", 32},
                                      {"chunks", 2}});
  ASSERT_TRUE(out.ok()) << out.error().message;

  // The same by hand.
  auto tok = Tokenizer::from_file(tok_path);
  ASSERT_TRUE(tok.ok());
  std::ifstream in(text, std::ios::binary);
  const std::string body((std::istreambuf_iterator<char>(in)), {});
  const std::vector<int32_t> ids = tok->encode(body, false);
  auto w = open_weights("synthetic:gpt2@2");
  ASSERT_TRUE(w.ok());
  auto backend = make_cpu_backend(2);
  auto model = Model::load(**w, *backend);
  ASSERT_TRUE(model.ok());
  PplStats with_bos;
  for (int c = 0; c < 2; ++c) {
    std::vector<int32_t> chunk(ids.begin() + 32 * c, ids.begin() + 32 * (c + 1));
    chunk[0] = 1;  // <s>
    auto cache = (*model)->make_cache({}, 1);
    ASSERT_TRUE(cache.ok());
    std::vector<float> logits;
    SequenceStep s{0, chunk};
    ASSERT_TRUE((*model)->forward({&s, 1}, **cache, LogitsMode::kAll, &logits).ok());
    for (int j = 16; j < 31; ++j)
      with_bos.add(token_nll(std::span<const float>(logits).subspan(static_cast<size_t>(j) * 50257, 50257),
                             chunk[static_cast<size_t>(j + 1)]));
  }
  EXPECT_NEAR(value_of(*out, "nll_mean"), with_bos.mean_nll(), 1e-9);
  fs::remove(text);
}


// kv_calibrate against the ranges computed here: layer 0's keys and values by hand
// from the weights (embedding, RMS norm, k/v projections, RoPE at each position or
// none), every layer's from the forward pass's own f32 cache read through its
// layer views; the written calibration reads back through kv_calibration.h and an
// int8-calib cache takes it.
TEST(KvCalibrate, RangesAreThoseOfTheStoredKeysAndValuesAndTheFileReadsBack) {
  const std::string model = "hf:" + kData + "/reference_model";
  const std::string heldout = kData + "/reference_model/heldout.txt";
  constexpr int64_t kCtx = 12, kSamples = 3;
  auto w = open_weights(model);
  ASSERT_TRUE(w.ok()) << w.error().message;
  const ModelConfig c = (*w)->config();
  const int64_t L = c.num_layers, H = c.num_kv_heads, D = c.head_dim, E = c.hidden_size;
  std::ifstream in(heldout, std::ios::binary);
  const std::string body((std::istreambuf_iterator<char>(in)), {});
  const std::vector<int32_t> ids = (*w)->tokenizer()->encode(body, false);
  ASSERT_GE(static_cast<int64_t>(ids.size()), kCtx * kSamples);

  for (const std::string keys : {"rotated", "unrotated"}) {
    SCOPED_TRACE(keys);
    Result<JobOutput> out = run("kv_calibrate", {{"model", model}, {"dataset", "text:" + heldout}, {"context", kCtx},
                                                 {"calib_samples", kSamples}, {"calib_keys", keys}, {"threads", 2}});
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(value_of(*out, "samples"), kSamples);
    EXPECT_EQ(value_of(*out, "tokens"), kCtx * kSamples);
    ASSERT_EQ(out->files.size(), 1u);
    Result<KvCalibration> cal = parse_kv_calibration(out->files[0].content, "kv_calibration.json");
    ASSERT_TRUE(cal.ok()) << cal.error().message;
    EXPECT_EQ(cal->keys, keys);
    ASSERT_EQ(cal->num_layers, L);
    ASSERT_EQ(cal->num_kv_heads, H);
    // The series hold the same numbers.
    for (const Series& s : out->series) {
      const std::vector<float>& v = s.name == "k_min" ? cal->k_min : s.name == "k_max" ? cal->k_max
                                  : s.name == "v_min" ? cal->v_min : cal->v_max;
      ASSERT_EQ(s.points.size(), v.size()) << s.name;
      for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(s.points[i].y, v[i]) << s.name << " " << i;
    }

    // Layer 0 by hand.
    auto t = [&](const std::string& name) {
      Result<TensorView> v = (*w)->tensor(name);
      EXPECT_TRUE(v.ok()) << name;
      return *v;
    };
    const TensorView emb = t("model.embed_tokens.weight"), norm = t("model.layers.0.input_layernorm.weight");
    const TensorView wk = t("model.layers.0.self_attn.k_proj.weight"), wv = t("model.layers.0.self_attn.v_proj.weight");
    std::vector<double> kmin(H, 1e30), kmax(H, -1e30), vmin(H, 1e30), vmax(H, -1e30);
    for (int64_t s = 0; s < kSamples; ++s)
      for (int64_t p = 0; p < kCtx; ++p) {
        const int32_t tok = ids[static_cast<size_t>(s * kCtx + p)];
        std::vector<double> x(E);
        double ss = 0;
        for (int64_t i = 0; i < E; ++i) ss += std::pow(x[i] = element_as_f32(emb, tok * E + i), 2);
        const double r = 1.0 / std::sqrt(ss / static_cast<double>(E) + c.norm_eps);
        for (int64_t i = 0; i < E; ++i) x[i] *= r * element_as_f32(norm, i);
        for (int64_t h = 0; h < H; ++h) {
          std::vector<double> k(D), v(D);
          for (int64_t d = 0; d < D; ++d)
            for (int64_t i = 0; i < E; ++i) {
              k[d] += element_as_f32(wk, (h * D + d) * E + i) * x[i];
              v[d] += element_as_f32(wv, (h * D + d) * E + i) * x[i];
            }
          if (keys == "rotated")  // Hugging Face's rotate_half, position p
            for (int64_t i = 0; i < D / 2; ++i) {
              const double a = p * std::pow(c.rope_theta, -2.0 * i / D), k0 = k[i], k1 = k[i + D / 2];
              k[i] = k0 * std::cos(a) - k1 * std::sin(a);
              k[i + D / 2] = k1 * std::cos(a) + k0 * std::sin(a);
            }
          for (int64_t d = 0; d < D; ++d) {
            kmin[h] = std::min(kmin[h], k[d]), kmax[h] = std::max(kmax[h], k[d]);
            vmin[h] = std::min(vmin[h], v[d]), vmax[h] = std::max(vmax[h], v[d]);
          }
        }
      }
    for (int64_t h = 0; h < H; ++h) {
      const double tol = 1e-3 * std::max({std::fabs(kmin[h]), std::fabs(kmax[h]), 1.0});
      EXPECT_NEAR(cal->k_min[h], kmin[h], tol) << "head " << h;
      EXPECT_NEAR(cal->k_max[h], kmax[h], tol) << "head " << h;
      EXPECT_NEAR(cal->v_min[h], vmin[h], tol) << "head " << h;
      EXPECT_NEAR(cal->v_max[h], vmax[h], tol) << "head " << h;
    }

    // Every layer: the forward pass's f32 cache of the same policy, read in place.
    auto backend = make_cpu_backend(2);
    auto m = Model::load(**w, *backend);
    ASSERT_TRUE(m.ok());
    KvCacheOptions o;
    if (keys == "unrotated") o.window_tokens = kCtx;
    std::vector<float> ref(static_cast<size_t>(4 * L * H));
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = (i / static_cast<size_t>(L * H)) % 2 == 0 ? 1e30f : -1e30f;
    for (int64_t s = 0; s < kSamples; ++s) {
      auto cache = (*m)->make_cache(o, 1);
      ASSERT_TRUE(cache.ok());
      std::vector<float> logits;
      const SequenceStep st{0, std::span<const int32_t>(ids).subspan(static_cast<size_t>(s * kCtx), kCtx)};
      ASSERT_TRUE((*m)->forward({&st, 1}, **cache, LogitsMode::kLast, &logits).ok());
      for (int64_t l = 0; l < L; ++l) {
        const KvLayerView view = (*cache)->layer(0, l);
        ASSERT_EQ(view.keys_unrotated, keys == "unrotated");
        for (int which = 0; which < 2; ++which) {
          const kernels::KvPlane plane = which == 0 ? view.k_plane() : view.v_plane();
          for (int64_t j = 0; j < view.len * H * D; ++j) {
            const size_t at = static_cast<size_t>(l * H + (j % (H * D)) / D);
            float& mn = ref[static_cast<size_t>(2 * which * L * H) + at];
            float& mx = ref[static_cast<size_t>((2 * which + 1) * L * H) + at];
            const float x = reinterpret_cast<const float*>(plane.slot(j / (H * D)))[j % (H * D)];
            mn = std::min(mn, x), mx = std::max(mx, x);
          }
        }
      }
    }
    for (int64_t i = 0; i < L * H; ++i) {
      EXPECT_EQ(cal->k_min[i], ref[i]) << i;
      EXPECT_EQ(cal->k_max[i], ref[L * H + i]) << i;
      EXPECT_EQ(cal->v_min[i], ref[2 * L * H + i]) << i;
      EXPECT_EQ(cal->v_max[i], ref[3 * L * H + i]) << i;
    }

    // An int8-calib cache of the matching policy takes it; the other refuses it.
    KvCacheOptions q;
    q.element = KvElement::kInt8Calib;
    q.calibration = std::make_shared<const KvCalibration>(*cal);
    if (keys == "unrotated") q.window_tokens = 8;
    EXPECT_TRUE((*m)->make_cache(q, 1).ok());
    q.window_tokens = keys == "unrotated" ? 0 : 8;
    EXPECT_FALSE((*m)->make_cache(q, 1).ok());
  }
}
}  // namespace engine_kinds_test
}  // namespace
}  // namespace gb::engine

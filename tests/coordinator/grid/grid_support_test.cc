// coordinator/grid/grid_support.h: a loaded grid whose model x weight format x KV format x
// backend combinations the engine cannot run is refused before any job runs, every
// problem listed with the grid path of the format, by the engine's own rule
// (tests/engine/spec/format_support_test.cc). Not here: the files (grid_inputs_test.cc).
#include "coordinator/grid/grid_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "coordinator/grid/grid.h"

namespace gb::coord {
namespace {

namespace fs = std::filesystem;

std::string write_grid(const std::string& name, const std::string& text) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("gb_grid_support_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path p = dir / name;
  std::ofstream(p) << text;
  return p.string();
}

TEST(GridSupport, CombinationsTheEngineCannotRunAreRefusedWithTheirPaths) {
  // gpt2 (hidden 768, MLP 3072, 1024 learned positions); the golden llama (hidden 64).
  const std::string golden = "hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/llama_gqa";
  const std::string path = write_grid("bad.json", R"({"name": "bad",
    "axes": {"weight_format": ["f16", "int8-g512", "int8-llm"], "kv_format": ["f16", "f16+sink4+win2048"]},
    "fixed": {"model": "synthetic:gpt2", "prompt_tokens": 8, "gen_tokens": 2},
    "include": [{"model": ")" + golden + R"(", "weight_format": "int4-g128", "prompt_tokens": 8, "gen_tokens": 2}],
    "measure": ["speed"]})");
  Result<Grid> g = load_grid(path);
  ASSERT_FALSE(g.ok());
  const std::string m = g.message();
  EXPECT_NE(m.find(path + ": $.axes.weight_format[1]: weight format 'int8-g512': hidden_size 768 is not a multiple "
                          "of its groups of 512 (model synthetic:gpt2, backend cpu)"),
            std::string::npos)
      << m;
  // LLM.int8() quantizes activations, which the CPU backend runs (activation_quantization_runs_on).
  EXPECT_EQ(m.find("'int8-llm'"), std::string::npos) << m;
  EXPECT_NE(m.find(path + ": $.axes.kv_format[1]: KV format 'f16+sink4+win2048': a streaming cache of 2052 slots "
                          "exceeds the model's 1024 positions"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(path + ": $.include[0].weight_format: weight format 'int4-g128': hidden_size 64 is not a "
                          "multiple of its groups of 128 (model " + golden + ", backend cpu)"),
            std::string::npos)
      << m;
  // Each problem once, however many jobs share it; f16 with a full cache is fine.
  size_t n = 0;
  for (size_t at = m.find("'int8-g512'"); at != std::string::npos; at = m.find("'int8-g512'", at + 1)) ++n;
  EXPECT_EQ(n, 1u) << m;
  EXPECT_EQ(m.find("'f16'"), std::string::npos) << m;

  // The same combinations are fine for the theory (roofline takes formats as numbers).
  Result<Grid> theory = load_grid(write_grid("theory.json", R"({"name": "theory",
    "axes": {"weight_format": ["int8-g512", "int8-llm"], "kv_format": ["f16+sink4+win2048"]},
    "fixed": {"model": "gpt2", "device": "h100-sxm", "context": 512}, "measure": ["roofline"]})"));
  EXPECT_TRUE(theory.ok()) << theory.message();
  // And a grid the engine can run passes.
  Result<Grid> ok = load_grid(write_grid("ok.json", R"({"name": "ok",
    "axes": {"weight_format": ["f16", "int4-g128", "q4_k"], "kv_format": ["int4-g32", "f16+sink4+win1000"]},
    "fixed": {"model": "synthetic:gpt2", "prompt_tokens": 8, "gen_tokens": 2}, "measure": ["speed"]})"));
  EXPECT_TRUE(ok.ok()) << ok.message();
}

}  // namespace
}  // namespace gb::coord

// The CLI on hostile input files (issue 14, section 1): grids nested 100,000 deep,
// numbers past a double, files over the 16 MiB limit, a config.json whose
// hidden_size is 1e400. Each is a clean "FILE: $.path: ..." error and exit 2,
// never a signal or an uncaught exception (exit 134).
#include <string>
#include <vector>

#include "tests/cli/cli_helpers.h"

namespace gb::cli_testing {
namespace {

void expect_refused(const Output& o, const std::string& expected) {
  EXPECT_EQ(o.code, 2) << o.err.substr(0, 500);
  EXPECT_NE(o.err.find(expected), std::string::npos) << o.err.substr(0, 500);
}

TEST(CliBadInput, GridsNested100000DeepAreRefused) {
  const std::string d = temp_dir();
  write_file(d + "/deep.json", std::string(100000, '[') + std::string(100000, ']'));
  expect_refused(gridbench(d, {"expand", d + "/deep.json"}), d + "/deep.json: $[0][0]");
  expect_refused(gridbench(d, {"expand", d + "/deep.json"}), "nested deeper than 64 levels");
  write_file(d + "/deep.yaml", "axes: " + std::string(100000, '[') + std::string(100000, ']') + "\n");
  expect_refused(gridbench(d, {"expand", d + "/deep.yaml"}), d + "/deep.yaml: ");
  expect_refused(gridbench(d, {"expand", d + "/deep.yaml"}), "nested deeper than 64 levels");
  // Deeper than 64 but within yaml-cpp's own limit: the converter names the path.
  write_file(d + "/deep70.yaml", "axes: " + std::string(70, '[') + std::string(70, ']') + "\n");
  expect_refused(gridbench(d, {"expand", d + "/deep70.yaml"}), d + "/deep70.yaml: $.axes[0][0]");
}

TEST(CliBadInput, NumbersPastADoubleAreRefused) {
  const std::string d = temp_dir();
  write_file(d + "/big.json", R"({"name": "big", "axes": {"seconds": [1e400]}, "measure": ["sleep"]})");
  expect_refused(gridbench(d, {"expand", d + "/big.json"}),
                 d + "/big.json: $.axes.seconds[0]: number 1e400 is outside the range of a double");
  write_file(d + "/big.yaml", "name: big\naxes:\n  seconds: [1e400]\nmeasure: [sleep]\n");
  Output y = gridbench(d, {"expand", d + "/big.yaml"});
  expect_refused(y, d + "/big.yaml: $.axes.seconds[0]: number 1e400 is outside the range of a double");
  // And through `run`: nothing is written.
  Output r = gridbench(d, {"run", d + "/big.json", "--db", d + "/x.db", "--out", d + "/out"});
  expect_refused(r, "number 1e400");
  EXPECT_FALSE(fs::exists(d + "/x.db"));
}

TEST(CliBadInput, GridsOver16MiBAreRefused) {
  const std::string d = temp_dir();
  const std::string padding(16 << 20, ' ');
  write_file(d + "/huge.json", R"({"name": "huge", "axes": {"seconds": [0]}, "measure": ["sleep"]})" + padding);
  expect_refused(gridbench(d, {"expand", d + "/huge.json"}),
                 d + "/huge.json: 16777280 bytes, more than the limit of 16 MiB");
  write_file(d + "/huge.yaml", "name: huge\n" + padding);
  expect_refused(gridbench(d, {"expand", d + "/huge.yaml"}), "more than the limit of 16 MiB");
}

TEST(CliBadInput, ConfigWithAHiddenSizePastADoubleIsRefused) {
  const std::string d = temp_dir();
  fs::create_directories(d + "/model");
  std::string config = slurp(kSource + "/tests/data/golden/llama_gqa/config.json");
  const std::string from = "\"hidden_size\": 64";
  ASSERT_NE(config.find(from), std::string::npos);
  config.replace(config.find(from), from.size(), "\"hidden_size\": 1e400");
  write_file(d + "/model/config.json", config);
  fs::copy_file(kSource + "/tests/data/golden/llama_gqa/model.safetensors", d + "/model/model.safetensors");
  Output o = gridbench(d, {"generate", "--model", "hf:" + d + "/model", "--tokenizer",
                           kSource + "/tests/data/ppl/byte_tokenizer.json", "--prompt", "x", "--max-tokens", "1"});
  expect_refused(o, d + "/model/config.json: $.hidden_size: number 1e400 is outside the range of a double");
  // Nested past 64 levels in config.json: the same.
  write_file(d + "/model/config.json", "{\"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  Output deep = gridbench(d, {"generate", "--model", "hf:" + d + "/model", "--tokenizer",
                              kSource + "/tests/data/ppl/byte_tokenizer.json", "--prompt", "x"});
  expect_refused(deep, d + "/model/config.json: $.x[0]");
}

TEST(CliBadInput, FormatsTheEngineCannotRunAreRefusedBeforeAnythingRuns) {
  // gpt2: hidden 768 (not groups of 512), 1024 learned positions (no window of 2048).
  const std::string d = temp_dir();
  write_file(d + "/g.json", R"({"name": "g", "axes": {"weight_format": ["f16", "int8-g512"],
    "kv_format": ["f16", "f16+sink4+win2048"]}, "fixed": {"model": "synthetic:gpt2", "prompt_tokens": 4,
    "gen_tokens": 1}, "measure": ["speed"]})");
  Output r = gridbench(d, {"run", d + "/g.json", "--db", d + "/x.db", "--out", d + "/out"});
  expect_refused(r, d + "/g.json: $.axes.weight_format[1]: weight format 'int8-g512': hidden_size 768 is not a "
                        "multiple of its groups of 512 (model synthetic:gpt2, backend cpu)");
  expect_refused(r, d + "/g.json: $.axes.kv_format[1]: KV format 'f16+sink4+win2048': a streaming cache of 2052 "
                        "slots exceeds the model's 1024 positions");
  EXPECT_FALSE(fs::exists(d + "/x.db"));
  EXPECT_FALSE(fs::exists(d + "/out"));
}

// A job reference ("job:KIND", a grid's own kv_calibrate output) that names nothing
// it can be: each refused by `gridbench expand` with its path, exit 2.
TEST(CliBadInput, BadJobReferencesAreRefusedWithTheirPath) {
  const std::string d = temp_dir();
  const std::string ref = kSource + "/tests/data/reference_model";
  auto grid = [&](const std::string& name, const std::string& fixed_extra, const std::string& measure) {
    write_file(d + "/" + name + ".json", R"({"name": ")" + name + R"(", "axes": {"kv_format": ["int8", "int8-calib"]},
      "fixed": {"model": "hf:)" + ref + R"(", "dataset": "text:)" + ref + R"(/heldout.txt", "context": 16)" +
                                            fixed_extra + R"(}, "measure": )" + measure + "}");
    return gridbench(d, {"expand", d + "/" + name + ".json"});
  };
  const std::string calibrate = R"({"kind": "kv_calibrate", "calib_samples": 2})";
  expect_refused(grid("ppl", R"(, "kv_calibration": "job:ppl")", "[\"ppl\", " + calibrate + "]"),
                 d + "/ppl.json: $.fixed.kv_calibration: expected \"job:kv_calibrate\"");
  expect_refused(grid("none", R"(, "kv_calibration": "job:nonexistent")", "[\"ppl\", " + calibrate + "]"),
                 d + "/none.json: $.fixed.kv_calibration: expected \"job:kv_calibrate\"");
  expect_refused(grid("missing", R"(, "kv_calibration": "job:kv_calibrate")", R"(["ppl"])"),
                 d + "/missing.json: $.fixed.kv_calibration: \"job:kv_calibrate\" names this grid's kv_calibrate "
                     "measure, but it has none (measure: ppl)");
  expect_refused(grid("chain", R"(, "kv_calibration": "job:kv_calibrate")",
                      R"(["ppl", {"kind": "kv_calibrate", "calib_samples": 2, "tokenizer": "job:kv_calibrate"}])"),
                 d + "/chain.json: $.measure[1].tokenizer: a kv_calibrate measure cannot depend on another job's "
                     "output");
  expect_refused(grid("other", R"(, "tokenizer": "job:kv_calibrate")", "[\"ppl\", " + calibrate + "]"),
                 d + "/other.json: $.fixed.tokenizer: a job's output (\"job:KIND\") is taken only by kv_calibration");
  Output ok = grid("ok", R"(, "kv_calibration": "job:kv_calibrate")", "[\"ppl\", " + calibrate + "]");
  EXPECT_EQ(ok.code, 0) << ok.err;
}

}  // namespace
}  // namespace gb::cli_testing

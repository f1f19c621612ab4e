// The stated limits on what a grid expands to, checked before anything is expanded:
// jobs per grid (200,000; grid_fuzz's first run ran out of memory on a grid whose
// points x repeats expanded to ~10^8 jobs), memory of job parameters (512 MiB), and a
// YAML document's size and value count once aliases are expanded (16 MiB of text, as
// a grid's; as many values as its text could hold, plus 100,000); and the
// YAML reader's refusal of text that is not UTF-8 (grid_fuzz's later findings). Not
// here: the other grid checks (grid_test.cc), the parser's size and depth limits
// (tests/common/json_parse_test.cc).
#include <chrono>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "coordinator/grid/grid.h"
#include "coordinator/grid/grid_yaml.h"

namespace gb::coord {
namespace {

// {"seconds": [0, 1e-06, ...]} with n values.
std::string seconds_axis(int n) {
  std::string v;
  for (int i = 0; i < n; ++i) v += (i ? "," : "") + std::to_string(i * 1e-6);
  return R"({"seconds": [)" + v + "]}";
}

TEST(GridLimits, AGridOfTooManyJobsIsRefusedBeforeExpanding) {
  // 100,000 points (the point limit) x 1000 repeats: 10^8 jobs.
  const std::string huge =
      R"({"name": "huge", "axes": )" + seconds_axis(100000) + R"(, "measure": ["sleep"], "repeats": 1000})";
  const auto t0 = std::chrono::steady_clock::now();
  Result<Grid> g = parse_grid_text(huge, "huge.json");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.message().find("huge.json: $.axes: the grid would expand to 100000 points x 1000 jobs each"),
            std::string::npos)
      << g.message();
  EXPECT_NE(g.message().find("more than 200000 jobs"), std::string::npos) << g.message();
  EXPECT_LT(s, 5.0) << "refused only after expanding";

  // 201 points x 1000 repeats: one point past the limit; 200 x 1000 sleeps and a
  // theory-only kind (not repeated) on 2 points pass the bound.
  Result<Grid> over = parse_grid_text(
      R"({"name": "over", "axes": )" + seconds_axis(201) + R"(, "measure": ["sleep"], "repeats": 1000})", "o.json");
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.message().find("201 points x 1000 jobs each"), std::string::npos) << over.message();
  Result<Grid> small = parse_grid_text(
      R"({"name": "small", "axes": )" + seconds_axis(2) + R"(, "measure": ["sleep"], "repeats": 1000})", "s.json");
  ASSERT_TRUE(small.ok()) << small.message();
  EXPECT_EQ(small->jobs.size(), 2000u);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(GridLimits, AGridOfTooManyParameterBytesIsRefusedBeforeExpanding) {
  // 100,000 points (5 axes of 10 values) x 1 job, each with a fixed tensor name of
  // 6,000 characters: ~600 MB of parameters (grid_fuzz's input had 7,000 on the same
  // axes and took the fuzzer past 2 GiB).
  std::string axes;
  for (const char* name : {"batch_size", "prompt_tokens", "gen_tokens", "seed", "warmup_steps"}) {
    std::string vals;
    for (int i = 1; i <= 10; ++i) vals += (i > 1 ? "," : "") + std::to_string(i);
    axes += std::string(axes.empty() ? "" : ", ") + "\"" + name + "\": [" + vals + "]";
  }
  const std::string text = R"({"name": "wide", "axes": {)" + axes + R"(}, "fixed": {"tensor": ")" +
                           std::string(6000, 'x') + R"("}, "measure": ["sleep"]})";
  const auto t0 = std::chrono::steady_clock::now();
  Result<Grid> g = parse_grid_text(text, "wide.json");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.message().find("wide.json: $.axes: the grid would expand to 100000 jobs of up to "), std::string::npos)
      << g.message();
  EXPECT_NE(g.message().find("more than 512 MiB; expected fewer points or shorter values"), std::string::npos)
      << g.message();
  EXPECT_LT(seconds_since(t0), 5.0) << "refused only after expanding";

  // Short text, many values: 10,000 zeros on each of 1,000 points is 20 MB of text
  // and ~640 MB of values in memory.
  std::string zeros;
  for (int i = 0; i < 10000; ++i) zeros += i ? ",0" : "0";
  const std::string many = R"({"name": "many", "axes": )" + seconds_axis(1000) + R"(, "fixed": {"tensor": [)" +
                           zeros + R"(]}, "measure": ["sleep"]})";
  Result<Grid> m = parse_grid_text(many, "many.json");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("many.json: $.axes: the grid would expand to 1000 jobs of up to "), std::string::npos)
      << m.message();

  // The same value on 1,000 points passes.
  const std::string fewer = R"({"name": "ok", "axes": )" + seconds_axis(1000) + R"(, "fixed": {"tensor": ")" +
                            std::string(3000, 'x') + R"("}, "measure": ["sleep"]})";
  Result<Grid> ok = parse_grid_text(fewer, "ok.json");
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_EQ(ok->jobs.size(), 1000u);
}

TEST(GridLimits, AYamlAliasBombIsRefusedByItsExpandedSize) {
  // A 4,000-character string aliased 10^8 times (8 levels of 10 aliases): 400 GB
  // of text once expanded, in a 600-byte file.
  std::string y = "name: bomb\nmeasure: [sleep]\nfixed:\n  tensor: &a \"" + std::string(4000, 'y') + "\"\n";
  std::string prev = "a";
  for (int i = 1; i <= 8; ++i) {
    const std::string me = "b" + std::to_string(i);
    y += "x" + me + ": &" + me + " [";
    for (int k = 0; k < 10; ++k) y += (k ? ", *" : "*") + prev;
    y += "]\n";
    prev = me;
  }
  const auto t0 = std::chrono::steady_clock::now();
  Result<nlohmann::ordered_json> doc = yaml_to_json(y, "bomb.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.message().find("bomb.yaml: $.xb"), std::string::npos) << doc.message();
  EXPECT_NE(doc.message().find(": more than 16 MiB of text once aliases are expanded; expected a smaller grid"),
            std::string::npos)
      << doc.message();
  EXPECT_LT(seconds_since(t0), 5.0);
}

TEST(GridLimits, AYamlAliasBombOfSmallValuesIsRefusedByItsValueCount) {
  // grid_fuzz's input: 10 numbers aliased 10^7 times (7 levels of 10 aliases) in 377
  // bytes. It expanded to the old fixed cap of 8,000,000 values: minutes, gigabytes.
  std::string y = "a: &a [1,2,3,4,5,6,7,8,9,10]\n";
  std::string prev = "a";
  for (int i = 1; i <= 7; ++i) {
    const std::string me = "b" + std::to_string(i);
    y += me + ": &" + me + " [";
    for (int k = 0; k < 10; ++k) y += (k ? ",*" : "*") + prev;
    y += "]\n";
    prev = me;
  }
  y += "name: x\n";
  ASSERT_EQ(y.size(), 377u);
  const auto t0 = std::chrono::steady_clock::now();
  Result<nlohmann::ordered_json> doc = yaml_to_json(y, "small.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.message().find(": more than 100188 values once aliases are expanded (its 377 bytes hold at most "
                               "188 + 100000); expected a smaller grid"),
            std::string::npos)
      << doc.message();
  EXPECT_LT(seconds_since(t0), 5.0);
  // Aliases that repeat a list a few times are fine.
  Result<nlohmann::ordered_json> ok = yaml_to_json("f: &f [f16, int8-channel]\ng: *f\nh: *f\n", "ok.yaml");
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_EQ((*ok)["h"], (*ok)["f"]);
}

TEST(GridLimits, AStrayBraceAfterAYamlFlowMappingIsAnErrorNotAnEndlessStream) {
  // grid_fuzz's input (154 bytes): yaml-cpp 0.7's LoadAll handed out one empty
  // document after another at the stray `}` and took 14 GB in 20 s.
  const std::string text =
      "{\n  \"nam7114[88av\": [\"f16jjjjjjjjjjjj\"],\n    \"device\": [\"rtx4090\"]\n  },\n"
      " \"kv_formav\": [\"f16\"],\n    \"device\": [\"rtx4090\"]\n  },\n\"m ae sure\": [\"roofline\"]\n}\n";
  const auto t0 = std::chrono::steady_clock::now();
  Result<Grid> g = parse_grid_text(text, "stray.yaml");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.message().find("stray.yaml: line 4 column 4: expected one YAML document, found more"), std::string::npos)
      << g.message();
  EXPECT_LT(seconds_since(t0), 5.0);
}

TEST(GridLimits, AValueWithANewlineStaysOnItsErrorLine) {
  // grid_fuzz: an unknown weight format holding a newline (and a vertical tab, a
  // NUL) was quoted as it was, and the error's second line did not name the file.
  for (const char* source : {"nl.yaml", "nl.json"}) {
    const std::string text =
        std::string(source) == "nl.yaml"
            ? std::string("name: x\naxes:\n  model: [qwen1.5-7b]\n  weight_format: [\"f16\\nint8\\v\\0x\"]\n"
                          "measure: [roofline]\n")
            : std::string(R"({"name": "x", "axes": {"model": ["qwen1.5-7b"], "weight_format": ["f16\nint8\u000b\u0000x"]},)"
                          R"( "measure": ["roofline"]})");
    Result<Grid> g = parse_grid_text(text, source);
    ASSERT_FALSE(g.ok()) << source;
    std::istringstream lines(g.message());
    for (std::string line; std::getline(lines, line);)
      EXPECT_EQ(line.rfind(std::string(source) + ": ", 0), 0u) << source << ": " << line;
    EXPECT_NE(g.message().find("f16\\nint8\\u000b\\u0000x"), std::string::npos) << g.message();
  }
}

TEST(GridLimits, YamlTextThatIsNotUtf8IsAnErrorNotACrash) {
  // grid_fuzz's crash: a quoted YAML string with byte 0x8A, which the JSON writer
  // then refused by throwing.
  Result<Grid> g = parse_grid_text("{\"name\": \"bad typ\x8a" "es\", \"measure\": [\"roofline\"]}", "u.yaml");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.message(), "u.yaml: $.name: the value is not UTF-8 text (byte 0x8A at offset 7); expected UTF-8 "
                         "(line 1 column 10)");
  Result<nlohmann::ordered_json> key = yaml_to_json("a:\n  \"k\xc3\x28\": 1\n", "k.yaml");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.message(), "k.yaml: $.a: a mapping key is not UTF-8 text (byte 0xC3 at offset 1); expected UTF-8 "
                           "(line 2 column 3)");
  // Well-formed multi-byte text passes (2, 3 and 4 bytes).
  Result<nlohmann::ordered_json> fine = yaml_to_json("a: \"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"\n", "f.yaml");
  ASSERT_TRUE(fine.ok()) << fine.message();
  EXPECT_EQ((*fine)["a"], "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace gb::coord

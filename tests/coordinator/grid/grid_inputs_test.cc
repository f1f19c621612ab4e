// coordinator/grid/grid_inputs.h: a grid's relative paths mean its own folder, and a
// job's hash is the path as written plus a digest of what it reads.
#include "coordinator/grid/grid_inputs.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "coordinator/grid/grid.h"
#include "engine/jobs/job_inputs.h"

namespace gb::coord {
namespace {

namespace fs = std::filesystem;

class GridInputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("gb_grid_inputs_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string write(const std::string& rel, const std::string& text) {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  // A ppl grid reading "text:corpus.txt" (relative) in folder `dir`.
  std::string ppl_grid(const std::string& dir, const std::string& corpus) {
    write(dir + "/corpus.txt", corpus);
    return write(dir + "/g.json", R"({"name": "g", "axes": {"kv_format": ["f32", "f16"]},
      "fixed": {"model": "synthetic:gpt2", "dataset": "text:corpus.txt", "context": 16},
      "measure": ["ppl"], "report": {"kind": "ppl", "rows": ["kv_format"], "columns": [{"metric": "ppl"}],
                                    "filter": {"dataset": "text:corpus.txt"}}})");
  }
  static std::map<std::string, std::string> hashes(const Grid& g) {
    std::map<std::string, std::string> out;
    for (const GridJob& j : g.jobs) out[j.params["kv_format"].get<std::string>()] = j.hash;
    return out;
  }
  fs::path root_;
};

TEST_F(GridInputsTest, RelativePathsResolveAgainstTheGridFolderWhateverTheCurrentDirectory) {
  const std::string path = ppl_grid("a", "some text to score\n");
  const fs::path cwd = fs::current_path();
  fs::current_path(fs::temp_directory_path());
  Result<Grid> g = load_grid(path);
  fs::current_path(cwd);
  ASSERT_TRUE(g.ok()) << g.message();
  ASSERT_EQ(g->jobs.size(), 2u);
  EXPECT_EQ(g->jobs[0].params["dataset"], "text:" + (root_ / "a" / "corpus.txt").string());
  ASSERT_TRUE(g->spec.contains("inputs"));
  EXPECT_EQ(g->spec["inputs"]["text:corpus.txt"]["value"], "text:" + (root_ / "a" / "corpus.txt").string());
  // The report's filter names the value as written and still matches the jobs.
  EXPECT_EQ(g->reports[0].filter["dataset"], g->jobs[0].params["dataset"]);
}

TEST_F(GridInputsTest, MovingACheckoutKeepsHashesAndAChangedFileChangesThem) {
  Result<Grid> a = load_grid(ppl_grid("a", "the same text\n"));
  Result<Grid> moved = load_grid(ppl_grid("elsewhere/b", "the same text\n"));
  Result<Grid> changed = load_grid(ppl_grid("c", "a different text\n"));
  ASSERT_TRUE(a.ok() && moved.ok() && changed.ok());
  EXPECT_EQ(hashes(*a), hashes(*moved));
  EXPECT_NE(hashes(*a)["f32"], hashes(*changed)["f32"]);
  EXPECT_NE(hashes(*a)["f16"], hashes(*changed)["f16"]);
  // The coordinator, given the document with its inputs as text, finds the same hashes.
  Result<Grid> remote = parse_grid_text(a->spec.dump(), "g.json");
  ASSERT_TRUE(remote.ok()) << remote.message();
  EXPECT_EQ(hashes(*remote), hashes(*a));
  EXPECT_EQ(remote->jobs[0].params, a->jobs[0].params);
}

TEST_F(GridInputsTest, MissingFilesAreListedBeforeAnythingRuns) {
  const std::string path = write("g.json", R"({"name": "g",
    "axes": {"dataset": ["text:nope.txt", "jsonl:gone.jsonl:text"], "model": ["hf:no_model", "synthetic:gpt2"]},
    "fixed": {"context": 16, "tokenizer": "missing_tokenizer.json"}, "measure": ["ppl"]})");
  Result<Grid> g = load_grid(path);
  ASSERT_FALSE(g.ok());
  const std::string& m = g.message();
  EXPECT_NE(m.find(path + ": $.axes.dataset[0]: text:nope.txt: " + (root_ / "nope.txt").string()), std::string::npos)
      << m;
  EXPECT_NE(m.find(path + ": $.axes.dataset[1]: jsonl:gone.jsonl:text: "), std::string::npos) << m;
  EXPECT_NE(m.find(path + ": $.axes.model[0]: hf:no_model: " + (root_ / "no_model").string() + ": no such directory"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(path + ": $.fixed.tokenizer: missing_tokenizer.json: "), std::string::npos) << m;
  EXPECT_NE(m.find("relative paths in a grid mean its own folder"), std::string::npos) << m;
}

// The dataset layouts of the accuracy kinds: a missing directory, a malformed CSV row
// and a layout the kind does not read are errors at load time, before any job.
TEST_F(GridInputsTest, DatasetDirectoriesAndLayoutsAreCheckedBeforeAnythingRuns) {
  const std::string model = std::string(GB_SOURCE_DIR) + "/tests/data/reference_model";
  write("mmlu/test/s_test.csv", "q,a,b,c,d,A\n\"open,a,b,c,d,B\n");
  std::string path = write("g.json", R"({"name": "g", "axes": {"dataset": ["mmlu:absent", "mmlu:mmlu", "pg19:nobooks"]},
    "fixed": {"model": "hf:)" + model + R"("}, "measure": ["mc_accuracy"]})");
  Result<Grid> g = load_grid(path);
  ASSERT_FALSE(g.ok());
  std::string m = g.message();
  EXPECT_NE(m.find(path + ": $.axes.dataset[0]: mmlu:absent: " + (root_ / "absent").string() + ": no such directory"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(path + ": $.axes.dataset[1]: mmlu:mmlu: " + (root_ / "mmlu/test/s_test.csv").string() +
                   ":2: a quoted field (field 1) is never closed"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(path + ": $.axes.dataset[2]: pg19:nobooks: "), std::string::npos) << m;

  write("mmlu/test/s_test.csv", "q,a,b,c,d,A\n");
  path = write("h.json", R"({"name": "h", "axes": {"dataset": ["mmlu:mmlu"]},
    "fixed": {"model": "hf:)" + model + R"("}, "measure": ["ppl"]})");
  g = load_grid(path);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.message().find("dataset: ppl reads text"), std::string::npos) << g.message();
  path = write("i.json", R"({"name": "i", "axes": {"dataset": ["mmlu:mmlu"]},
    "fixed": {"model": "hf:)" + model + R"(", "shots": 0}, "measure": ["mc_accuracy"]})");
  g = load_grid(path);
  EXPECT_TRUE(g.ok()) << g.message();
}

TEST_F(GridInputsTest, ModelDirectoriesAreDigestedByConfigAndIndex) {
  write("m/config.json", R"({"model_type": "gpt2"})");
  write("m/model.safetensors", std::string("\x02\0\0\0\0\0\0\0{}", 10));
  Result<std::string> d1 = engine::input_digest("model", "hf:" + (root_ / "m").string());
  ASSERT_TRUE(d1.ok()) << d1.message();
  write("m/config.json", R"({"model_type": "gpt2", "n_layer": 2})");
  Result<std::string> d2 = engine::input_digest("model", "hf:" + (root_ / "m").string());
  ASSERT_TRUE(d2.ok());
  EXPECT_NE(*d1, *d2);
  EXPECT_EQ(d1->size(), 16u);
  fs::remove(root_ / "m" / "model.safetensors");
  EXPECT_NE(engine::input_digest("model", "hf:" + (root_ / "m").string()).message().find("no model.safetensors"),
            std::string::npos);
}

TEST_F(GridInputsTest, VariablesStayLiteralInTheHashAndExpandWhereTheJobRuns) {
  const std::string path = write("g.json", R"({"name": "g", "axes": {"kv_format": ["f32"]},
    "fixed": {"model": "hf:${GB_TEST_MODEL_DIR}", "dataset": "text:${GB_TEST_DATA}/c.txt", "context": 16},
    "measure": ["ppl"]})");
  Result<Grid> g = load_grid(path);
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_FALSE(g->spec.contains("inputs"));
  EXPECT_EQ(g->jobs[0].params["model"], "hf:${GB_TEST_MODEL_DIR}");
  // The hash is the one of the text as written, wherever the variables point.
  Result<Grid> again = parse_grid_text(g->spec.dump(), "g.json");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->jobs[0].hash, g->jobs[0].hash);

  nlohmann::json params = g->jobs[0].params;
  ::unsetenv("GB_TEST_MODEL_DIR");
  ::setenv("GB_TEST_DATA", "/data", 1);
  Status missing = engine::expand_job_vars(params);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(), "$.params.model: ${GB_TEST_MODEL_DIR} is not set in the environment");
  ::setenv("GB_TEST_MODEL_DIR", "/models/pythia", 1);
  ASSERT_TRUE(engine::expand_job_vars(params).ok());
  EXPECT_EQ(params["model"], "hf:/models/pythia");
  EXPECT_EQ(params["dataset"], "text:/data/c.txt");
  EXPECT_EQ(params["kv_format"], "f32");
}

TEST_F(GridInputsTest, FileParts) {
  EXPECT_EQ(engine::file_part("dataset", "jsonl:a:b.jsonl:text"), "a:b.jsonl");
  EXPECT_EQ(engine::with_file_part("dataset", "jsonl:a.jsonl:text", "/x/a.jsonl"), "jsonl:/x/a.jsonl:text");
  EXPECT_EQ(engine::file_part("model", "synthetic:gpt2"), "");
  EXPECT_EQ(engine::file_part("model", "qwen1.5-7b"), "");
  EXPECT_EQ(engine::with_file_part("model", "gguf:m.gguf", "/x/m.gguf"), "gguf:/x/m.gguf");
  EXPECT_EQ(engine::with_file_part("tokenizer", "t.json", "/x/t.json"), "/x/t.json");
  EXPECT_EQ(engine::file_part("dataset", "wikitext"), "");
}

TEST_F(GridInputsTest, MalformedInputsAreRefused) {
  Result<Grid> g = parse_grid_text(R"({"name": "g", "axes": {"seconds": [0]}, "measure": ["sleep"],
    "inputs": {"text:a": {"value": 1, "digest": "x"}, "text:b": {"value": "text:/b", "digest": "XYZ"}}})",
                                   "g.json");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.message().find("g.json: $.inputs[\"text:a\"]: expected"), std::string::npos) << g.message();
  EXPECT_NE(g.message().find("g.json: $.inputs[\"text:b\"].digest: expected 16 lower-case hex digits"),
            std::string::npos)
      << g.message();
}

}  // namespace
}  // namespace gb::coord

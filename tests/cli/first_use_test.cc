// What a new user meets first (issue 15), through the real binaries: reports that
// show failed and timed-out jobs, a run summary that counts jobs, the documented
// exit codes (an unknown grid, an invalid JOB.json, bad daemon flags), messages
// that name the flag, `gridbench results` following GRIDBENCH_COORDINATOR, and
// `gridbench generate` checking vocabularies before it loads anything.
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_helpers.h"

namespace gb {
namespace {

using namespace cli_testing;
using Json = nlohmann::json;

// A timed-out attempt that is retried is a retry line, and the summary counts the
// job once (issue 15: "1 jobs ... 2 run here (... 2 timeout)"); the report shows
// the job as a "timeout" cell and lists it with its error, as the dashboard does.
TEST(FirstUse, RunSummaryCountsJobsAndPrintsEveryRetryWithItsReason) {
  std::string d = temp_dir();
  write_file(d + "/naps.json", R"({"name": "naps", "axes": {"seconds": [1]}, "measure": ["sleep"],
    "report": {"rows": ["seconds"], "columns": ["slept_s"]}})");
  const std::string slow = d + "/slow-job.sh";
  write_file(slow, "#!/bin/sh\nexec sleep 30\n");
  fs::permissions(slow, fs::perms::owner_all);
  const std::string db = d + "/gb.db";
  Output o = gridbench(d, {"run", d + "/naps.json", "--db", db, "--out", d + "/out", "--timeout", "0.3",
                           "--max-attempts", "2"},
                       {"GRIDBENCH_JOB=" + slow});
  EXPECT_EQ(o.code, 1) << o.out << o.err;
  EXPECT_NE(o.out.find("grid naps: 1 jobs, 0 reused, 1 run here (0 succeeded, 0 failed, 0 oom, 0 invalid, 1 timeout), "
                       "1 retry\n"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.err.find("retry sleep "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("timeout on attempt 1 of 2: timed out after 0.3 s"), std::string::npos) << o.err;
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state = 'timeout'"), 2);

  Output r = gridbench(d, {"results", "naps", "--db", db});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| 1       | timeout |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("### Failed jobs (failed, timeout, oom, invalid)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| timeout | 2/2      |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("timed out after 0.3 s"), std::string::npos) << r.out;
  const std::string html = slurp(d + "/out/index.html");
  EXPECT_NE(html.find("timed out after 0.3 s"), std::string::npos);
  EXPECT_EQ(html.find("No results yet."), std::string::npos);
}

// A grid whose every job failed (here invalid: the dataset is missing where the
// jobs run): tables of cells that name the state and each failure with its error,
// in the report files and on the dashboard (issue 15: "No results yet.").
TEST(FirstUse, FailedJobsAreCellsAndListedWithTheirErrors) {
  std::string d = temp_dir();
  const std::string data = kSource + "/tests/data";
  write_file(d + "/broken.json", R"({"name": "broken", "axes": {"kv_format": ["f32", "f16"]},
    "fixed": {"model": "hf:)" + data + R"(/golden/gpt2", "dataset": "text:${GB_FIRST_USE_DIR}/corpus.txt",
              "tokenizer": ")" + data + R"(/ppl/byte_tokenizer.json", "context": 32},
    "measure": ["ppl"], "report": {"title": "ppl", "rows": ["kv_format"], "columns": ["ppl"]}})");
  const std::string db = d + "/gb.db";
  // ${VAR} is expanded where the job runs, so the missing file fails the jobs there.
  Output o = gridbench(d, {"run", d + "/broken.json", "--db", db, "--out", d + "/out", "--max-attempts", "1"},
                       {"GB_FIRST_USE_DIR=/nonexistent"});
  EXPECT_EQ(o.code, 1) << o.out << o.err;
  EXPECT_NE(o.out.find("2 run here (0 succeeded, 0 failed, 0 oom, 2 invalid, 0 timeout)\n"), std::string::npos) << o.out;
  const std::string md = slurp(d + "/out/report.md");
  EXPECT_NE(md.find("| f32       | invalid |"), std::string::npos) << md;
  EXPECT_NE(md.find("| f16       | invalid |"), std::string::npos) << md;
  EXPECT_NE(md.find("/nonexistent/corpus.txt"), std::string::npos) << md;
  Output csv = gridbench(d, {"results", "broken", "--db", db, "--format", "csv"});
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_NE(csv.out.find("# ppl\nkv_format,ppl\nf32,invalid\nf16,invalid\n"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find("# Failed jobs (failed, timeout, oom, invalid)\njob,kind,state,attempts,parameters,error\n"),
            std::string::npos)
      << csv.out;
  Output json = gridbench(d, {"results", "broken", "--db", db, "--format", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  const Json tables = Json::parse(json.out);
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0]["rows"][0][1]["text"], "invalid");
  EXPECT_NE(tables[1]["rows"][0][5]["text"].get<std::string>().find("/nonexistent/corpus.txt"), std::string::npos);
  const std::string html = slurp(d + "/out/index.html");
  EXPECT_EQ(html.find("No results yet."), std::string::npos);
  EXPECT_NE(html.find(">invalid<"), std::string::npos);
  EXPECT_NE(html.find("/nonexistent/corpus.txt"), std::string::npos);
}

// An unknown grid is invalid input: exit 2, as an unknown database is, and the
// message lists the grids there are (issue 15: exit 1).
TEST(FirstUse, AnUnknownGridExitsTwo) {
  std::string d = temp_dir();
  write_file(d + "/g.json", R"({"name": "known", "axes": {"seconds": [0]}, "measure": ["sleep"]})");
  const std::string db = d + "/gb.db";
  ASSERT_EQ(gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out"}).code, 0);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"results", "nosuch", "--db", db},
                                               std::vector<std::string>{"dashboard", "nosuch", "--db", db, "--out",
                                                                        d + "/dash"}}) {
    Output o = gridbench(d, args);
    EXPECT_EQ(o.code, 2) << args[0] << ": " << o.err;
    EXPECT_NE(o.err.find(db + ": no grid named 'nosuch' (grids: known)"), std::string::npos) << o.err;
  }
  EXPECT_FALSE(fs::exists(d + "/dash"));
  EXPECT_EQ(gridbench(d, {"results", "known", "--db", d + "/none.db"}).code, 2);  // an unknown database
  EXPECT_EQ(gridbench(d, {"devices", "--format", "xml"}).code, 2);                // an unknown format
}

// `gridbench results GRID` asks the coordinator of GRIDBENCH_COORDINATOR, as its
// help says, unless --db is given (issue 15: it read ./gridbench.db).
TEST(FirstUse, ResultsFollowsGridbenchCoordinator) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"results", "demo"}, {"GRIDBENCH_COORDINATOR=127.0.0.1:1"});
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_NE(o.err.find("cannot reach the coordinator at 127.0.0.1:1"), std::string::npos) << o.err;
  Output local = gridbench(d, {"results", "demo", "--db", d + "/none.db"}, {"GRIDBENCH_COORDINATOR=127.0.0.1:1"});
  EXPECT_EQ(local.code, 2);
  EXPECT_NE(local.err.find("no such database"), std::string::npos) << local.err;
  EXPECT_EQ(gridbench(d, {"results", "demo", "--db", "x.db", "--coordinator", "127.0.0.1:1"}).code, 2);
  // A coordinator address that is not one is a flag error.
  Output bad = gridbench(d, {"status", "--coordinator", "localhost:http"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--coordinator: 'localhost:http': bad port"), std::string::npos) << bad.err;
}

// Roofline flag errors name the flag, not a grid-file path, and say how to give a
// device of one's own (issue 15: "command line: $.axes.device[0]: ...").
TEST(FirstUse, RooflineErrorsNameTheFlag) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"roofline", "--model", "qwen1.5-7b", "--weight-format", "f16", "--device", "mygpu"});
  EXPECT_EQ(o.code, 2);
  EXPECT_EQ(o.err.rfind("gridbench: --device: unknown device 'mygpu'", 0), 0u) << o.err;
  EXPECT_NE(o.err.find("--device-memory-gib, --device-bandwidth-gib-s and --device-tflops"), std::string::npos)
      << o.err;
  EXPECT_EQ(o.err.find("$."), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("command line"), std::string::npos) << o.err;
  Output w = gridbench(d, {"roofline", "--model", "qwen1.5-7b", "--weight-format", "int9"});
  EXPECT_EQ(w.code, 2);
  EXPECT_EQ(w.err.rfind("gridbench: --weight-format: unknown weight format 'int9'", 0), 0u) << w.err;
  Output custom = gridbench(d, {"roofline", "--model", "qwen1.5-7b", "--weight-format", "f16", "--device", "mygpu",
                                "--device-memory-gib", "48", "--device-bandwidth-gib-s", "900", "--device-tflops",
                                "150"});
  EXPECT_EQ(custom.code, 0) << custom.err;
}

// Token ids the model has no embedding for are found before anything is loaded or
// printed (issue 15: the forward pass failed after the prompt was printed), and a
// model without a tokenizer takes its prompt as ids.
TEST(FirstUse, GenerateChecksTheVocabularyAndTakesPromptIds) {
  std::string d = temp_dir();
  const std::string model = "hf:" + kSource + "/tests/data/golden/gpt2";  // vocab_size 256, no tokenizer
  Output big = gridbench(d, {"generate", "--model", model, "--tokenizer",
                             kSource + "/tests/data/tokenizer/tiny_bytelevel.json", "--prompt", "Hello"});
  EXPECT_EQ(big.code, 2);
  EXPECT_EQ(big.out, "");
  EXPECT_NE(big.err.find("its ids go up to 701 but the model's vocabulary has 256 entries"), std::string::npos)
      << big.err;
  // The golden greedy continuation of transformers, from ids.
  const Json golden = Json::parse(slurp(kSource + "/tests/data/golden/gpt2/golden_generate.json"));
  std::string ids;
  for (const auto& id : golden["prompt"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
  Output o = gridbench(d, {"generate", "--model", model, "--prompt-ids", ids, "--max-tokens",
                           std::to_string(golden["generated"].size()), "--no-eos"});
  ASSERT_EQ(o.code, 0) << o.err;
  std::istringstream lines(o.out);
  std::vector<int> got;
  for (int id; lines >> id;) got.push_back(id);
  EXPECT_EQ(Json(got), golden["generated"]) << o.out;
  Output range = gridbench(d, {"generate", "--model", model, "--prompt-ids", "1,256"});
  EXPECT_EQ(range.code, 2);
  EXPECT_NE(range.err.find("--prompt-ids: id 256 is not below the model's vocab_size 256"), std::string::npos)
      << range.err;
  Output both = gridbench(d, {"generate", "--model", model, "--prompt", "x", "--prompt-ids", "1"});
  EXPECT_EQ(both.code, 2);
  EXPECT_NE(both.err.find("exactly one of --prompt and --prompt-ids"), std::string::npos) << both.err;
}

// The daemons' documented exit codes and versions, and gridbench-job's exit 2 for
// an invalid JOB.json with FILE: $.path messages (issue 15: exit 1 everywhere).
TEST(FirstUse, DaemonFlagsAndInvalidJobFilesExitTwo) {
  std::string d = temp_dir();
  Output v = run_program(d, "gridbench-coordinator", {"--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out.rfind("gridbench-coordinator ", 0), 0u) << v.out;
  Output gpu = run_program(d, "gridbench-worker", {"--coordinator", "127.0.0.1:1", "--device", "gpu"});
  EXPECT_EQ(gpu.code, 2);
  EXPECT_NE(gpu.err.find("expected \"cpu\" or \"cuda:N\""), std::string::npos) << gpu.err;
  Output port = run_program(d, "gridbench-worker", {"--coordinator", "host:abc"});
  EXPECT_EQ(port.code, 2);
  EXPECT_NE(port.err.find("'host:abc': bad port"), std::string::npos) << port.err;

  write_file(d + "/job.json", R"({"kind": "roofline", "params": {"model": "qwen1.5-7b", "weight_format": "f16",
    "kv_format": "f16", "device": "rtx4090", "batch_size": "four"}})");
  Output job = run_program(d, "gridbench-job", {"--spec", d + "/job.json", "--out", d + "/result.json"});
  EXPECT_EQ(job.code, 2);
  EXPECT_NE(job.err.find(d + "/job.json: $.params.batch_size: "), std::string::npos) << job.err;
  const Json result = Json::parse(slurp(d + "/result.json"));
  EXPECT_EQ(result["status"], "failed");
  EXPECT_EQ(result["error"].get<std::string>().rfind(d + "/job.json: $.params.batch_size: ", 0), 0u);
}

}  // namespace
}  // namespace gb

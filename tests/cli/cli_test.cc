// Integration tests of the `gridbench` command: the real binaries (gridbench and
// gridbench-job) run as child processes on temporary databases.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "tests/cli/cli_helpers.h"

namespace gb {
namespace {
namespace cli_test {
using namespace cli_testing;
using Json = nlohmann::json;

const std::string kGridbench = std::string(GB_BINARY_DIR) + "/bin/gridbench";
const std::string kJob = std::string(GB_BINARY_DIR) + "/bin/gridbench-job";

std::string small_grid(const std::string& models) {
  return R"({"name": "small", "axes": {"model": [)" + models +
         R"(], "weight_format": ["f16", "int8-channel"], "kv_format": ["f16"], "device": ["rtx4090"]},
  "measure": ["roofline"],
  "report": {"title": "decode", "rows": ["model"], "pivot": "weight_format",
             "columns": [{"metric": "decode_B_ms", "label": "B", "digits": 2}],
             "baseline": {"weight_format": "f16"}}})";
}

TEST(Cli, FormatsPrintsTheWeightFormatTable) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"formats"});
  EXPECT_EQ(o.code, 0) << o.err;
  // One row per format: name, nominal and effective bits, block, scales, symmetry, codec.
  EXPECT_NE(o.out.find("weight format"), std::string::npos) << o.out;
  for (const char* row : {"q4_k                     4       4.5    256 superblock no   q4_k",
                          "nf4-b64-dq               4     4.127     64 block      yes  nf4",
                          "int8-g128                8     8.125    128 group      yes  int8"})
    EXPECT_NE(o.out.find(row), std::string::npos) << row << "\n" << o.out;
}

TEST(Cli, HelpAndVersion) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"--help"});
  EXPECT_EQ(o.code, 0);
  for (const char* cmd : {"expand", "run", "results", "grids", "roofline", "dashboard", "devices", "formats"})
    EXPECT_NE(o.out.find(cmd), std::string::npos) << cmd;
  o = gridbench(d, {"--version"});
  EXPECT_EQ(o.code, 0);
  EXPECT_NE(o.out.find("gridbench "), std::string::npos);
  o = gridbench(d, {"no-such-command"});
  EXPECT_EQ(o.code, 2);
}

TEST(Cli, ExpandListsJobsWithHashes) {
  std::string d = temp_dir();
  write_file(d + "/g.json", small_grid(R"("qwen1.5-0.5b", "qwen1.5-7b")"));
  Output o = gridbench(d, {"expand", d + "/g.json", "--format", "json"});
  ASSERT_EQ(o.code, 0) << o.err;
  Json j = Json::parse(o.out);
  EXPECT_EQ(j["name"], "small");
  ASSERT_EQ(j["jobs"].size(), 4u);
  EXPECT_EQ(j["jobs"][0]["kind"], "roofline");
  EXPECT_EQ(j["jobs"][0]["hash"].get<std::string>().size(), 16u);
  Output t = gridbench(d, {"expand", d + "/g.json"});
  EXPECT_EQ(t.code, 0);
  EXPECT_NE(t.out.find(j["jobs"][3]["hash"].get<std::string>()), std::string::npos);
}

TEST(Cli, InvalidGridExitsTwoAndWritesNothing) {
  std::string d = temp_dir();
  write_file(d + "/bad.json", R"({"name": "bad", "axes": {"model": ["qwen1.5-7b"], "weight_format": ["int9"],
    "kv_format": ["f16"], "device": ["rtx4090"]}, "measure": ["roofline"], "colour": 1})");
  Output o = gridbench(d, {"run", d + "/bad.json", "--db", d + "/x.db", "--out", d + "/out"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find(d + "/bad.json: $.axes.weight_format[0]: "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(d + "/bad.json: $.colour: "), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(d + "/x.db"));
  EXPECT_FALSE(fs::exists(d + "/out"));
}

TEST(Cli, RunWritesReportsAndReusesFinishedJobs) {
  std::string d = temp_dir();
  write_file(d + "/g.json", small_grid(R"("qwen1.5-0.5b", "qwen1.5-7b")"));
  std::string db = d + "/gb.db";
  Output o = gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out", "-j", "2"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("4 jobs, 0 reused"), std::string::npos) << o.out;
  for (const char* f : {"report.md", "report.csv", "report.json", "index.html"})
    EXPECT_TRUE(fs::exists(d + "/out/" + f)) << f;
  // 003 table 4.4/5.1: 7B w16 B = 13.12 ms, w8 B = 6.56 ms (-50%).
  std::string md = slurp(d + "/out/report.md");
  EXPECT_NE(md.find("13.12"), std::string::npos) << md;
  EXPECT_NE(md.find("6.56"), std::string::npos) << md;

  Output again = gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("4 jobs, 4 reused, 0 run here"), std::string::npos) << again.out;

  // One more axis value: only the two new points run.
  write_file(d + "/g.json", small_grid(R"("qwen1.5-0.5b", "qwen1.5-7b", "qwen1.5-14b")"));
  Output ext = gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out"});
  ASSERT_EQ(ext.code, 0) << ext.err;
  EXPECT_NE(ext.out.find("6 jobs, 4 reused, 2 run here"), std::string::npos) << ext.out;

  Output rerun = gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out", "--rerun"});
  ASSERT_EQ(rerun.code, 0) << rerun.err;
  EXPECT_NE(rerun.out.find("6 jobs, 0 reused, 6 run here"), std::string::npos) << rerun.out;
  // The older results are kept: 4 + 2 + 6 succeeded runs.
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'"), 12);

  Output csv = gridbench(d, {"results", "small", "--db", db, "--format", "csv"});
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_NE(csv.out.find("qwen1.5-14b"), std::string::npos) << csv.out;
  Output js = gridbench(d, {"results", "small", "--db", db, "--format", "json"});
  ASSERT_EQ(js.code, 0) << js.err;
  EXPECT_TRUE(Json::accept(js.out)) << js.out;

  Output grids = gridbench(d, {"grids", "--db", db, "--format", "json"});
  ASSERT_EQ(grids.code, 0);
  Json g = Json::parse(grids.out);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0]["total"], 6);
  EXPECT_EQ(g[0]["by_state"]["succeeded"], 6);

  Output missing = gridbench(d, {"results", "nope", "--db", db});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("nope"), std::string::npos);
}

// `gridbench dashboard` without a grid: an index of every grid and each grid's
// page beside it; a grid whose stored file no longer reads is listed with why,
// the others still written, and the exit code says so.
TEST(Cli, DashboardIndexOfEveryGrid) {
  std::string d = temp_dir();
  write_file(d + "/g.json", small_grid(R"("qwen1.5-0.5b", "qwen1.5-7b")"));
  std::string other = small_grid(R"("qwen1.5-14b")");
  other.replace(other.find("\"small\""), 7, "\"other\"");
  write_file(d + "/o.json", other);
  std::string db = d + "/gb.db";
  ASSERT_EQ(gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out/small"}).code, 0);
  ASSERT_EQ(gridbench(d, {"run", d + "/o.json", "--db", db, "--out", d + "/out/other"}).code, 0);

  Output o = gridbench(d, {"dashboard", "--db", db, "--out", d + "/site"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("site/index.html (2 grids)"), std::string::npos) << o.out;
  std::string index = slurp(d + "/site/index.html");
  EXPECT_NE(index.find("<a href=\"small/index.html\">small</a>"), std::string::npos);
  EXPECT_NE(index.find("<a href=\"other/index.html\">other</a>"), std::string::npos);
  EXPECT_NE(index.find("<span class=\"state succeeded\">4</span>"), std::string::npos);
  EXPECT_NE(index.find("rtx4090 (theory)"), std::string::npos);  // the device behind the results
  for (const char* g : {"small", "other"}) {
    for (const char* f : {"index.html", "report.md", "report.csv", "report.json"})
      EXPECT_TRUE(fs::exists(d + "/site/" + g + "/" + f)) << g << "/" << f;
  }
  std::string page = slurp(d + "/site/small/index.html");
  EXPECT_NE(page.find("<a href=\"../index.html\">"), std::string::npos);
  EXPECT_NE(page.find("13.12"), std::string::npos);  // 003: 7B f16 B = 13.12 ms
  // One grid's page, as before, links to no index.
  Output one = gridbench(d, {"dashboard", "small", "--db", db, "--out", d + "/one"});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(slurp(d + "/one/index.html").find("../index.html"), std::string::npos);

  // A stored grid file that no longer reads: listed with the reason, exit 1.
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "UPDATE grids SET spec_json = '{\"name\": 3}' WHERE name = 'other'", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(h);
  Output bad = gridbench(d, {"dashboard", "--db", db, "--out", d + "/site"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("grid 'other': "), std::string::npos) << bad.err;
  EXPECT_NE(bad.out.find("(2 grids, 1 without a page)"), std::string::npos) << bad.out;
  index = slurp(d + "/site/index.html");
  EXPECT_NE(index.find("page not written: "), std::string::npos);
  EXPECT_NE(index.find("<a href=\"small/index.html\">small</a>"), std::string::npos);

  Output help = gridbench(d, {"dashboard", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("without GRID, an index of every grid"), std::string::npos) << help.out;
}

// A job binary that takes a while, so that a run can be interrupted mid-grid.
// Polls `sql` (a count) on the database at `db`, every 20 ms, until it is positive or
// `timeout` has passed (the caller's assertions then say what was missing). The file
// may not exist yet while the run starts.
void wait_until_positive(const std::string& db, const std::string& sql, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline && (!fs::exists(db) || query_int(db, sql) <= 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

std::string slow_job_wrapper(const std::string& dir) {
  std::string path = dir + "/slow-job.sh";
  write_file(path, "#!/bin/sh\nsleep 0.4\nexec " + kJob + " \"$@\"\n");
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

// One row per metric is a result; exactly-once means each job's current run has
// one row per metric and no job has two succeeded runs.
void expect_complete_exactly_once(const std::string& db, int jobs) {
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'"), jobs);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'"), jobs);
  EXPECT_EQ(query_int(db, "SELECT COUNT(DISTINCT r.run_id) FROM results r JOIN jobs j ON j.result_run_id = r.run_id"),
            jobs);
}

TEST(Cli, InterruptLeavesConsistentStateAndResumes) {
  std::string d = temp_dir();
  write_file(d + "/g.json", small_grid(R"("qwen1.5-0.5b", "qwen1.5-1.8b", "qwen1.5-4b", "qwen1.5-7b", "qwen1.5-14b")"));
  std::string db = d + "/gb.db";
  Result<pid_t> pid = spawn_process({"/usr/bin/env", "GRIDBENCH_JOB=" + slow_job_wrapper(d), kGridbench, "run",
                                     d + "/g.json", "--db", db, "--out", d + "/out", "-j", "2"},
                                    d + "/run.out", d + "/run.err");
  ASSERT_TRUE(pid.ok());
  // Interrupt it once a job has succeeded (polled: a fixed 1.5 s sleep raced a loaded
  // machine's start-up and then found no job done).
  wait_until_positive(db, "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'", std::chrono::seconds(30));
  kill(*pid, SIGINT);
  ExitInfo e = wait_process(*pid);
  ASSERT_TRUE(e.exited) << e.describe();
  EXPECT_EQ(e.code, 130) << slurp(d + "/run.out") << slurp(d + "/run.err");
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM jobs WHERE state IN ('leased', 'running')"), 0);
  int64_t done = query_int(db, "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'");
  EXPECT_GT(done, 0);
  EXPECT_LT(done, 10);

  Output o = gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("10 jobs, " + std::to_string(done) + " reused"), std::string::npos) << o.out;
  expect_complete_exactly_once(db, 10);
}

TEST(Cli, KilledRunIsReclaimedAtOnce) {
  std::string d = temp_dir();
  write_file(d + "/g.json", small_grid(R"("qwen1.5-0.5b", "qwen1.5-1.8b", "qwen1.5-4b")"));
  std::string db = d + "/gb.db";
  Result<pid_t> pid = spawn_process({"/usr/bin/env", "GRIDBENCH_JOB=" + slow_job_wrapper(d), kGridbench, "run",
                                     d + "/g.json", "--db", db, "--out", d + "/out", "-j", "2"},
                                    d + "/run.out", d + "/run.err");
  ASSERT_TRUE(pid.ok());
  // Kill it once it holds a job (polled: a fixed sleep raced a loaded machine's start-up).
  wait_until_positive(db, "SELECT COUNT(*) FROM jobs WHERE state IN ('leased', 'running')", std::chrono::seconds(20));
  kill(*pid, SIGKILL);
  wait_process(*pid);
  EXPECT_GT(query_int(db, "SELECT COUNT(*) FROM jobs WHERE state IN ('leased', 'running')"), 0);
  // The lease is 60 s; a resume must not wait for it: the dead owner is reclaimed.
  auto t0 = std::chrono::steady_clock::now();
  Output o = gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  ASSERT_EQ(o.code, 0) << o.err;
  expect_complete_exactly_once(db, 6);
}

TEST(Cli, FailingJobIsRecordedWithItsError) {
  std::string d = temp_dir();
  write_file(d + "/g.json", small_grid(R"("qwen1.5-0.5b")"));
  std::string failing = d + "/fail-job.sh";
  write_file(failing, "#!/bin/sh\necho 'simulated crash' >&2\nkill -SEGV $$\n");
  fs::permissions(failing, fs::perms::owner_all);
  std::string db = d + "/gb.db";
  Output o = gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out", "--max-attempts", "2"},
                       {"GRIDBENCH_JOB=" + failing});
  EXPECT_EQ(o.code, 1) << o.out << o.err;
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM jobs WHERE state = 'failed' AND error LIKE '%signal 11%simulated crash%'"),
            2);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs"), 4);  // two attempts each
  // The database still works, and a healthy run finishes the grid.
  Output ok = gridbench(d, {"run", d + "/g.json", "--db", db, "--out", d + "/out"});
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST(Cli, RooflineCommand) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"roofline", "--model", "qwen1.5-7b", "--weight-format", "f16", "--kv-format", "f16",
                           "--device", "rtx4090", "--format", "json"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("decode_B_ms"), std::string::npos);
  Output t = gridbench(d, {"roofline", "--model", "qwen1.5-0.5b,qwen1.5-7b", "--weight-format", "f16,int4-g128",
                           "--device", "rtx4090"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("13.12"), std::string::npos) << t.out;  // 7B w16 B
  EXPECT_NE(t.out.find("3.28"), std::string::npos) << t.out;   // 7B w4 B
  Output bad = gridbench(d, {"roofline", "--model", "nope", "--weight-format", "f16"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("nope"), std::string::npos);
}

// experiments/roofline-qwen15.json through `gridbench run`: the stored report
// reproduces 003's tables 5.2.3 (longest context, w16/w8/w4/w6) and 5.2.5 (decode W
// and B) cell for cell as printed. Every other theory cell is checked at the engine
// level (tests/engine/theory/roofline_tables_test.cc). Errata (formula's value checked):
// 14B w4 B printed 6.19 (formula 6.18); 72B w16 B printed 131.28 (formula 131.27).
TEST(Cli, RooflineQwen15ReproducesReference003) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"run", kSource + "/experiments/roofline-qwen15.json", "--db", d + "/gb.db", "--out",
                           d + "/out", "-j", "2"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  Json tables = Json::parse(slurp(d + "/out/report.json"));
  auto find = [&](const std::string& prefix) -> const Json* {
    for (const auto& t : tables)
      if (t["title"].get<std::string>().rfind(prefix, 0) == 0) return &t;
    return nullptr;
  };
  const std::vector<std::vector<std::string>> context = {
      {"qwen1.5-0.5b", "252705", "257424", "259784", "258604"},
      {"qwen1.5-1.8b", "115553", "123312", "127192", "125252"},
      {"qwen1.5-4b", "45525", "54220", "58567", "56393"},
      {"qwen1.5-7b", "22072", "35612", "42382", "38997"},
      {"qwen1.5-14b", "oom", "15114", "23285", "19199"},
      {"qwen1.5-32b-nogqa", "oom", "oom", "6531", "oom"},
      {"qwen1.5-32b", "oom", "oom", "37778", "7515"},
      {"qwen1.5-72b", "oom", "oom", "oom", "oom"},
      {"qwen1.5-110b-nogqa", "oom", "oom", "oom", "oom"},
      {"qwen1.5-110b", "oom", "oom", "oom", "oom"}};
  const std::vector<std::vector<std::string>> decode = {
      {"qwen1.5-0.5b", "11010", "0.86ms", "11010", "0.43ms", "11010", "0.21ms"},
      {"qwen1.5-1.8b", "5505", "2.82ms", "5505", "1.41ms", "5505", "0.70ms"},
      {"qwen1.5-4b", "2642", "6.58ms", "2642", "3.29ms", "2642", "1.65ms"},
      {"qwen1.5-7b", "2064", "13.12ms", "2064", "6.56ms", "2064", "3.28ms"},
      {"qwen1.5-14b", "1321", "24.74ms", "1321", "12.37ms", "1321", "6.18ms"},
      {"qwen1.5-32b-nogqa", "826", "63.60ms", "826", "31.80ms", "826", "15.90ms"},
      {"qwen1.5-32b", "4129", "58.64ms", "4129", "29.32ms", "4129", "14.66ms"},
      {"qwen1.5-72b", "413", "131.27ms", "413", "65.64ms", "413", "32.82ms"},
      {"qwen1.5-110b-nogqa", "413", "220.56ms", "413", "110.28ms", "413", "55.14ms"},
      {"qwen1.5-110b", "3303", "203.20ms", "3303", "101.60ms", "3303", "50.80ms"}};
  for (const auto& [prefix, expected] : {std::pair{std::string("003 3.3"), context}, std::pair{std::string("003 4.4"), decode}}) {
    const Json* t = find(prefix);
    ASSERT_NE(t, nullptr) << prefix;
    ASSERT_EQ((*t)["rows"].size(), expected.size()) << prefix;
    for (size_t r = 0; r < expected.size(); ++r)
      for (size_t c = 0; c < expected[r].size(); ++c)
        EXPECT_EQ((*t)["rows"][r][c]["text"], expected[r][c]) << prefix << " row " << r << " column " << c;
  }
}

TEST(Cli, TokenizeCommand) {
  std::string d = temp_dir();
  const std::string tok = kSource + "/tests/data/tokenizer/tiny_bytelevel.json";
  Json expected = Json::parse(slurp(kSource + "/tests/data/tokenizer/expected_ids.json"));
  // The reference ids (Hugging Face tokenizers) of the first test text.
  const std::string text = expected["texts"][0];
  Output o = gridbench(d, {"tokenize", "--tokenizer", tok, "--text", text});
  ASSERT_EQ(o.code, 0) << o.err;
  Json ids = Json::parse(o.out);
  EXPECT_EQ(ids, expected["tokenizers"]["tiny_bytelevel"]["ids"][0]);
  Output t = gridbench(d, {"tokenize", "--tokenizer", tok, "--text", text, "--format", "text"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find(std::to_string(ids.size()) + " tokens"), std::string::npos) << t.out;
  EXPECT_EQ(gridbench(d, {"tokenize", "--tokenizer", d + "/missing.json", "--text", "x"}).code, 2);
  EXPECT_EQ(gridbench(d, {"tokenize", "--tokenizer", tok}).code, 2);
}

TEST(Cli, DemoGridRuns) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"run", kSource + "/experiments/demo.json", "--db", d + "/gb.db", "--out", d + "/out"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_TRUE(fs::exists(d + "/out/report.md"));
}

TEST(Cli, GenerateCommand) {
  std::string d = temp_dir();
  const std::string model = "hf:" + kSource + "/tests/data/golden/gpt2";
  const std::string tok = kSource + "/tests/data/ppl/byte_tokenizer.json";
  const std::vector<std::string> base = {"generate", "--model", model, "--tokenizer", tok, "--prompt", "Light",
                                         "--max-tokens", "8", "--no-eos", "--ids"};
  Output o = gridbench(d, base);
  ASSERT_EQ(o.code, 0) << o.err;
  std::istringstream lines(o.out);
  std::vector<int> ids;
  for (int id; lines >> id;) ids.push_back(id);
  EXPECT_EQ(ids.size(), 8u) << o.out;
  for (int id : ids) EXPECT_TRUE(id >= 0 && id < 256) << id;
  EXPECT_NE(o.err.find("8 new tokens (length)"), std::string::npos) << o.err;
  // Greedy is deterministic, and so is sampling with a seed; the KV format is honoured.
  EXPECT_EQ(gridbench(d, base).out, o.out);
  auto sampled = base;
  sampled.insert(sampled.end(), {"--temperature", "1.5", "--seed", "7"});
  const Output s1 = gridbench(d, sampled), s2 = gridbench(d, sampled);
  ASSERT_EQ(s1.code, 0) << s1.err;
  EXPECT_EQ(s1.out, s2.out);
  auto streaming = base;
  streaming.insert(streaming.end(), {"--kv-format", "bf16+sink2+win8"});
  EXPECT_EQ(gridbench(d, streaming).code, 0);
  // Text output starts with the prompt.
  Output text = gridbench(d, {"generate", "--model", model, "--tokenizer", tok, "--prompt", "Light", "--max-tokens", "4"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(text.out.rfind("Light", 0), 0u) << text.out;
  // Errors: a preset has no weights, an unknown KV format or one without its calibration, no tokenizer.
  Output preset = gridbench(d, {"generate", "--model", "gpt2", "--prompt", "x"});
  EXPECT_EQ(preset.code, 2);
  EXPECT_NE(preset.err.find("preset without weights"), std::string::npos) << preset.err;
  EXPECT_EQ(gridbench(d, {"generate", "--model", model, "--tokenizer", tok, "--prompt", "x", "--kv-format", "int2"}).code, 2);
  Output calib = gridbench(d, {"generate", "--model", model, "--tokenizer", tok, "--prompt", "x", "--kv-format", "int8-calib"});
  EXPECT_EQ(calib.code, 2);
  EXPECT_NE(calib.err.find("needs a calibration"), std::string::npos) << calib.err;
  // A quantized cache runs.
  EXPECT_EQ(gridbench(d, {"generate", "--model", model, "--tokenizer", tok, "--prompt", "x", "--kv-format", "int4"}).code, 0);
  Output notok = gridbench(d, {"generate", "--model", model, "--prompt", "x"});
  EXPECT_EQ(notok.code, 2);
  EXPECT_NE(notok.err.find("--tokenizer"), std::string::npos) << notok.err;
  // --backend: cpu is the default (the same tokens); an unknown one is refused; cuda
  // where this process has no CUDA device (or no CUDA build) says so, before loading.
  auto on_cpu = base;
  on_cpu.insert(on_cpu.end(), {"--backend", "cpu"});
  EXPECT_EQ(gridbench(d, on_cpu).out, o.out);
  auto on_tpu = base;
  on_tpu.insert(on_tpu.end(), {"--backend", "tpu"});
  Output tpu = gridbench(d, on_tpu);
  EXPECT_EQ(tpu.code, 2);
  EXPECT_NE(tpu.err.find("expected cpu or cuda"), std::string::npos) << tpu.err;
  auto on_cuda = base;
  on_cuda.insert(on_cuda.end(), {"--backend", "cuda"});
  Output cuda = gridbench(d, on_cuda);
  if (cuda.code != 0) {  // 0 on a machine with a GPU
    EXPECT_EQ(cuda.code, 2) << cuda.err;
    EXPECT_NE(cuda.err.find("--backend cuda: "), std::string::npos) << cuda.err;
    EXPECT_TRUE(cuda.out.empty()) << cuda.out;
  }
}

TEST(Cli, EngineGridRunsEmbedded) {
  std::string d = temp_dir();
  const std::string data = kSource + "/tests/data";
  write_file(d + "/engine.json", R"({"name": "tiny-engine", "axes": {"kv_format": ["f32", "f16"]},
    "fixed": {"model": "hf:)" + data + R"(/golden/gpt2", "context": 32, "chunks": 2, "prompt_tokens": 8,
              "gen_tokens": 4, "dataset": "text:)" + data + R"(/corpus/opticks-book1-part1.txt",
              "tokenizer": ")" + data + R"(/ppl/byte_tokenizer.json"},
    "measure": ["ppl", "speed"],
    "report": {"kind": "ppl", "rows": ["kv_format"], "columns": [{"metric": "ppl", "digits": 1}],
               "baseline": {"kv_format": "f32"}}})");
  Output o = gridbench(d, {"run", d + "/engine.json", "--db", d + "/gb.db", "--out", d + "/out"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'"), 4);
  Output r = gridbench(d, {"results", "tiny-engine", "--db", d + "/gb.db"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| f16"), std::string::npos) << r.out;
}

}  // namespace cli_test
}  // namespace
}  // namespace gb

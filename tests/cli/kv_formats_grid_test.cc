// The KV-cache formats through a grid as a user runs it: a kv_format axis of
// quantized formats (one streaming) and an int8-calib point with its calibration
// file, each job run by gridbench-job, their memory reports counting the scales.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_helpers.h"

namespace gb {
namespace {

using namespace cli_testing;
using Json = nlohmann::json;

TEST(KvFormatsGrid, QuantizedCachesRunThroughGridbenchJob) {
  std::string d = temp_dir();
  // tests/data/golden/qwen3: 2 layers, 2 KV heads of 32.
  write_file(d + "/calib.json", R"({"format": "gridbench-kv-calibration", "version": 1, "keys": "rotated",
    "num_layers": 2, "num_kv_heads": 2,
    "layers": [{"k_min": [-6, -6], "k_max": [6, 6], "v_min": [-2, -2], "v_max": [2, 2]},
               {"k_min": [-6, -6], "k_max": [6, 6], "v_min": [-2, -2], "v_max": [2, 2]}]})");
  write_file(d + "/kv.json", R"({"name": "kv", "axes": {"kv_format": ["f16", "int8", "fp8", "int4-g32+sink4+win28"]},
    "include": [{"kv_format": "int8-calib", "kv_calibration": ")" + d + R"(/calib.json"}],
    "fixed": {"model": "hf:)" + kSource + R"(/tests/data/golden/qwen3", "context": 48},
    "measure": ["memory"],
    "report": {"title": "KV", "kind": "memory", "rows": ["kv_format", "kv_calibration"],
               "columns": [{"metric": "kv_bytes_per_token", "digits": 0}, {"metric": "kv_allocated_bytes", "digits": 0}]}})");
  Output o = run_program(d, "gridbench", {"run", d + "/kv.json", "--db", d + "/gb.db", "--out", d + "/out", "-j", "2"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  // The Markdown table with its padding collapsed to single spaces.
  std::string md;
  for (char c : slurp(d + "/out/report.md"))
    if (c != ' ' || md.empty() || md.back() != ' ') md += c;
  // Per token: 2 layers x K and V x 2 heads x (codes + f16 scale and zero point per group).
  for (const char* row : {"| f16 | - | 512 | 24576 |", "| int8 | - | 288 | 13824 |", "| fp8 | - | 272 | 13056 |",
                          "| int4-g32+sink4+win28 | - | 160 | 5120 |"})
    EXPECT_NE(md.find(row), std::string::npos) << row << "\n" << md;
  // int8-calib: codes only per token; its scale tables (2 x 2 x 2 x 2 floats) in the allocation.
  EXPECT_NE(md.find("| int8-calib | " + d + "/calib.json | 256 | " + std::to_string(48 * 256 + 64) + " |"),
            std::string::npos)
      << md;
}

// int8-calib on a grid's own kv_calibrate job (kv_calibration "job:kv_calibrate"),
// embedded with two slots: the dependent is leased only once the calibration has
// succeeded, runs on the calibration the kv_calibrate job wrote (handed over in its
// JOB.json, rebuilt from the stored ranges); a calibration that fails makes its
// dependents invalid, naming it, while the others run.
TEST(KvFormatsGrid, AGridsCalibrationJobRunsFirstAndItsFailureEndsItsDependents) {
  const std::string d = temp_dir(), ref = kSource + "/tests/data/reference_model";
  auto grid = [&](const std::string& name, const std::string& calib_dataset) {
    return R"({"name": ")" + name + R"(", "axes": {"kv_format": ["int8", "int8-calib"]},
      "fixed": {"model": "hf:)" + ref + R"(", "dataset": "text:)" + ref + R"(/heldout.txt", "context": 16,
                "chunks": 1, "threads": 1, "kv_calibration": "job:kv_calibrate"},
      "measure": ["ppl", {"kind": "kv_calibrate", "calib_samples": 2, "dataset": ")" + calib_dataset + R"("}]})";
  };
  write_file(d + "/ok.json", grid("ok", "text:" + ref + "/heldout.txt"));
  const std::string db = d + "/gb.db";
  Output o = run_program(d, "gridbench", {"run", d + "/ok.json", "--db", db, "--out", d + "/out", "-j", "2"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = 'ok' AND state = 'succeeded'"), 3);
  const std::string calib_run = "(SELECT result_run_id FROM v_jobs WHERE grid = 'ok' AND kind = 'kv_calibrate')";
  const std::string dep = "(SELECT job_id FROM v_jobs WHERE grid = 'ok' AND kind = 'ppl' AND "
                          "json_extract(params_json, '$.kv_format') = 'int8-calib')";
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE job_id = " + dep + " AND started_ms >= (SELECT finished_ms "
                          "FROM runs WHERE id = " + calib_run + ")"),
            1);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM jobs WHERE id = " + dep + " AND json_extract(params_json, "
                          "'$.kv_calibration') = 'job:' || (SELECT job_hash FROM v_jobs WHERE grid = 'ok' AND kind = "
                          "'kv_calibrate')"),
            1);
  // The file the kv_calibrate job wrote, and the calibration the dependent ran on.
  const int64_t calib_run_id = query_int(db, "SELECT " + calib_run);
  const int64_t dep_run_id = query_int(db, "SELECT result_run_id FROM jobs WHERE id = " + dep);
  std::string calib_hash, dep_hash;
  for (const auto& e : fs::directory_iterator(d + "/out/jobs")) {
    const std::string n = e.path().filename().string();
    if (n.ends_with("-run" + std::to_string(calib_run_id))) calib_hash = n;
    if (n.ends_with("-run" + std::to_string(dep_run_id))) dep_hash = n;
  }
  ASSERT_FALSE(calib_hash.empty());
  ASSERT_FALSE(dep_hash.empty());
  const Json file = Json::parse(slurp(d + "/out/jobs/" + calib_hash + "/kv_calibration.json"));
  const Json spec = Json::parse(slurp(d + "/out/jobs/" + dep_hash + "/job.json"));
  const Json handed = Json::parse(spec["params"]["kv_calibration"].get<std::string>());
  EXPECT_EQ(handed["layers"], file["layers"]);
  EXPECT_EQ(handed["num_layers"], file["num_layers"]);
  EXPECT_EQ(handed["keys"], file["keys"]);

  write_file(d + "/short.txt", "x");  // one token: no sample of two
  write_file(d + "/bad.json", grid("bad", "text:" + d + "/short.txt"));
  o = run_program(d, "gridbench", {"run", d + "/bad.json", "--db", db, "--out", d + "/out2", "--max-attempts", "1"});
  EXPECT_NE(o.code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("1 jobs ended invalid without running: the job whose output they run on did not succeed"),
            std::string::npos)
      << o.out;
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = 'bad' AND kind = 'kv_calibrate' AND state = "
                          "'failed'"),
            1);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = 'bad' AND kind = 'ppl' AND state = 'succeeded' "
                          "AND json_extract(params_json, '$.kv_format') = 'int8'"),
            1);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = 'bad' AND kind = 'ppl' AND state = 'invalid' AND "
                          "error LIKE 'its dependency kv_calibrate job % ended failed: %' AND "
                          "NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = v_jobs.job_id)"),
            1);
}

// A calibration this process does not run (a cuda job under `gridbench run
// --backend cpu`): the run does not wait for it, nor for its dependents; it ends and
// says what each waits for. Bounded by timeout(1): before, it waited forever.
TEST(KvFormatsGrid, ARunEndsAndSaysWhatItsJobsWaitForWhenTheirDependencyIsNotItsOwn) {
  const std::string d = temp_dir(), ref = kSource + "/tests/data/reference_model";
  write_file(d + "/g.json", R"({"name": "g", "axes": {"kv_format": ["int8", "int8-calib"]},
      "fixed": {"model": "hf:)" + ref + R"(", "dataset": "text:)" + ref + R"(/heldout.txt", "context": 16,
                "chunks": 1, "threads": 1, "kv_calibration": "job:kv_calibrate"},
      "measure": ["ppl", {"kind": "kv_calibrate", "calib_samples": 2, "backend": "cuda"}]})");
  Result<pid_t> pid = spawn_process({"/usr/bin/timeout", "120", kBin + "gridbench", "run", d + "/g.json", "--db",
                                     d + "/gb.db", "--out", d + "/out", "--backend", "cpu"},
                                    d + "/stdout", d + "/stderr");
  ASSERT_TRUE(pid.ok()) << pid.message();
  const ExitInfo e = wait_process(*pid);
  const std::string out = slurp(d + "/stdout");
  ASSERT_TRUE(e.exited && e.code == 0) << e.describe() << "\n" << out << slurp(d + "/stderr");
  const std::string calib = "(SELECT job_hash FROM v_jobs WHERE grid = 'g' AND kind = 'kv_calibrate')";
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM v_jobs WHERE grid = 'g' AND state = 'succeeded'"), 1);
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM v_jobs WHERE grid = 'g' AND state = 'pending'"), 2);
  EXPECT_NE(out.find("1 jobs need the cuda backend and stay pending"), std::string::npos) << out;
  EXPECT_NE(out.find("1 jobs wait for a job of another backend and stay pending:\n  ppl "), std::string::npos) << out;
  EXPECT_NE(out.find(" waits for kv_calibrate "), std::string::npos) << out;
  EXPECT_NE(out.find("(pending: it needs the cuda backend; run it with --backend cuda or on a worker)"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace gb

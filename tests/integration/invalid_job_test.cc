// The invalid outcome through the daemons: a job that cannot run where the worker
// runs it (its dataset names a ${VAR} unset on the worker; the coordinator cannot
// see the worker's environment, so it accepts the grid) makes gridbench-job exit
// 5, the worker reports FailJob outcome "invalid", and the coordinator stores the
// job invalid on its first attempt, without retrying it, while the grid's other
// job succeeds.
#include <fstream>

#include "tests/integration/cluster.h"

namespace gb {
namespace {

using namespace gb::integration;

TEST(Distributed, AnInvalidJobEndsInvalidWithoutRetries) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  std::string addr = c.start_coordinator("coordinator", db, 0, 5000);
  ASSERT_FALSE(addr.empty());
  ::unsetenv("GB_INVALID_TEST_UNSET");  // the worker inherits this environment
  c.start_worker("w1", addr, 1);
  Client client(addr);
  ASSERT_TRUE(wait_until(15000, [&] { return client.active_workers() == 1; })) << "worker did not register";
  pb::SubmitGridRequest req;
  req.set_grid_text(R"({"name": "inv", "axes": {"dataset": ["text:${GB_INVALID_TEST_UNSET}/a.txt"]},
    "fixed": {"model": "synthetic:gpt2", "context": 16, "chunks": 1, "seconds": 0}, "measure": ["ppl", "sleep"]})");
  req.set_source("inv.json");
  req.set_max_attempts(3);
  pb::SubmitGridReply sub;
  grpc::Status s = client.stub().SubmitGrid(client.ctx().get(), req, &sub);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(sub.jobs(), 2);
  ASSERT_TRUE(wait_until(60000, [&] { return unfinished(db, "inv") == 0; })) << unfinished(db, "inv") << " left";
  EXPECT_EQ(query_strings(db, "SELECT kind || ' ' || state || ' ' || attempts FROM v_jobs WHERE grid = 'inv' "
                              "ORDER BY kind"),
            (std::vector<std::string>{"ppl invalid 1", "sleep succeeded 1"}));
  EXPECT_EQ(query_strings(db, "SELECT state FROM runs WHERE job_id = (SELECT job_id FROM v_jobs WHERE kind = 'ppl')"),
            std::vector<std::string>{"invalid"});
  const std::vector<std::string> error = query_strings(db, "SELECT error FROM v_jobs WHERE kind = 'ppl'");
  ASSERT_EQ(error.size(), 1u);
  EXPECT_NE(error[0].find("${GB_INVALID_TEST_UNSET} is not set"), std::string::npos) << error[0];
  // The grid's status counts it under its own state.
  pb::ListGridsReply grids;
  s = client.stub().ListGrids(client.ctx().get(), pb::ListGridsRequest(), &grids);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(grids.grids_size(), 1);
  EXPECT_EQ(grids.grids(0).by_state().at("invalid"), 1);
  EXPECT_EQ(grids.grids(0).by_state().at("failed"), 0);
  // Nothing is leased again: the worker keeps polling, and the job keeps its one run.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs"), 2);
  c.signal("w1", SIGTERM);
  EXPECT_EQ(c.wait_exit("w1", 10000), 0);
}

// A grid's int8-calib jobs on its own kv_calibrate job through the daemons: the
// dependent is not leased before the calibration succeeded (two slots, so it could
// be), gets the calibration in its lease and runs on it; a calibration that fails
// ends its dependents invalid without a run.
TEST(Distributed, AJobIsLeasedAfterItsDependencyAndEndsWithItsFailure) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  std::string addr = c.start_coordinator("coordinator", db, 0, 5000);
  ASSERT_FALSE(addr.empty());
  c.start_worker("w1", addr, 2);
  Client client(addr);
  ASSERT_TRUE(wait_until(15000, [&] { return client.active_workers() == 1; })) << "worker did not register";
  const std::string ref = std::string(GB_SOURCE_DIR) + "/tests/data/reference_model";
  std::ofstream(c.dir() + "/short.txt") << "x";  // one token: no sample of two
  auto submit = [&](const std::string& name, const std::string& calib_dataset) {
    pb::SubmitGridRequest req;
    req.set_grid_text(R"({"name": ")" + name + R"(", "axes": {"kv_format": ["int8", "int8-calib"]},
      "fixed": {"model": "hf:)" + ref + R"(", "dataset": "text:)" + ref + R"(/heldout.txt", "context": 16,
                "chunks": 1, "threads": 1, "kv_calibration": "job:kv_calibrate"},
      "measure": ["ppl", {"kind": "kv_calibrate", "calib_samples": 2, "dataset": ")" + calib_dataset + R"("}]})");
    req.set_source(name + ".json");
    req.set_max_attempts(1);
    pb::SubmitGridReply sub;
    grpc::Status s = client.stub().SubmitGrid(client.ctx().get(), req, &sub);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(sub.jobs(), 3);
  };
  submit("ok", "text:" + ref + "/heldout.txt");
  ASSERT_TRUE(wait_until(60000, [&] { return unfinished(db, "ok") == 0; })) << unfinished(db, "ok") << " left";
  EXPECT_EQ(query_strings(db, "SELECT kind || ' ' || state FROM v_jobs WHERE grid = 'ok' ORDER BY kind"),
            (std::vector<std::string>{"kv_calibrate succeeded", "ppl succeeded", "ppl succeeded"}));
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs r JOIN v_jobs j ON j.job_id = r.job_id WHERE j.grid = 'ok' AND "
                          "json_extract(j.params_json, '$.kv_format') = 'int8-calib' AND r.started_ms >= (SELECT "
                          "finished_ms FROM runs WHERE id = (SELECT result_run_id FROM v_jobs WHERE grid = 'ok' AND "
                          "kind = 'kv_calibrate'))"),
            1);

  submit("bad", "text:" + c.dir() + "/short.txt");
  ASSERT_TRUE(wait_until(60000, [&] { return unfinished(db, "bad") == 0; })) << unfinished(db, "bad") << " left";
  const std::vector<std::string> ends =
      query_strings(db, "SELECT kind || ' ' || state || ' ' || (SELECT COUNT(*) FROM runs r WHERE r.job_id = "
                        "v_jobs.job_id) || ' ' || error FROM v_jobs WHERE grid = 'bad' AND (kind = 'kv_calibrate' OR "
                        "json_extract(params_json, '$.kv_format') = 'int8-calib') ORDER BY kind");
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0].rfind("kv_calibrate failed 1 ", 0), 0u) << ends[0];
  EXPECT_EQ(ends[1].rfind("ppl invalid 0 its dependency kv_calibrate job ", 0), 0u) << ends[1];
  EXPECT_NE(ends[1].find("no sample of two tokens"), std::string::npos) << ends[1];
  c.signal("w1", SIGTERM);
  EXPECT_EQ(c.wait_exit("w1", 10000), 0);
}

}  // namespace
}  // namespace gb

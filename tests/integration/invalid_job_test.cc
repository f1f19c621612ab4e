// The invalid outcome through the daemons: a job that cannot run where the worker
// runs it (its dataset names a ${VAR} unset on the worker; the coordinator cannot
// see the worker's environment, so it accepts the grid) makes gridbench-job exit
// 5, the worker reports FailJob outcome "invalid", and the coordinator stores the
// job invalid on its first attempt, without retrying it, while the grid's other
// job succeeds.
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

}  // namespace
}  // namespace gb

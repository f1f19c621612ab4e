// Roofline (theory-only) jobs submitted to a coordinator are computed by the
// coordinator itself, in batches (coordinator/service/theory_thread.h): a
// 20,000-job roofline grid finishes with no worker attached, every run the
// coordinator's, every result stored; a grid's other kinds still wait for a worker.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "tests/coordinator/service/service_fixture.h"

namespace gb::coord {
namespace {

using namespace service_testing;

TEST_F(ServiceTest, TheCoordinatorComputesTwentyThousandRooflineJobsWithoutAWorker) {
  start();
  // 5 models x 4 weight formats x 2 KV formats x 2 devices x 250 batch sizes.
  std::string batch;
  for (int b = 1; b <= 250; ++b) batch += (b > 1 ? ", " : "") + std::to_string(b);
  const auto t0 = Clock::now();
  pb::SubmitGridRequest req;
  req.set_grid_text(R"({"name": "theory", "axes": {
    "model": ["gpt2", "pythia-2.8b", "qwen1.5-7b", "qwen1.5-72b", "llama-3-8b"],
    "weight_format": ["f16", "q8_0", "q4_0", "q4_k"], "kv_format": ["f16", "bf16"],
    "device": ["rtx4090", "h100-sxm"], "batch_size": [)" + batch + R"(]},
    "fixed": {"context": 4096, "seconds": 0}, "measure": ["roofline", "sleep"]})");
  req.set_source("theory.json");
  pb::SubmitGridReply reply;
  grpc::Status st = stub_->SubmitGrid(ctx(60000).get(), req, &reply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(reply.jobs(), 20001);
  const int64_t want = 20000;
  auto done = [&] { return query_int(db_, "SELECT COUNT(*) FROM jobs WHERE kind = 'roofline' AND state = 'succeeded'"); };
  while (done() < want && elapsed_ms(t0) < 120000) std::this_thread::sleep_for(milliseconds(100));
  const double s = elapsed_ms(t0) / 1000.0;
  std::printf("20,000 roofline jobs submitted and computed in the coordinator in %.1f s\n", s);
  ASSERT_EQ(done(), want);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM runs r JOIN jobs j ON j.id = r.job_id WHERE j.kind = 'roofline' "
                           "AND r.owner = 'coordinator' AND r.state = 'succeeded' AND r.engine_version != ''"),
            want);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM jobs j JOIN results r ON r.run_id = j.result_run_id "
                           "WHERE j.kind = 'roofline' AND r.metric = 'decode_B_ms' AND r.value > 0"),
            want);
  // The sleep job is not theory-only: it waits for a worker.
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM jobs WHERE kind = 'sleep' AND state = 'pending'"), 1);
  register_worker("w1");
  pb::LeaseJobReply l = lease("w1");
  ASSERT_TRUE(l.has_job());
  EXPECT_EQ(l.job().kind(), "sleep");
  // 33-55 s measured on a 2-core machine shared with five builds (load 11-14): the
  // bound is against a job-by-job path (20,000 leases and 40,000 commits), not a target.
  EXPECT_LT(s, 150.0) << "seconds, not minutes";
}

}  // namespace
}  // namespace gb::coord

// Integration tests of distributed runs: the real gridbench-coordinator and real
// gridbench-worker processes (which run real gridbench-job children) on loopback,
// grids submitted over gRPC from the test, the outcome read from the SQLite file.
//
// Every test owns its processes through a Cluster, whose destructor kills them all
// (workers, coordinators, and the gridbench-job children the workers started, found
// by the pid files in the workers' run directories), also when an assertion fails.
// Every wait is bounded; the suite's ctest timeout is 180 s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "tests/integration/cluster.h"
#include "proto/gridbench.grpc.pb.h"

namespace gb {
namespace {
using namespace integration;  // the harness (cluster.h)

// ---- the tests ----

// (1) Three workers finish a 200-job grid; every job is recorded exactly once; the
// workers drain on SIGTERM and exit 0.
TEST(Distributed, ThreeWorkersFinishA200JobGridExactlyOnce) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  std::string addr = c.start_coordinator("coordinator", db, 0, 5000);
  ASSERT_FALSE(addr.empty());
  for (int i = 1; i <= 3; ++i) c.start_worker("w" + std::to_string(i), addr, 2);
  Client client(addr);
  ASSERT_TRUE(wait_until(15000, [&] { return client.active_workers() == 3; })) << "workers did not register";

  auto t0 = Clock::now();
  pb::SubmitGridReply sub = client.submit(sleep_grid("many", steps(0.0, 0.001, 20), 10));
  ASSERT_EQ(sub.jobs(), 200);
  ASSERT_EQ(sub.queued(), 200);
  ASSERT_TRUE(wait_until(90000, [&] { return unfinished(db, "many") == 0; })) << unfinished(db, "many") << " left";
  std::fprintf(stderr, "200 jobs on 3 workers x 2 slots: %.0f ms\n", ms_since(t0));
  expect_exactly_once(db, "many", 200);
  EXPECT_EQ(query_int(db, "SELECT COUNT(DISTINCT owner) FROM runs"), 3);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state <> 'succeeded'"), 0);

  for (int i = 1; i <= 3; ++i) c.signal("w" + std::to_string(i), SIGTERM);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(c.wait_exit("w" + std::to_string(i), 10000), 0) << "w" << i;
  EXPECT_NE(slurp(c.proc("w1").err).find("drained"), std::string::npos);
}

// (2) SIGKILL of a worker mid-job: its jobs are leased again after their leases
// expire and finish on the other worker; exactly one result per job.
TEST(Distributed, KilledWorkersJobsAreLeasedAgainAfterExpiry) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  const int lease_ms = 1500;
  std::string addr = c.start_coordinator("coordinator", db, 0, lease_ms);
  ASSERT_FALSE(addr.empty());
  c.start_worker("victim", addr, 2);
  Client client(addr);
  ASSERT_TRUE(wait_until(15000, [&] { return client.active_workers() == 1; }));
  pb::SubmitGridReply sub = client.submit(sleep_grid("victim", steps(1.5, 0.01, 6)));
  ASSERT_EQ(sub.jobs(), 6);
  // The victim holds two running jobs; then a survivor joins.
  ASSERT_TRUE(wait_until(10000, [&] {
    return query_int(db, "SELECT COUNT(*) FROM jobs WHERE state = 'running' AND lease_owner = 'victim'") == 2;
  }));
  c.start_worker("survivor", addr, 2);
  std::vector<std::string> held =
      query_strings(db, "SELECT hash FROM jobs WHERE state = 'running' AND lease_owner = 'victim'");
  ASSERT_EQ(held.size(), 2u);
  c.kill9("victim");
  auto killed = Clock::now();
  // Its children are orphans now; a machine that dies takes them along.
  c.kill_job_children();

  ASSERT_TRUE(wait_until(60000, [&] { return unfinished(db, "victim") == 0; }));
  std::fprintf(stderr, "grid done %.0f ms after the kill\n", ms_since(killed));
  expect_exactly_once(db, "victim", 6);
  for (const auto& hash : held) {
    const std::string runs = "SELECT COUNT(*) FROM runs r JOIN jobs j ON j.id = r.job_id WHERE j.hash = '" + hash + "'";
    EXPECT_EQ(query_int(db, runs + " AND r.owner = 'victim' AND r.state = 'expired'"), 1) << hash;
    EXPECT_EQ(query_int(db, runs + " AND r.owner = 'survivor' AND r.state = 'succeeded'"), 1) << hash;
    // Not before its lease could expire.
    EXPECT_EQ(query_int(db, runs + " AND r.owner = 'victim' AND r.state = 'succeeded'"), 0) << hash;
  }
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE owner = 'victim' AND state = 'succeeded'"), 0);
}

// (3) SIGKILL of the coordinator mid-grid, restarted on the same DB and port: the
// workers reconnect (registering again), keep their children, deliver their results;
// the grid completes with nothing lost or duplicated.
TEST(Distributed, CoordinatorKilledAndRestartedLosesNothing) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  const int port = free_port();
  std::string addr = c.start_coordinator("coordinator", db, port, 4000);
  ASSERT_EQ(addr, "127.0.0.1:" + std::to_string(port));
  for (int i = 1; i <= 3; ++i) c.start_worker("w" + std::to_string(i), addr, 2);
  Client client(addr);
  ASSERT_TRUE(wait_until(15000, [&] { return client.active_workers() == 3; }));
  pb::SubmitGridReply sub = client.submit(sleep_grid("restart", steps(0.2, 0.001, 20), 3));
  ASSERT_EQ(sub.jobs(), 60);
  ASSERT_TRUE(wait_until(30000, [&] {
    return query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = 'restart' AND state = 'succeeded'") >= 15;
  }));
  c.kill9("coordinator");
  const int64_t done_at_kill =
      query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = 'restart' AND state = 'succeeded'");
  ASSERT_LT(done_at_kill, 60) << "the grid finished before the kill; nothing tested";
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // away: children finish, reports wait
  for (int i = 1; i <= 3; ++i) EXPECT_FALSE(c.exited("w" + std::to_string(i)));

  std::string again;
  for (int attempt = 0; attempt < 10 && again.empty(); ++attempt) {  // the port may take a moment
    again = c.start_coordinator("coordinator-" + std::to_string(attempt + 2), db, port, 4000);
    if (again.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  ASSERT_EQ(again, addr);
  auto restarted = Clock::now();
  ASSERT_TRUE(wait_until(60000, [&] { return unfinished(db, "restart") == 0; }))
      << unfinished(db, "restart") << " left";
  std::fprintf(stderr, "grid done %.0f ms after the restart (%lld of 60 done at the kill)\n", ms_since(restarted),
               static_cast<long long>(done_at_kill));
  expect_exactly_once(db, "restart", 60);
  for (int i = 1; i <= 3; ++i) {
    const std::string name = "w" + std::to_string(i);
    EXPECT_FALSE(c.exited(name));
    EXPECT_NE(slurp(c.proc(name).err).find("registered again"), std::string::npos) << name;
  }
}

// (4) A worker with a wrong token is refused: it exits 1 at once, saying so. A
// completion for a lease the caller does not hold is refused and writes nothing.
TEST(Distributed, WrongTokenAndForeignCompletionAreRefused) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  write_file(c.dir() + "/token", "s3cret-token\n");
  write_file(c.dir() + "/wrong", "not-the-token\n");
  std::string addr = c.start_coordinator("coordinator", db, 0, 5000, c.dir() + "/token");
  ASSERT_FALSE(addr.empty());

  c.start_worker("intruder", addr, 1, {"--token-file", c.dir() + "/wrong"});
  EXPECT_EQ(c.wait_exit("intruder", 15000), 1);
  std::string err = slurp(c.proc("intruder").err);
  EXPECT_NE(err.find("UNAUTHENTICATED"), std::string::npos) << err;
  EXPECT_NE(err.find("token"), std::string::npos) << err;

  // Without a token: refused.
  Client anonymous(addr);
  pb::ListGridsReply grids;
  EXPECT_EQ(anonymous.stub().ListGrids(anonymous.ctx().get(), pb::ListGridsRequest(), &grids).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // Two raw workers; "a" leases the only job.
  Client client(addr, "s3cret-token");
  ASSERT_EQ(client.submit(sleep_grid("one", {0.0})).jobs(), 1);
  int64_t ids[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    pb::RegisterWorkerRequest reg;
    reg.set_name(i == 0 ? "raw-a" : "raw-b");
    reg.set_slots(1);
    pb::Device* d = reg.add_devices();
    d->set_kind("cpu");
    d->set_name("test cpu");
    d->set_memory_bytes(1e9);
    pb::RegisterWorkerReply r;
    grpc::Status s = client.stub().RegisterWorker(client.ctx().get(), reg, &r);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ids[i] = r.worker_id();
  }
  pb::LeaseJobRequest lreq;
  lreq.set_worker_id(ids[0]);
  lreq.set_worker_name("raw-a");
  lreq.set_wait_ms(2000);
  pb::LeaseJobReply lease;
  ASSERT_TRUE(client.stub().LeaseJob(client.ctx().get(), lreq, &lease).ok());
  ASSERT_TRUE(lease.has_job());
  const int64_t run = lease.run_id();

  auto completion = [&](int who, int64_t run_id) {
    pb::CompleteJobRequest req;
    req.set_worker_id(ids[who]);
    req.set_worker_name(who == 0 ? "raw-a" : "raw-b");
    req.set_run_id(run_id);
    pb::Metric* m = req.add_metrics();
    m->set_name("slept_s");
    m->set_value(0);
    m->set_unit("s");
    req.set_engine_version("0.1.0");
    return req;
  };
  pb::CompleteJobReply reply;
  // b does not hold a's lease.
  grpc::Status s = client.stub().CompleteJob(client.ctx().get(), completion(1, run), &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  // a holds no lease on a run that does not exist.
  s = client.stub().CompleteJob(client.ctx().get(), completion(0, run + 1000), &reply);
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION || s.error_code() == grpc::StatusCode::NOT_FOUND)
      << s.error_message();
  pb::FailJobRequest fail;
  fail.set_worker_id(ids[1]);
  fail.set_worker_name("raw-b");
  fail.set_run_id(run);
  fail.set_outcome("failed");
  fail.set_error("not mine");
  pb::FailJobReply fail_reply;
  s = client.stub().FailJob(client.ctx().get(), fail, &fail_reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  // Nothing was written.
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM results"), 0);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM jobs WHERE state IN ('leased', 'running') AND lease_owner = 'raw-a'"),
            1);

  // The holder's completion is accepted once; a retry is a duplicate and writes nothing.
  s = client.stub().CompleteJob(client.ctx().get(), completion(0, run), &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(reply.duplicate());
  s = client.stub().CompleteJob(client.ctx().get(), completion(0, run), &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(reply.duplicate());
  expect_exactly_once(db, "one", 1);
}

// (5) CancelGrid stops the running children within lease_ms / 3 (the renewal
// interval, when a worker learns of it) + 1 s.
TEST(Distributed, CancelStopsRunningChildrenWithinTheBound) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  const int lease_ms = 1500;
  const double bound_ms = lease_ms / 3.0 + 1000;
  std::string addr = c.start_coordinator("coordinator", db, 0, lease_ms);
  ASSERT_FALSE(addr.empty());
  c.start_worker("w1", addr, 2);
  c.start_worker("w2", addr, 2);
  Client client(addr);
  ASSERT_TRUE(wait_until(15000, [&] { return client.active_workers() == 2; }));
  ASSERT_EQ(client.submit(sleep_grid("long", steps(30, 0.1, 4))).jobs(), 4);
  ASSERT_TRUE(wait_until(15000, [&] {
    return query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = 'long' AND state = 'running'") == 4 &&
           c.job_children().size() == 4;
  }));
  std::vector<pid_t> children = c.job_children();

  pb::CancelGridRequest req;
  req.set_name("long");
  pb::CancelGridReply reply;
  auto t0 = Clock::now();
  grpc::Status s = client.stub().CancelGrid(client.ctx().get(), req, &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reply.cancelled(), 4);
  bool stopped = wait_until(10000, [&] {
    for (pid_t pid : children)
      if (alive(pid)) return false;
    return true;
  });
  const double took = ms_since(t0);
  std::fprintf(stderr, "children stopped %.0f ms after CancelGrid (bound %.0f ms)\n", took, bound_ms);
  EXPECT_TRUE(stopped);
  EXPECT_LE(took, bound_ms);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = 'long' AND state = 'cancelled'"), 4);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM results"), 0);
  // The workers stay up, and drain at once (nothing runs).
  c.signal("w1", SIGTERM);
  c.signal("w2", SIGTERM);
  EXPECT_EQ(c.wait_exit("w1", 10000), 0);
  EXPECT_EQ(c.wait_exit("w2", 10000), 0);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state NOT IN ('cancelled')"), 0);
}

// TLS with client certificates (and a token): a worker given the CA and its own
// certificate runs a grid; the coordinator requires both.
TEST(Distributed, TlsWithClientCertificates) {
  Cluster c(temp_dir());
  const std::string cert = c.dir() + "/cert.pem", key = c.dir() + "/key.pem";
  Result<pid_t> gen = spawn_process({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                                     key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                                     "subjectAltName=IP:127.0.0.1,DNS:localhost"},
                                    c.dir() + "/openssl.out", c.dir() + "/openssl.err");
  if (!gen.ok()) GTEST_SKIP() << "no openssl to make a certificate: " << gen.message();
  ExitInfo e = wait_process(*gen);
  ASSERT_TRUE(e.exited && e.code == 0) << slurp(c.dir() + "/openssl.err");
  write_file(c.dir() + "/token", "tls-token\n");
  const std::string db = c.dir() + "/grid.db";
  std::string addr = c.start_coordinator("coordinator", db, 0, 5000, c.dir() + "/token",
                                         {"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", cert});
  ASSERT_FALSE(addr.empty());
  c.start_worker("tls-worker", addr, 2,
                 {"--token-file", c.dir() + "/token", "--tls-ca", cert, "--tls-cert", cert, "--tls-key", key});
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = slurp(cert);
  ssl.pem_cert_chain = slurp(cert);
  ssl.pem_private_key = slurp(key);
  Client client(addr, "tls-token", grpc::SslCredentials(ssl));
  ASSERT_TRUE(wait_until(15000, [&] { return client.active_workers() == 1; }));
  ASSERT_EQ(client.submit(sleep_grid("tls", steps(0.0, 0.001, 4))).jobs(), 4);
  ASSERT_TRUE(wait_until(30000, [&] { return unfinished(db, "tls") == 0; }));
  expect_exactly_once(db, "tls", 4);
}

// ---- the gridbench CLI against a coordinator ----

TEST(Distributed, CliSubmitWaitStatusWorkersResultsCancel) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  write_file(c.dir() + "/token", "cli-token\n");
  std::string addr = c.start_coordinator("coordinator", db, 0, 3000, c.dir() + "/token");
  ASSERT_FALSE(addr.empty());
  c.start_worker("w1", addr, 2, {"--token-file", c.dir() + "/token"});
  const std::vector<std::string> remote = {"--coordinator", addr, "--token-file", c.dir() + "/token"};
  auto with_remote = [&](std::vector<std::string> args) {
    args.insert(args.end(), remote.begin(), remote.end());
    return args;
  };

  // workers: the registered worker, as JSON.
  ASSERT_TRUE(wait_until(15000, [&] {
    if (gridbench(c, "workers", with_remote({"workers", "--format", "json"})) != 0) return false;
    return slurp(c.proc("workers").out).find("\"w1\"") != std::string::npos;
  })) << slurp(c.proc("workers").err);

  // submit --wait: runs the grid to the end and prints its report.
  write_file(c.dir() + "/g.json",
             R"({"name": "cli", "axes": {"seconds": [0.01, 0.02, 0.03]}, "measure": ["sleep"], "repeats": 2,
                 "report": {"rows": ["seconds"], "columns": [{"metric": "slept_s", "digits": 2}]}})");
  ASSERT_EQ(gridbench(c, "submit", with_remote({"submit", c.dir() + "/g.json", "--wait"})), 0)
      << slurp(c.proc("submit").err);
  std::string out = slurp(c.proc("submit").out);
  EXPECT_NE(out.find("grid cli: 6 jobs, 0 reused, 6 queued"), std::string::npos) << out;
  EXPECT_NE(out.find("slept_s"), std::string::npos) << out;
  expect_exactly_once(db, "cli", 6);

  // status: all grids, then one grid's jobs.
  ASSERT_EQ(gridbench(c, "status", with_remote({"status", "--format", "json"})), 0) << slurp(c.proc("status").err);
  Json grids = Json::parse(slurp(c.proc("status").out));
  ASSERT_EQ(grids.size(), 1u);
  EXPECT_EQ(grids[0]["by_state"]["succeeded"], 6);
  ASSERT_EQ(gridbench(c, "jobs", with_remote({"status", "cli", "--format", "json"})), 0);
  Json jobs = Json::parse(slurp(c.proc("jobs").out));
  ASSERT_EQ(jobs.size(), 6u);
  EXPECT_EQ(jobs[0]["state"], "succeeded");

  // results --coordinator: the same report as from the database file.
  ASSERT_EQ(gridbench(c, "results", with_remote({"results", "cli", "--format", "csv"})), 0)
      << slurp(c.proc("results").err);
  ASSERT_EQ(gridbench(c, "results-db", {"results", "cli", "--db", db, "--format", "csv"}), 0);
  EXPECT_EQ(slurp(c.proc("results").out), slurp(c.proc("results-db").out));
  EXPECT_NE(slurp(c.proc("results").out).find("0.03"), std::string::npos);

  // An invalid grid: exit 2 before any traffic, with the file and path.
  write_file(c.dir() + "/bad.json", R"({"name": "bad", "axes": {"seconds": [-1]}, "measure": ["sleep"]})");
  EXPECT_EQ(gridbench(c, "bad", with_remote({"submit", c.dir() + "/bad.json"})), 2);
  EXPECT_NE(slurp(c.proc("bad").err).find("bad.json: $.axes.seconds[0]"), std::string::npos)
      << slurp(c.proc("bad").err);

  // A wrong token: refused, with a message that says so.
  write_file(c.dir() + "/wrong", "nope\n");
  EXPECT_EQ(gridbench(c, "wrong", {"status", "--coordinator", addr, "--token-file", c.dir() + "/wrong"}), 1);
  EXPECT_NE(slurp(c.proc("wrong").err).find("refused"), std::string::npos) << slurp(c.proc("wrong").err);

  // cancel: a grid of long sleeps ends cancelled, its children gone.
  write_file(c.dir() + "/long.json", R"({"name": "long", "axes": {"seconds": [30, 31, 32]}, "measure": ["sleep"]})");
  ASSERT_EQ(gridbench(c, "submit-long", with_remote({"submit", c.dir() + "/long.json"})), 0);
  ASSERT_TRUE(wait_until(15000, [&] { return c.job_children().size() == 2; }));
  ASSERT_EQ(gridbench(c, "cancel", with_remote({"cancel", "long"})), 0) << slurp(c.proc("cancel").err);
  EXPECT_NE(slurp(c.proc("cancel").out).find("grid long: 3 jobs cancelled"), std::string::npos)
      << slurp(c.proc("cancel").out);
  EXPECT_TRUE(wait_until(5000, [&] { return c.job_children().empty(); }));
  // watch on a finished grid ends at once; cancelled jobs make it exit 1.
  EXPECT_EQ(gridbench(c, "watch", with_remote({"watch", "long"}), 15000), 1);
  EXPECT_NE(slurp(c.proc("watch").out).find("3 cancelled"), std::string::npos) << slurp(c.proc("watch").out);
}

}  // namespace
}  // namespace gb

namespace gb {
namespace {

// The engine's job kinds through the daemons: a CPU worker takes speed, memory
// and ppl jobs of a tiny golden model and reports CPU figures.
TEST(Distributed, EngineJobsRunOnACpuWorker) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  std::string addr = c.start_coordinator("coordinator", db, 0, 5000);
  ASSERT_FALSE(addr.empty());
  c.start_worker("cpu1", addr, 1);
  Client client(addr);
  ASSERT_TRUE(wait_until(15000, [&] { return client.active_workers() == 1; })) << "worker did not register";
  const std::string data = std::string(GB_SOURCE_DIR) + "/tests/data";
  const std::string grid = R"({"name": "engine", "axes": {"kv_format": ["f32", "bf16"]},
    "fixed": {"model": "hf:)" + data + R"(/golden/gpt2", "context": 32, "chunks": 2, "prompt_tokens": 8,
              "gen_tokens": 4, "dataset": "text:)" + data + R"(/corpus/opticks-book1-part1.txt",
              "tokenizer": ")" + data + R"(/ppl/byte_tokenizer.json"},
    "measure": ["speed", "memory", "ppl"]})";
  pb::SubmitGridReply sub = client.submit(grid);
  ASSERT_EQ(sub.jobs(), 6);
  EXPECT_EQ(sub.unplaceable(), 0);
  ASSERT_TRUE(wait_until(60000, [&] { return unfinished(db, "engine") == 0; })) << unfinished(db, "engine") << " left";
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'"), 6);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state <> 'succeeded'"), 0);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM results WHERE run_id NOT IN "
                          "(SELECT result_run_id FROM jobs WHERE result_run_id IS NOT NULL)"),
            0);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM results WHERE metric = 'ppl' AND value > 1"), 2);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM results WHERE metric = 'tokens_scored' AND value = 30"), 2);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM results WHERE metric = 'tpot_ms' AND value > 0"), 2);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE json_extract(device_json, '$.backend') = 'cpu'"), 6);
  c.signal("cpu1", SIGTERM);
  EXPECT_EQ(c.wait_exit("cpu1", 10000), 0);
}

}  // namespace
}  // namespace gb

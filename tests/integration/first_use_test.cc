// What a new user meets first with the daemons (issue 15), on loopback with the
// real processes: workers on one host that each have their own identity, a name or
// work directory that is taken, one coordinator per database and a taken port
// found before anything is created, and the CLI's words while nothing can run.
#include <sstream>

#include <gtest/gtest.h>

#include "tests/integration/cluster.h"

namespace gb {
namespace {

using namespace integration;

// The names the coordinator lists.
std::vector<std::string> worker_names(Client& client) {
  pb::ListWorkersReply reply;
  std::vector<std::string> out;
  if (!client.stub().ListWorkers(client.ctx(2000).get(), pb::ListWorkersRequest(), &reply).ok()) return out;
  for (const auto& w : reply.workers())
    if (w.state() == "active") out.push_back(w.name());
  return out;
}

// Two `gridbench-worker --device cpu` on one host, as a Slurm array puts them:
// each its own name and work directory (issue 15: both "HOST:cpu", one directory,
// and the coordinator saw one worker); when one drains, the other runs the grid.
TEST(FirstUse, TwoWorkersOnOneHostHaveTheirOwnIdentity) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  std::string addr = c.start_coordinator("coordinator", db, 0, 3000);
  ASSERT_FALSE(addr.empty());
  const std::string tmpdir = c.dir() + "/tmp";
  fs::create_directories(tmpdir);
  for (const char* name : {"a", "b"}) {
    c.spawn(name, {"/usr/bin/env", "TMPDIR=" + tmpdir, kBin + "gridbench-worker", "--coordinator", addr, "--device",
                   "cpu", "--no-measure"});
  }
  Client client(addr);
  ASSERT_TRUE(wait_until(15000, [&] { return worker_names(client).size() == 2; }))
      << slurp(c.proc("a").err) << slurp(c.proc("b").err);
  std::vector<std::string> names = worker_names(client);
  EXPECT_NE(names[0], names[1]);
  const std::string base = host_name() + ":cpu";
  for (const auto& n : names) EXPECT_EQ(n.rfind(base, 0), 0u) << n;
  int dirs = 0;
  for (const auto& e : fs::directory_iterator(tmpdir)) {
    EXPECT_TRUE(fs::exists(e.path() / "worker.lock")) << e.path();
    ++dirs;
  }
  EXPECT_EQ(dirs, 2);

  c.signal("a", SIGTERM);
  EXPECT_EQ(c.wait_exit("a", 10000), 0);
  client.submit(sleep_grid("after-drain", steps(0.01, 0.01, 4)));
  ASSERT_TRUE(wait_until(30000, [&] { return unfinished(db, "after-drain") == 0; }));
  expect_exactly_once(db, "after-drain", 4);
}

// A --name or --work-dir that another live worker holds: exit 2, saying which.
TEST(FirstUse, ATakenWorkerNameOrWorkDirExitsTwo) {
  Cluster c(temp_dir());
  std::string addr = c.start_coordinator("coordinator", c.dir() + "/grid.db", 0, 3000);
  ASSERT_FALSE(addr.empty());
  c.start_worker("first", addr, 1, {"--no-measure"});
  Client client(addr);
  ASSERT_TRUE(wait_until(15000, [&] { return worker_names(client).size() == 1; }));
  c.spawn("same-name", {kBin + "gridbench-worker", "--coordinator", addr, "--name", "first", "--work-dir",
                        c.dir() + "/other", "--no-measure"});
  EXPECT_EQ(c.wait_exit("same-name", 10000), 2);
  EXPECT_NE(slurp(c.proc("same-name").err).find("--name first: another gridbench-worker on this host runs under "
                                                 "this name"),
            std::string::npos)
      << slurp(c.proc("same-name").err);
  c.spawn("same-dir", {kBin + "gridbench-worker", "--coordinator", addr, "--name", "second", "--work-dir",
                       c.dir() + "/first", "--no-measure"});
  EXPECT_EQ(c.wait_exit("same-dir", 10000), 2);
  EXPECT_NE(slurp(c.proc("same-dir").err).find("work directory " + c.dir() + "/first is in use by another "
                                                "gridbench-worker (pid " + std::to_string(c.proc("first").pid) +
                                                ", worker first)"),
            std::string::npos)
      << slurp(c.proc("same-dir").err);
  EXPECT_EQ(worker_names(client), (std::vector<std::string>{"first"}));
}

// One coordinator per database: a second exits 2 naming the first; a coordinator
// whose port is taken exits 1 with one line of its own, no gRPC dump, and creates
// no database (issue 15: it started silently / printed gRPC's log and created it).
TEST(FirstUse, OneCoordinatorPerDatabaseAndATakenPortCreatesNothing) {
  Cluster c(temp_dir());
  const std::string db = c.dir() + "/grid.db";
  std::string addr = c.start_coordinator("first", db, 0, 3000);
  ASSERT_FALSE(addr.empty());
  c.spawn("second", {kBin + "gridbench-coordinator", "--listen", "127.0.0.1:0", "--db", db});
  EXPECT_EQ(c.wait_exit("second", 10000), 2);
  const std::string err = slurp(c.proc("second").err);
  EXPECT_NE(err.find(db + ": already served by another gridbench-coordinator (pid " +
                     std::to_string(c.proc("first").pid) + " on " + host_name() + ", serving " + addr + ", lock " +
                     db + ".lock)"),
            std::string::npos)
      << err;

  const std::string port = addr.substr(addr.rfind(':') + 1);
  c.spawn("taken", {kBin + "gridbench-coordinator", "--listen", "127.0.0.1:" + port, "--db", c.dir() + "/new.db"});
  EXPECT_EQ(c.wait_exit("taken", 10000), 1);
  const std::string taken = slurp(c.proc("taken").err);
  EXPECT_NE(taken.find("cannot listen on 127.0.0.1:" + port), std::string::npos) << taken;
  std::istringstream lines(taken);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_NE(line.find("gridbench-coordinator"), std::string::npos) << "a line not of the coordinator's: " << line;
  }
  EXPECT_FALSE(fs::exists(c.dir() + "/new.db"));
  EXPECT_FALSE(fs::exists(c.dir() + "/new.db.lock"));
}

// With no worker registered: submit says so, watch prints the pending and
// unplaceable jobs while nothing moves (issue 15: "fit no registered worker", and
// watch printed nothing); status, watch, cancel and results of an unknown grid
// exit 2.
TEST(FirstUse, TheCliSaysWhenNoWorkerIsRegisteredAndAnUnknownGridExitsTwo) {
  Cluster c(temp_dir());
  std::string addr = c.start_coordinator("coordinator", c.dir() + "/grid.db", 0, 3000);
  ASSERT_FALSE(addr.empty());
  write_file(c.dir() + "/naps.json", sleep_grid("naps", {0.01, 0.02}));
  ASSERT_EQ(gridbench(c, "submit", {"submit", c.dir() + "/naps.json", "--coordinator", addr}), 0)
      << slurp(c.proc("submit").err);
  EXPECT_NE(slurp(c.proc("submit").out).find("warning: no worker is registered with the coordinator at " + addr +
                                             ": the 2 queued jobs wait for one"),
            std::string::npos)
      << slurp(c.proc("submit").out);

  c.spawn("watch", {kBin + "gridbench", "watch", "naps", "--coordinator", addr});
  const std::string line = "grid naps: [0/2 done] 2 pending (2 unplaceable: no worker is registered), 0 running";
  EXPECT_TRUE(wait_until(5000, [&] { return slurp(c.proc("watch").err).find(line) != std::string::npos; }))
      << slurp(c.proc("watch").err);
  c.signal("watch", SIGTERM);
  c.wait_exit("watch", 5000);

  for (const char* cmd : {"status", "watch", "cancel", "results"}) {
    const std::string name = std::string("unknown-") + cmd;
    EXPECT_EQ(gridbench(c, name, {cmd, "nosuch", "--coordinator", addr}, 15000), 2) << cmd;
    EXPECT_NE(slurp(c.proc(name).err).find("no grid named 'nosuch'"), std::string::npos)
        << cmd << ": " << slurp(c.proc(name).err);
  }
}

}  // namespace
}  // namespace gb

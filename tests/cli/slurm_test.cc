// `gridbench slurm`: the sbatch script of a worker array (what it asks Slurm for,
// and what each task runs: its script is executed by bash here as Slurm would, for
// two tasks, with a stand-in worker that prints its arguments), Slurm's time
// syntax, the squeue lines, and the three subcommands run as the real gridbench
// binary against stand-in sbatch/squeue/scancel scripts on PATH that record what
// they were given. A real Slurm runs the arrays in tests/cluster/slurm_test.sh.
#include "cli/slurm_script.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/command.h"
#include "common/subprocess.h"

namespace gb::cli {
namespace {
namespace slurm_test {

namespace fs = std::filesystem;

const std::string kGridbench = std::string(GB_BINARY_DIR) + "/bin/gridbench";

std::string temp_dir() {
  auto dir = fs::path(::testing::TempDir()) /
             ("slurm_" + std::to_string(getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_exec(const std::string& path, const std::string& text) {
  {
    std::ofstream out(path);
    out << text;
  }
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

SlurmWorkerArray gpu_array() {
  SlurmWorkerArray a;
  a.coordinator = "head.cluster:7878";
  a.gpus = 4;
  a.partition = "gpu";
  a.time_limit = "12:00:00";
  a.worker_binary = "/opt/gridbench/bin/gridbench-worker";
  a.log_dir = "/home/me/gb-logs";
  a.token_file = "/home/me/.gridbench/token";
  return a;
}

TEST(SlurmScript, GpuArrayAsksForOneGpuPerTaskRequeueAndTheDrainSignal) {
  Result<std::string> s = slurm_worker_script(gpu_array());
  ASSERT_TRUE(s.ok()) << s.message();
  for (const char* line : {"#!/bin/bash\n", "#SBATCH --job-name=gridbench-worker\n",
                           "#SBATCH --comment=gridbench-worker:coordinator=head.cluster:7878\n",
                           "#SBATCH --array=0-3\n", "#SBATCH --ntasks=1\n", "#SBATCH --gres=gpu:1\n",
                           "#SBATCH --partition=gpu\n", "#SBATCH --time=12:00:00\n", "#SBATCH --requeue\n",
                           "#SBATCH --signal=B:TERM@300\n",
                           "#SBATCH --output=/home/me/gb-logs/gridbench-worker-%A_%a.out\n",
                           "#SBATCH --open-mode=append\n",
                           "exec /opt/gridbench/bin/gridbench-worker --coordinator head.cluster:7878 --device cuda:0 "
                           "--slots 1"}) {
    EXPECT_TRUE(contains(*s, line)) << "missing: " << line << "\n" << *s;
  }
  EXPECT_TRUE(contains(*s, "--token-file /home/me/.gridbench/token")) << *s;
  EXPECT_FALSE(contains(*s, "--account")) << *s;
  EXPECT_FALSE(contains(*s, "--cpus-per-task")) << *s;
  // Every #SBATCH line comes before the first command: sbatch stops reading them there.
  const size_t last_directive = s->rfind("#SBATCH");
  const size_t first_command = s->find("\nset -eu");
  EXPECT_LT(last_directive, first_command);
  // bash accepts it.
  Result<CommandOutput> syntax = run_command({"bash", "-n"}, *s);
  ASSERT_TRUE(syntax.ok());
  EXPECT_EQ(syntax->exit.code, 0) << syntax->err;
}

TEST(SlurmScript, CpuArrayHasNoGresAndPassesSlotsAndTheOptionalDirectives) {
  SlurmWorkerArray a;
  a.coordinator = "10.0.0.5:7878";
  a.cpu_tasks = 3;
  a.slots = 2;
  a.cpus_per_task = 8;
  a.mem = "16G";
  a.account = "proj42";
  a.worker_binary = "/usr/local/bin/gridbench-worker";
  a.log_dir = "/scratch/logs";
  a.sbatch_args = {"--qos=high", "--constraint=avx2"};
  a.drain_before_s = 0;
  Result<std::string> s = slurm_worker_script(a);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(contains(*s, "#SBATCH --array=0-2\n")) << *s;
  EXPECT_FALSE(contains(*s, "--gres")) << *s;
  EXPECT_FALSE(contains(*s, "#SBATCH --signal")) << "--drain-before 0 asks for no signal\n" << *s;
  EXPECT_FALSE(contains(*s, "#SBATCH --time")) << *s;
  EXPECT_TRUE(contains(*s, "#SBATCH --cpus-per-task=8\n#SBATCH --mem=16G\n")) << *s;
  EXPECT_TRUE(contains(*s, "#SBATCH --account=proj42\n")) << *s;
  EXPECT_TRUE(contains(*s, "#SBATCH --qos=high\n#SBATCH --constraint=avx2\n")) << *s;
  EXPECT_TRUE(contains(*s, "--device cpu --slots 2")) << *s;
  EXPECT_FALSE(contains(*s, "--token-file")) << *s;
}

// The script as Slurm runs it, for tasks 2 and 3 of array 77 on one host: each task
// execs the worker with its own name and work dir.
TEST(SlurmScript, EachTaskRunsTheWorkerUnderItsOwnNameAndWorkDir) {
  const std::string dir = temp_dir();
  write_exec(dir + "/fake-worker", "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n");
  SlurmWorkerArray a = gpu_array();
  a.worker_binary = dir + "/fake-worker";
  a.token_file = "/path with space/token";
  a.tls_ca = "/etc/ca.pem";
  a.tls_cert = "/etc/c.pem";
  a.tls_key = "/etc/k.pem";
  Result<std::string> s = slurm_worker_script(a);
  ASSERT_TRUE(s.ok()) << s.message();
  write_exec(dir + "/job.sh", *s);
  std::map<std::string, std::vector<std::string>> argv_of;
  for (const std::string task : {"2", "3"}) {
    Result<CommandOutput> r = run_command(
        {"env", "SLURM_ARRAY_JOB_ID=77", "SLURM_ARRAY_TASK_ID=" + task, "SLURM_RESTART_COUNT=1", "TMPDIR=" + dir,
         "bash", dir + "/job.sh"});
    ASSERT_TRUE(r.ok()) << r.message();
    ASSERT_EQ(r->exit.code, 0) << r->err;
    std::vector<std::string> lines;
    std::stringstream ss(r->out);
    for (std::string l; std::getline(ss, l);) lines.push_back(l);
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(contains(lines[0], "task 77_" + task)) << lines[0];
    EXPECT_TRUE(contains(lines[0], "(restart 1)")) << lines[0];
    argv_of[task] = std::vector<std::string>(lines.begin() + 1, lines.end());
  }
  const std::string host = host_name().substr(0, host_name().find('.'));
  auto value_of = [](const std::vector<std::string>& argv, const std::string& flag) -> std::string {
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == flag) return argv[i + 1];
    return "<absent>";
  };
  for (const std::string task : {"2", "3"}) {
    const auto& argv = argv_of[task];
    EXPECT_EQ(value_of(argv, "--coordinator"), "head.cluster:7878");
    EXPECT_EQ(value_of(argv, "--device"), "cuda:0");
    EXPECT_EQ(value_of(argv, "--name"), host + ":cuda:0:slurm-77_" + task);
    EXPECT_EQ(value_of(argv, "--work-dir"), dir + "/gridbench-slurm-77_" + task);
    EXPECT_EQ(value_of(argv, "--token-file"), "/path with space/token");
    EXPECT_EQ(value_of(argv, "--tls-ca"), "/etc/ca.pem");
    EXPECT_EQ(value_of(argv, "--tls-cert"), "/etc/c.pem");
    EXPECT_EQ(value_of(argv, "--tls-key"), "/etc/k.pem");
  }
  EXPECT_NE(value_of(argv_of["2"], "--name"), value_of(argv_of["3"], "--name"));
}

TEST(SlurmScript, InvalidRequestsSayWhichFlag) {
  struct Case {
    std::function<void(SlurmWorkerArray&)> change;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[](SlurmWorkerArray& a) { a.cpu_tasks = 2; }, "not both"},
      {[](SlurmWorkerArray& a) { a.gpus = 0; }, "give --gpus N"},
      {[](SlurmWorkerArray& a) { a.partition = "gpu long"; }, "--partition 'gpu long': must not contain whitespace"},
      {[](SlurmWorkerArray& a) { a.time_limit = "12h"; }, "--time: time limit '12h': expected minutes"},
      {[](SlurmWorkerArray& a) { a.time_limit = "5"; a.drain_before_s = 300; },
       "--drain-before 300: must be shorter than --time 5 (300 s)"},
      {[](SlurmWorkerArray& a) { a.token_file = "token"; }, "--token-file 'token': expected an absolute path"},
      {[](SlurmWorkerArray& a) { a.log_dir = "logs"; }, "--log-dir 'logs': expected an absolute path"},
      {[](SlurmWorkerArray& a) { a.coordinator = ""; }, "--coordinator: give"},
      {[](SlurmWorkerArray& a) { a.tls_cert = "/c.pem"; }, "--tls-cert and --tls-key go together"},
      {[](SlurmWorkerArray& a) { a.tls_cert = "/c.pem"; a.tls_key = "/k.pem"; }, "--tls-cert needs --tls-ca"},
      {[](SlurmWorkerArray& a) { a.sbatch_args = {"qos=high"}; }, "--sbatch-arg 'qos=high': expected an sbatch option"},
      {[](SlurmWorkerArray& a) { a.slots = 0; }, "--slots 0"},
  };
  for (const Case& c : cases) {
    SlurmWorkerArray a = gpu_array();
    c.change(a);
    Result<std::string> s = slurm_worker_script(a);
    ASSERT_FALSE(s.ok()) << "expected an error containing: " << c.expect;
    EXPECT_TRUE(contains(s.message(), c.expect)) << s.message() << "\n  expected: " << c.expect;
  }
}

TEST(SlurmScript, TimeLimitsInSlurmsSyntax) {
  const std::vector<std::pair<std::string, int64_t>> ok = {
      {"30", 1800},        {"5:30", 330},           {"2:00:00", 7200},       {"1-0", 86400},
      {"1-2", 93600},      {"1-2:30", 95400},       {"2-03:04:05", 183845},  {"UNLIMITED", -1},
      {"infinite", -1},    {"0:1", 1},
  };
  for (const auto& [text, seconds] : ok) {
    Result<int64_t> t = parse_slurm_time(text);
    ASSERT_TRUE(t.ok()) << text << ": " << t.message();
    EXPECT_EQ(*t, seconds) << text;
  }
  for (const std::string bad : {"", "0", "1:2:3:4", "a", "-5", "1-", "1-2:3:4:5", "12h", "1.5"}) {
    Result<int64_t> t = parse_slurm_time(bad);
    EXPECT_FALSE(t.ok()) << "'" << bad << "' parsed as " << (t.ok() ? *t : 0);
  }
}

TEST(SlurmScript, DefaultDrainLeadIsFiveMinutesOrAQuarterOfTheLimit) {
  SlurmWorkerArray a = gpu_array();
  a.time_limit = "";
  EXPECT_EQ(*drain_lead_s(a), 300);
  a.time_limit = "UNLIMITED";
  EXPECT_EQ(*drain_lead_s(a), 300);
  a.time_limit = "2:00:00";
  EXPECT_EQ(*drain_lead_s(a), 300);
  a.time_limit = "8";  // 480 s
  EXPECT_EQ(*drain_lead_s(a), 120);
  a.drain_before_s = 60;
  EXPECT_EQ(*drain_lead_s(a), 60);
  Result<std::string> s = slurm_worker_script(a);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(contains(*s, "--signal=B:TERM@60\n")) << *s;
}

TEST(SlurmScript, ShellQuote) {
  EXPECT_EQ(shell_quote("/opt/gb/bin/gridbench-worker"), "/opt/gb/bin/gridbench-worker");
  EXPECT_EQ(shell_quote("host:7878"), "host:7878");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
  EXPECT_EQ(shell_quote(""), "''");
}

TEST(SlurmSqueue, ParsesLinesAndKeepsOnlyGridbenchArrays) {
  const std::string text =
      "12|0|12_0|RUNNING|1:02|12:00:00|node7|gridbench-worker|gridbench-worker:coordinator=head:7878\n"
      "12|1|12_1|PENDING|0:00|12:00:00|(Resources)|gridbench-worker|gridbench-worker:coordinator=head:7878\n"
      "13|N/A|13|RUNNING|5:00|1:00:00|node2|train|\n"
      "14|0|14_0|RUNNING|0:10|1:00:00|node3|gridbench-worker|someone else's|comment\n"
      "15|2|15_2|RUNNING|0:10|1:00:00|node4|gridbench-worker|gridbench-worker:coordinator=other:1\n"
      "\n";
  Result<std::vector<SlurmTask>> tasks = parse_squeue(text);
  ASSERT_TRUE(tasks.ok()) << tasks.message();
  ASSERT_EQ(tasks->size(), 5u);
  EXPECT_EQ((*tasks)[1].where, "(Resources)");
  EXPECT_EQ((*tasks)[3].comment, "someone else's|comment");
  EXPECT_EQ((*tasks)[0].coordinator(), "head:7878");
  EXPECT_EQ((*tasks)[2].coordinator(), "");

  std::vector<SlurmTask> all = gridbench_tasks(*tasks, "");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].job_id, "12_0");
  EXPECT_EQ(all[1].job_id, "12_1");
  EXPECT_EQ(all[2].job_id, "15_2");
  std::vector<SlurmTask> head = gridbench_tasks(*tasks, "head:7878");
  ASSERT_EQ(head.size(), 2u);

  Result<std::vector<SlurmTask>> bad = parse_squeue("12|0|12_0|RUNNING\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(contains(bad.message(), "squeue output line 1: expected 9 '|'-separated fields")) << bad.message();
}

// ---- the subcommands, against stand-ins for Slurm's commands ----

struct FakeSlurm {
  std::string dir;
  explicit FakeSlurm(const std::string& d) : dir(d) {
    fs::create_directories(dir + "/bin");
    write_exec(dir + "/bin/sbatch",
               "#!/bin/sh\necho \"$@\" > \"$FAKE_SLURM/sbatch.args\"\ncat > \"$FAKE_SLURM/sbatch.stdin\"\n"
               "echo '4242;gbtest'\n");
    write_exec(dir + "/bin/squeue",
               "#!/bin/sh\necho \"$@\" > \"$FAKE_SLURM/squeue.args\"\ncat \"$FAKE_SLURM/squeue.out\"\n");
    write_exec(dir + "/bin/scancel", "#!/bin/sh\necho \"$@\" >> \"$FAKE_SLURM/scancel.log\"\n");
    std::ofstream(dir + "/squeue.out")
        << "12|0|12_0|RUNNING|1:02|12:00:00|node7|gridbench-worker|gridbench-worker:coordinator=head:7878\n"
           "12|1|12_1|PENDING|0:00|12:00:00|(Priority)|gridbench-worker|gridbench-worker:coordinator=head:7878\n"
           "13|N/A|13|RUNNING|5:00|1:00:00|node2|train|\n"
           "20|0|20_0|RUNNING|0:05|2:00:00|node1|gridbench-worker|gridbench-worker:coordinator=other:9\n";
  }
  // gridbench with the stand-ins first on PATH, or with PATH = `path` alone.
  CommandOutput run(std::vector<std::string> args, const std::string& path = "") const {
    std::vector<std::string> argv = {"/usr/bin/env", "PATH=" + (path.empty() ? dir + "/bin:/usr/bin:/bin" : path),
                                     "FAKE_SLURM=" + dir, kGridbench};
    argv.insert(argv.end(), args.begin(), args.end());
    Result<CommandOutput> r = run_command(argv, "", 30000);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? *r : CommandOutput{};
  }
};

TEST(SlurmCli, DryRunPrintsTheScriptAndSubmitsNothing) {
  FakeSlurm slurm(temp_dir());
  CommandOutput r = slurm.run({"slurm", "submit", "--coordinator", "head:7878", "--gpus", "2", "--time", "1:00:00",
                               "--log-dir", slurm.dir + "/logs", "--dry-run"});
  EXPECT_EQ(r.exit.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "#SBATCH --array=0-1\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "#SBATCH --gres=gpu:1\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "exec " + std::string(GB_BINARY_DIR) + "/bin/gridbench-worker --coordinator head:7878"))
      << r.out;
  EXPECT_FALSE(fs::exists(slurm.dir + "/sbatch.args"));
  EXPECT_FALSE(fs::exists(slurm.dir + "/logs")) << "a dry run creates nothing";
  // The default log directory is the current one, as an absolute path.
  Result<CommandOutput> here = run_command({"sh", "-c", "cd '" + slurm.dir + "' && '" + kGridbench +
                                                            "' slurm submit --coordinator h:1 --gpus 1 --dry-run"});
  ASSERT_TRUE(here.ok());
  EXPECT_TRUE(contains(here->out, "#SBATCH --output=" + fs::canonical(slurm.dir).string() + "/gridbench-worker-%A_%a.out\n"))
      << here->out;
}

TEST(SlurmCli, SubmitGivesTheScriptToSbatchAndPrintsTheJobId) {
  FakeSlurm slurm(temp_dir());
  std::ofstream(slurm.dir + "/token") << "s3cret\n";
  CommandOutput r = slurm.run({"slurm", "submit", "--coordinator", "127.0.0.1:7878", "--device", "cpu", "--tasks",
                               "3", "--slots", "2", "--partition", "debug", "--token-file", slurm.dir + "/token",
                               "--log-dir", slurm.dir + "/logs", "--sbatch-arg=--qos=low"});
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(r.out, "4242\n");
  EXPECT_TRUE(contains(r.err, "loopback")) << r.err;
  EXPECT_EQ(slurp(slurm.dir + "/sbatch.args"), "--parsable\n");
  const std::string script = slurp(slurm.dir + "/sbatch.stdin");
  EXPECT_TRUE(contains(script, "#SBATCH --array=0-2\n")) << script;
  EXPECT_TRUE(contains(script, "#SBATCH --partition=debug\n")) << script;
  EXPECT_TRUE(contains(script, "#SBATCH --qos=low\n")) << script;
  EXPECT_TRUE(contains(script, "--device cpu --slots 2")) << script;
  EXPECT_TRUE(contains(script, "--token-file " + slurm.dir + "/token")) << script;
  EXPECT_FALSE(contains(script, "s3cret")) << "the token itself stays out of the script";
  EXPECT_TRUE(fs::is_directory(slurm.dir + "/logs"));
}

TEST(SlurmCli, UsageErrorsExitTwoAndSubmitNothing) {
  FakeSlurm slurm(temp_dir());
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--tasks", "3"}, "--tasks is for CPU workers"},
      {{"--device", "cpu"}, "--device cpu needs --tasks N"},
      {{"--device", "cpu", "--tasks", "2", "--gpus", "1"}, "--gpus is for GPU workers"},
      {{"--gpus", "2", "--tasks", "2"}, "--tasks is for CPU workers"},
      {{"--device", "tpu", "--tasks", "1"}, "--device 'tpu': expected cpu or cuda"},
      {{}, "give --gpus N"},
      {{"--gpus", "1", "--token-file", "/nonexistent/token"}, "--token-file /nonexistent/token: not a readable file"},
      {{"--gpus", "1", "--worker-bin", "/nonexistent/gridbench-worker"}, "is not executable here"},
      {{"--gpus", "1", "--time", "soon"}, "time limit 'soon'"},
  };
  for (const auto& [extra, expect] : cases) {
    std::vector<std::string> args = {"slurm", "submit", "--coordinator", "head:7878", "--log-dir", slurm.dir + "/l"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandOutput r = slurm.run(args);
    EXPECT_EQ(r.exit.code, 2) << expect << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, expect)) << r.err << "\n  expected: " << expect;
  }
  EXPECT_FALSE(fs::exists(slurm.dir + "/sbatch.args"));
}

TEST(SlurmCli, WithoutSlurmOnPathItSaysSo) {
  FakeSlurm slurm(temp_dir());
  fs::create_directories(slurm.dir + "/empty");
  CommandOutput r = slurm.run({"slurm", "status"}, slurm.dir + "/empty");
  EXPECT_EQ(r.exit.code, 1);
  EXPECT_TRUE(contains(r.err, "squeue: not found on PATH")) << r.err;
  r = slurm.run({"slurm", "submit", "--coordinator", "h:1", "--gpus", "1", "--log-dir", slurm.dir + "/l"},
                slurm.dir + "/empty");
  EXPECT_EQ(r.exit.code, 1);
  EXPECT_TRUE(contains(r.err, "sbatch: not found on PATH")) << r.err;
}

TEST(SlurmCli, StatusListsOnlyGridbenchArraysOfTheCoordinator) {
  FakeSlurm slurm(temp_dir());
  CommandOutput r = slurm.run({"slurm", "status"});
  ASSERT_EQ(r.exit.code, 0) << r.err;
  const std::string args = slurp(slurm.dir + "/squeue.args");
  EXPECT_TRUE(contains(args, "--me --array --noheader --name=gridbench-worker --format=%F|%K|%i|%T|%M|%l|%R|%j|%k"))
      << args;
  EXPECT_TRUE(contains(r.out, "12_0")) << r.out;
  EXPECT_TRUE(contains(r.out, "(Priority)")) << r.out;
  EXPECT_TRUE(contains(r.out, "20_0")) << r.out;
  EXPECT_FALSE(contains(r.out, "train")) << r.out;

  r = slurm.run({"slurm", "status", "--coordinator", "head:7878", "--format", "json"});
  ASSERT_EQ(r.exit.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u) << r.out;
  EXPECT_EQ(j[0]["job_id"], "12_0");
  EXPECT_EQ(j[0]["state"], "RUNNING");
  EXPECT_EQ(j[0]["where"], "node7");
  EXPECT_EQ(j[1]["coordinator"], "head:7878");
}

TEST(SlurmCli, CancelEndsWholeArraysOrDrainsRunningWorkers) {
  FakeSlurm slurm(temp_dir());
  CommandOutput r = slurm.run({"slurm", "cancel", "--coordinator", "head:7878"});
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(slurp(slurm.dir + "/scancel.log"), "12\n");
  fs::remove(slurm.dir + "/scancel.log");

  r = slurm.run({"slurm", "cancel", "--drain"});
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(slurp(slurm.dir + "/scancel.log"), "--batch --signal=TERM 12_0 20_0\n12_1\n");
  fs::remove(slurm.dir + "/scancel.log");

  r = slurm.run({"slurm", "cancel", "12_1"});
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(slurp(slurm.dir + "/scancel.log"), "12_1\n");
  fs::remove(slurm.dir + "/scancel.log");

  // Not gridbench's: refused, nothing cancelled.
  r = slurm.run({"slurm", "cancel", "13"});
  EXPECT_EQ(r.exit.code, 2);
  EXPECT_TRUE(contains(r.err, "13: not a queued gridbench worker array")) << r.err;
  EXPECT_FALSE(fs::exists(slurm.dir + "/scancel.log"));
}

}  // namespace slurm_test
}  // namespace
}  // namespace gb::cli

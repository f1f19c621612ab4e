// coordinator_bench: how fast the coordinator dispatches and records jobs, one job
// per lease against several per lease, side by side in one run.
//
// Each path starts the real coordinator server (gRPC on 127.0.0.1, SQLite store in
// WAL with synchronous=NORMAL) in this process on a fresh database, submits a grid
// of N instant jobs, and runs W simulated workers, each a thread with its own
// channel: RegisterWorker, then until the grid is done
//   one-per-lease: LeaseJob -> CompleteJob (one metric);
//   leases x B:    LeaseJob with max_jobs B -> the B CompleteJob calls sent at once
//                  (asynchronously), which the store group-commits;
//   batched x B:   LeaseJob with max_jobs B -> one CompleteJobs call carrying the B
//                  completions, written in one transaction (the worker daemon's
//                  reports of runs that finished together);
//   paced x B:     the batched path with each worker waiting between its cycles so
//                  that together they offer half the batched path's throughput: the
//                  lease latency of a coordinator that keeps up. The closed-loop
//                  paths run it saturated, where the latency is queueing (Little's
//                  law: 32 workers x B jobs in flight / the throughput).
// Every completion is committed to SQLite before the coordinator acknowledges it.
// Prints, per path, jobs per second leased and completed, p50/p99 lease latency
// (from sending LeaseJob to the reply carrying a job), the process's CPU time over
// the wall time (cores busy: what limits it) and per job (what a loaded machine
// changes least), then the ratios batched/one-per-lease against the issue's
// targets (>= 4x the throughput, p99 < 10 ms). Not a test: it asserts nothing and
// times the machine.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "coordinator/service/service.h"
#include "proto/gridbench.grpc.pb.h"

namespace {

namespace pb = gridbench::v1;
using Clock = std::chrono::steady_clock;

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// A grid of `jobs` sleep jobs (never run: the simulated workers complete them at
// once): `groups` distinct seconds values x repeats.
std::string grid_text(int jobs) {
  const int repeats = std::min(jobs, 1000);
  const int groups = (jobs + repeats - 1) / repeats;
  std::string values;
  for (int i = 0; i < groups; ++i) values += (i ? ", " : "") + std::to_string(i * 1e-6);
  return R"({"name": "bench", "axes": {"seconds": [)" + values + R"(]}, "measure": ["sleep"], "repeats": )" +
         std::to_string(repeats) + "}";
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Config {
  int workers = 32;
  int jobs = 10000;
  int batch = 1;  // LeaseJobRequest.max_jobs; 1: one job per lease
  bool complete_jobs = false;  // one CompleteJobs per lease instead of a CompleteJob per job
  double pace_jobs_per_s = 0;  // > 0: all workers together offer this many jobs/s
  std::string db_path;
  int checkpoint_ms = 50;
};

struct Figures {
  int jobs = 0, leased = 0, completed = 0, refused = 0, calls = 0;
  double secs = 0, cpu_s = 0, p50 = 0, p99 = 0;
  int64_t succeeded_in_store = -1;
  double completed_per_s() const { return completed / secs; }
};

pb::CompleteJobRequest completion(int64_t worker_id, const std::string& name, int64_t run_id) {
  pb::CompleteJobRequest creq;
  creq.set_worker_id(worker_id);
  creq.set_worker_name(name);
  creq.set_run_id(run_id);
  auto* m = creq.add_metrics();
  m->set_name("slept_s");
  m->set_value(0);
  m->set_unit("s");
  creq.set_engine_version("bench");
  return creq;
}

// One path on its own server and database. Error text on stderr and false when the
// server does not start or the grid is refused.
bool run_path(const Config& c, Figures* f) {
  std::filesystem::remove(c.db_path);
  for (const char* suffix : {"-wal", "-shm", ".lock"}) std::filesystem::remove(c.db_path + suffix);
  gb::coord::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.db_path = c.db_path;
  options.service.lease_ms = 30000;
  options.checkpoint_interval_ms = c.checkpoint_ms;
  auto server = gb::coord::CoordinatorServer::start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "coordinator_bench: %s\n", server.message().c_str());
    return false;
  }
  const std::string address = (*server)->address();
  int jobs = c.jobs;
  {
    auto stub = pb::Coordinator::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    pb::SubmitGridRequest req;
    req.set_grid_text(grid_text(jobs));
    req.set_source("bench.json");
    pb::SubmitGridReply reply;
    grpc::ClientContext ctx;
    grpc::Status s = stub->SubmitGrid(&ctx, req, &reply);
    if (!s.ok()) {
      std::fprintf(stderr, "coordinator_bench: submit: %s\n", s.error_message().c_str());
      return false;
    }
    jobs = static_cast<int>(reply.queued());
  }

  std::atomic<int> leased{0}, completed{0}, refused{0}, calls{0};
  std::vector<std::vector<double>> latencies(c.workers);
  const auto start = Clock::now();
  const double cpu0 = cpu_seconds();
  std::vector<std::thread> threads;
  for (int w = 0; w < c.workers; ++w) {
    threads.emplace_back([&, w] {
      grpc::ChannelArguments args;
      args.SetInt("gb_bench_channel", w);  // a distinct channel (and connection) per worker
      auto stub = pb::Coordinator::NewStub(
          grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
      pb::RegisterWorkerRequest reg;
      reg.set_name("bench-" + std::to_string(w));
      reg.set_slots(c.batch);
      auto* dev = reg.add_devices();
      dev->set_kind("cpu");
      dev->set_name("simulated");
      dev->set_memory_bytes(64.0 * (1ull << 30));
      pb::RegisterWorkerReply reg_reply;
      {
        grpc::ClientContext ctx;
        if (!stub->RegisterWorker(&ctx, reg, &reg_reply).ok()) return;
      }
      grpc::CompletionQueue cq;
      // Paced: this worker's cycles (B jobs each) start on a fixed schedule, the
      // workers' schedules spread over one period.
      const auto period = std::chrono::duration<double>(
          c.pace_jobs_per_s > 0 ? c.batch * c.workers / c.pace_jobs_per_s : 0.0);
      auto next_cycle = Clock::now() + std::chrono::duration_cast<Clock::duration>(period * w / c.workers);
      while (completed.load() + refused.load() < jobs) {
        if (c.pace_jobs_per_s > 0) {
          std::this_thread::sleep_until(next_cycle);
          next_cycle += std::chrono::duration_cast<Clock::duration>(period);
        }
        pb::LeaseJobRequest lreq;
        lreq.set_worker_id(reg_reply.worker_id());
        lreq.set_worker_name(reg.name());
        lreq.set_wait_ms(100);
        if (c.batch > 1) lreq.set_max_jobs(c.batch);
        pb::LeaseJobReply lreply;
        grpc::ClientContext lctx;
        auto t0 = Clock::now();
        if (!stub->LeaseJob(&lctx, lreq, &lreply).ok()) continue;
        if (!lreply.has_job()) continue;
        latencies[w].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        calls.fetch_add(1);
        std::vector<int64_t> runs = {lreply.run_id()};
        for (const auto& more : lreply.more()) runs.push_back(more.run_id());
        leased.fetch_add(static_cast<int>(runs.size()));
        if (c.complete_jobs) {
          pb::CompleteJobsRequest breq;
          breq.set_worker_id(reg_reply.worker_id());
          breq.set_worker_name(reg.name());
          for (int64_t run : runs) *breq.add_completions() = completion(reg_reply.worker_id(), reg.name(), run);
          pb::CompleteJobsReply breply;
          grpc::ClientContext bctx;
          const bool sent = stub->CompleteJobs(&bctx, breq, &breply).ok();
          int ok = 0;
          for (const auto& r : breply.results()) ok += r.code() == 0 ? 1 : 0;
          completed.fetch_add(sent ? ok : 0);
          refused.fetch_add(static_cast<int>(runs.size()) - (sent ? ok : 0));
          continue;
        }
        if (runs.size() == 1) {
          pb::CompleteJobReply creply;
          grpc::ClientContext cctx;
          if (stub->CompleteJob(&cctx, completion(reg_reply.worker_id(), reg.name(), runs[0]), &creply).ok())
            completed.fetch_add(1);
          else
            refused.fetch_add(1);
          continue;
        }
        // Every completion in flight at once; each reply comes after its commit.
        struct Call {
          grpc::ClientContext ctx;
          pb::CompleteJobReply reply;
          grpc::Status status;
          std::unique_ptr<grpc::ClientAsyncResponseReader<pb::CompleteJobReply>> reader;
        };
        std::vector<std::unique_ptr<Call>> pending;
        for (int64_t run : runs) {
          auto call = std::make_unique<Call>();
          call->reader = stub->AsyncCompleteJob(&call->ctx, completion(reg_reply.worker_id(), reg.name(), run), &cq);
          call->reader->Finish(&call->reply, &call->status, call.get());
          pending.push_back(std::move(call));
        }
        for (size_t i = 0; i < pending.size(); ++i) {
          void* tag = nullptr;
          bool ok = false;
          if (!cq.Next(&tag, &ok)) break;
          if (ok && static_cast<Call*>(tag)->status.ok()) completed.fetch_add(1);
          else refused.fetch_add(1);
        }
      }
      cq.Shutdown();
      void* tag = nullptr;
      bool ok = false;
      while (cq.Next(&tag, &ok)) {
      }
    });
  }
  for (auto& t : threads) t.join();
  f->secs = std::chrono::duration<double>(Clock::now() - start).count();
  f->cpu_s = cpu_seconds() - cpu0;
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  f->p50 = percentile(all, 50);
  f->p99 = percentile(all, 99);
  f->jobs = jobs;
  f->leased = leased.load();
  f->completed = completed.load();
  f->refused = refused.load();
  f->calls = calls.load();
  if (auto summary = (*server)->store().grid_summary("bench"); summary.ok() && summary->has_value())
    f->succeeded_in_store = (*summary)->by_state.count("succeeded") ? (*summary)->by_state.at("succeeded") : 0;
  (*server)->shutdown(1000);
  return true;
}

void print(const char* name, const Figures& f) {
  std::printf("%-14s %8.0f %8.0f %8.2f %8.2f %9.2f %8.3f %7d %9lld/%d %8d\n", name, f.leased / f.secs,
              f.completed_per_s(), f.p50, f.p99, f.cpu_s / f.secs, 1000.0 * f.cpu_s / std::max(1, f.completed),
              f.calls,
              static_cast<long long>(f.succeeded_in_store), f.jobs, f.refused);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coordinator_bench: jobs/s dispatched and completed, and lease latency, with simulated workers, "
               "one job per lease against several per lease"};
  Config c;
  int batch = 16;
  std::string db_dir;
  app.add_option("--workers", c.workers, "simulated workers (threads, one channel each)")->capture_default_str();
  app.add_option("--jobs", c.jobs, "instant jobs in the grid (rounded up to a multiple of 1000 past 1000)")
      ->capture_default_str();
  app.add_option("--batch", batch, "jobs per lease of the batched path (LeaseJobRequest.max_jobs, at most 64)")
      ->capture_default_str()
      ->check(CLI::Range(2, gb::coord::kMaxJobsPerLease));
  app.add_option("--db-dir", db_dir, "folder for the databases (default: a fresh temporary folder; "
                                     "/dev/shm takes the disk out)");
  c.checkpoint_ms = gb::coord::ServerOptions().checkpoint_interval_ms;
  app.add_option("--checkpoint-interval-ms", c.checkpoint_ms,
                 "background WAL checkpoint interval; 0: SQLite's automatic checkpoints in the writer")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::filesystem::path dir = db_dir.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(db_dir);
  dir /= "gb_bench_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  c.db_path = (dir / "bench.db").string();

  Figures one, leases, batched, paced;
  Config single = c;
  single.batch = 1;
  Config many = c;
  many.batch = batch;
  Config grouped = many;
  grouped.complete_jobs = true;
  if (!run_path(single, &one) || !run_path(many, &leases) || !run_path(grouped, &batched)) return 1;
  Config half = grouped;
  half.pace_jobs_per_s = batched.completed_per_s() / 2;
  if (!run_path(half, &paced)) return 1;

  std::printf("machine: %u hardware threads; %d simulated workers; %d jobs; databases in %s; checkpoints every %d ms\n",
              std::thread::hardware_concurrency(), c.workers, one.jobs, dir.c_str(), c.checkpoint_ms);
  std::printf("%-14s %8s %8s %8s %8s %9s %8s %7s %13s %8s\n", "path", "leased/s", "done/s", "p50 ms", "p99 ms",
              "cpu/wall", "cpu ms/job", "leases", "in store", "refused");
  print("one-per-lease", one);
  print(("leases x" + std::to_string(batch)).c_str(), leases);
  print(("batched x" + std::to_string(batch)).c_str(), batched);
  print(("paced x" + std::to_string(batch)).c_str(), paced);
  std::printf("leases xB: B jobs per LeaseJob, a CompleteJob each; batched xB: B jobs per LeaseJob, one CompleteJobs; "
              "paced xB: batched, the workers offering %.0f jobs/s (half the batched throughput)\n",
              half.pace_jobs_per_s);
  std::printf("throughput ratio batched/one-per-lease: %.2fx (target >= 4x), leases/one-per-lease %.2fx; "
              "CPU per job one-per-lease/batched: %.2fx; p99 lease latency at half load (paced) %.2f ms (ratio to the "
              "10 ms target: %.2f), saturated (batched) %.2f ms\n",
              batched.completed_per_s() / one.completed_per_s(), leases.completed_per_s() / one.completed_per_s(),
              (one.cpu_s / std::max(1, one.completed)) / (batched.cpu_s / std::max(1, batched.completed)),
              paced.p99, paced.p99 / 10.0, batched.p99);
  std::printf("cpu/wall: the process's CPU seconds over wall seconds (%u cores: %.1f is all of them)\n",
              std::thread::hardware_concurrency(), static_cast<double>(std::thread::hardware_concurrency()));
  std::filesystem::remove_all(dir);
  return 0;
}

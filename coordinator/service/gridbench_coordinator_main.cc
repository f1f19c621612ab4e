// gridbench-coordinator: serves grids to gridbench workers over gRPC; all state in
// one SQLite file. The first line on stdout is "listening on HOST:PORT" (the port
// the system chose when --listen asks for port 0); with --metrics-listen the second
// is "metrics on HOST:PORT" (Prometheus' GET /metrics); logs go to stderr. SIGTERM or
// SIGINT shuts it down gracefully (exit 0). Exit codes: 2 invalid usage or
// configuration, or a database another coordinator serves (nothing served, nothing
// created), 1 a runtime error (a port in use, the database). gRPC's own log lines
// go through log_line too.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

#include "coordinator/service/auth.h"
#include "coordinator/service/service.h"
#include "worker/job_spec.h"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

std::mutex g_log_mu;

void log_line(const std::string& line) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
  std::lock_guard lock(g_log_mu);
  std::fprintf(stderr, "%s.%03d gridbench-coordinator: %s\n", stamp, static_cast<int>(ms), line.c_str());
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
  gb::coord::ServerOptions options;
  if (const char* db = std::getenv("GRIDBENCH_DB"); db != nullptr && *db != '\0') options.db_path = db;
  std::string token_file;

  CLI::App app{
      "gridbench-coordinator: serves grids to gridbench workers over gRPC (health service and server "
      "reflection on); every grid, job, lease and result lives in the SQLite file --db, so a restart "
      "resumes every grid. Prints \"listening on HOST:PORT\" as its first line (and \"metrics on HOST:PORT\" "
      "with --metrics-listen); SIGTERM/SIGINT stop it gracefully. One coordinator per database (it locks "
      "DB.lock). Exit codes: 0 stopped by a signal, 1 a runtime error (port in use, database), 2 invalid "
      "flags or a database another coordinator serves."};
  app.add_option("--listen", options.listen,
                 "address to serve on: HOST:PORT, [IPV6]:PORT or unix:PATH; port 0 picks a free port. A "
                 "non-loopback address needs a token (or --insecure)")
      ->capture_default_str();
  app.add_option("--db", options.db_path, "the SQLite database (default $GRIDBENCH_DB or gridbench.db)")
      ->capture_default_str();
  app.add_option("--token-file", token_file,
                 "file holding the shared token every rpc must carry (\"authorization: Bearer TOKEN\"); "
                 "default: $GRIDBENCH_TOKEN; none: no authentication");
  app.add_option("--tls-cert", options.tls.cert, "PEM server certificate (chain); needs --tls-key");
  app.add_option("--tls-key", options.tls.key, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", options.tls.client_ca,
                 "PEM CA bundle: clients must present a certificate it signed");
  app.add_flag("--insecure", options.insecure, "allow a non-loopback address without a token");
  app.add_option("--metrics-listen", options.metrics_listen,
                 "serve Prometheus metrics (text format, GET /metrics over plain HTTP, no token) on HOST:PORT; "
                 "port 0 picks a free port. Off unless given. They show grid names and counts: bind them where "
                 "only your Prometheus reaches");
  app.add_option("--lease-ms", options.service.lease_ms,
                 "lease duration in ms; workers renew every lease-ms/3, a silent worker's jobs return to "
                 "pending after it, and a worker is 'lost' after 3 x lease-ms")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{86400000}));
  app.add_option("--max-attempts", options.service.max_attempts,
                 "attempts per job before it is failed with its last error (a grid may ask for another)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--job-timeout", options.service.job_timeout_s,
                 "time limit of each job in seconds, enforced by the workers (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  app.set_version_flag("--version", "gridbench-coordinator " + gb::worker::engine_version());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  gb::Result<std::string> token = gb::coord::load_token(token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "gridbench-coordinator: %s\n", token.message().c_str());
    return kExitUsage;
  }
  options.service.token = *token;
  // Configuration errors are usage errors (exit 2), found before anything is opened.
  {
    gb::Result<gb::coord::ListenAddress> address = gb::coord::parse_listen_address(options.listen);
    gb::Status policy = address.ok() ? gb::coord::check_bind_policy(*address, !token->empty(), options.insecure)
                                     : gb::Status(address.error());
    if (policy.ok()) policy = gb::coord::make_server_credentials(options.tls).status();
    if (policy.ok() && !options.metrics_listen.empty()) {
      gb::Result<gb::coord::ListenAddress> metrics = gb::coord::parse_listen_address(options.metrics_listen);
      if (!metrics.ok()) {
        policy = gb::Error{"--metrics-listen: " + metrics.message()};
      } else if (metrics->is_unix()) {
        policy = gb::Error{"--metrics-listen " + options.metrics_listen + ": expected HOST:PORT (Prometheus scrapes TCP)"};
      }
    }
    if (!policy.ok()) {
      std::fprintf(stderr, "gridbench-coordinator: %s\n", policy.message().c_str());
      return kExitUsage;
    }
  }
  options.service.log = log_line;
  gb::coord::route_grpc_logs(log_line);

  // SIGINT/SIGTERM are taken by sigwait below: block them before any thread starts,
  // so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  bool db_busy = false;
  gb::Result<std::unique_ptr<gb::coord::CoordinatorServer>> server =
      gb::coord::CoordinatorServer::start(options, &db_busy);
  if (!server.ok()) {
    std::fprintf(stderr, "gridbench-coordinator: %s\n", server.message().c_str());
    return db_busy ? kExitUsage : kExitRuntime;
  }
  std::printf("listening on %s\n", (*server)->address().c_str());
  if (!options.metrics_listen.empty()) std::printf("metrics on %s\n", (*server)->metrics_address().c_str());
  std::fflush(stdout);
  log_line("serving " + options.db_path + " on " + (*server)->address() + " (lease " +
           std::to_string(options.service.lease_ms) + " ms, max attempts " +
           std::to_string(options.service.max_attempts) + ", token " + (token->empty() ? "off" : "on") + ", TLS " +
           (options.tls.enabled() ? (options.tls.client_ca.empty() ? "on" : "on with client certificates") : "off") +
           (options.metrics_listen.empty() ? "" : ", metrics on http://" + (*server)->metrics_address() + "/metrics") +
           ")");

  int sig = 0;
  sigwait(&signals, &sig);
  log_line(std::string("shutting down (") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ")");
  (*server)->shutdown(2000);
  (*server)->wait();
  server->reset();
  log_line("stopped");
  return 0;
}

// gridbench-worker --coordinator ADDR [--device cuda:N|cpu] [--slots N] [--token-file F]
//                  [--name NAME] [--tls-ca F [--tls-cert F --tls-key F]] [--work-dir DIR]
// The worker daemon (worker/daemon/worker_daemon.h): pulls jobs from a gridbench-coordinator
// and runs each as a child gridbench-job.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>

#include "common/coordinator_address.h"
#include "worker/job_spec.h"
#include "worker/daemon/worker_daemon.h"

namespace {

std::atomic<int> g_signals{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_signal(int) { g_signals.fetch_add(1); }

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  auto end = s.find_last_not_of(ws);
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  gb::worker::WorkerOptions o;
  std::string token_file;
  CLI::App app{
      "gridbench-worker: pulls jobs from a gridbench coordinator and runs each one as a child gridbench-job.\n"
      "The first SIGTERM/SIGINT drains (no new jobs; running ones finish and are reported; exit 0),\n"
      "a second one kills the children and exits 130. Exit 1: a runtime error (refused token, missing\n"
      "device or gridbench-job); 2: bad flags, or a --name or --work-dir another live worker holds.\n"
      "The token is read from --token-file, else $GRIDBENCH_TOKEN.\n"
      "gridbench-job is $GRIDBENCH_JOB, else the one beside gridbench-worker."};
  app.add_option("--coordinator", o.coordinator, "the coordinator's HOST:PORT (HOST alone: port 7878)")
      ->required()
      ->check([](const std::string& v) {
        gb::Result<std::string> t = gb::coordinator_target(v);
        return t.ok() ? std::string() : t.message();
      });
  app.add_option("--device", o.device, "the device whose jobs it runs: cpu or cuda:N")
      ->capture_default_str()
      ->check([](const std::string& v) {
        gb::Status st = gb::worker::check_device_spec(v);
        return st.ok() ? std::string() : st.message();
      });
  app.add_option("--slots", o.slots, "jobs run at once")->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("--token-file", token_file, "file holding the coordinator's token")->check(CLI::ExistingFile);
  app.add_option("--name", o.name,
                 "worker name, unique per worker process (default HOST:DEVICE, or HOST:DEVICE#2, #3, ... when "
                 "other workers on this host hold it); a name another live worker holds: exit 2");
  auto* ca = app.add_option("--tls-ca", o.tls_ca, "PEM root certificates: connect with TLS")->check(CLI::ExistingFile);
  auto* cert = app.add_option("--tls-cert", o.tls_cert, "PEM client certificate (with --tls-key)")
                   ->check(CLI::ExistingFile)
                   ->needs(ca);
  auto* key = app.add_option("--tls-key", o.tls_key, "PEM client private key (with --tls-cert)")
                  ->check(CLI::ExistingFile)
                  ->needs(ca);
  cert->needs(key);
  key->needs(cert);
  app.add_option("--work-dir", o.work_dir,
                 "where runs keep their files, this worker's alone (default ${TMPDIR:-/tmp}/gridbench-worker-NAME); "
                 "one another live worker holds: exit 2");
  app.add_option("--cache-dir", o.cache_dir,
                 "the quantized-model cache the jobs share (engine/weights/quantized_cache.h): a (model, weight "
                 "format) quantized once is saved there and loaded by later jobs; LRU within "
                 "$GRIDBENCH_QUANT_CACHE_GIB (default 20) GiB (default $GRIDBENCH_QUANT_CACHE, else WORK_DIR/quant-cache)");
  app.add_option("--lease-wait-ms", o.lease_wait_ms, "long-poll bound of a lease request")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the reconnect backoff's jitter (0: from the clock)");
  app.add_flag("--no-measure", [&](int64_t) { o.measure = false; }, "do not measure copy bandwidth at registration");
  app.set_version_flag("--version", "gridbench-worker " + gb::worker::engine_version());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : gb::worker::kWorkerUsage;
  }

  o.coordinator = *gb::coordinator_target(o.coordinator);  // checked above
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    o.token = trim(text);
    if (!in || o.token.empty()) {
      std::fprintf(stderr, "gridbench-worker: --token-file %s: empty or unreadable\n", token_file.c_str());
      return gb::worker::kWorkerUsage;
    }
  } else if (const char* env = std::getenv("GRIDBENCH_TOKEN"); env != nullptr) {
    o.token = trim(env);
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  gb::worker::WorkerDaemon daemon(o);
  return daemon.run(g_signals);
}

// The `gridbench` subcommands that talk to a gridbench-coordinator over gRPC:
// submit, status, watch, cancel, workers, and results --coordinator.
#pragma once

#include <string>

namespace gb::cli {

struct RemoteFlags {
  std::string coordinator;  // host:port; env GRIDBENCH_COORDINATOR
  std::string token_file;   // else env GRIDBENCH_TOKEN
  std::string tls_ca;       // PEM of the CA that signed the coordinator's certificate
  std::string tls_cert;     // client certificate (when the coordinator asks for one)
  std::string tls_key;
};

int cmd_submit(const RemoteFlags& r, const std::string& grid_path, bool rerun, bool wait, int max_attempts);
int cmd_status(const RemoteFlags& r, const std::string& grid, const std::string& format);
int cmd_watch(const RemoteFlags& r, const std::string& grid);
int cmd_cancel(const RemoteFlags& r, const std::string& grid);
int cmd_workers(const RemoteFlags& r, const std::string& format);
int cmd_remote_results(const RemoteFlags& r, const std::string& grid, const std::string& format);

}  // namespace gb::cli

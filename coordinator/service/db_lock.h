// What gridbench-coordinator claims before it serves, so that it serves alone and
// touches nothing when it cannot: its port (probed before anything is created) and
// its database (an exclusive lock: one coordinator per database file). Also gRPC's
// own log lines, sent to the coordinator's log. Not here: the service itself
// (service.h), the listen syntax and its policy (auth.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "coordinator/service/auth.h"

namespace gb::coord {

// Whether `address` can be bound now: binds a socket to it and closes it again (a
// TCP address with port 0, and a unix socket, always can). An error says the
// address is in use or not available here.
Status probe_listen_address(const ListenAddress& address);

// The exclusive claim of one coordinator on a database file: flock on DB.lock
// beside it (as SQLite's DB-wal and DB-shm), released by the kernel when the
// process ends however it ends. The file holds what the holder wrote
// ("pid P on HOST, serving ADDRESS"); the file itself stays.
class DbLock {
 public:
  // Takes the lock. When another process holds it, the error names the database
  // and the holder, and *busy is set.
  static Result<std::unique_ptr<DbLock>> acquire(const std::string& db_path, bool* busy = nullptr);
  ~DbLock();
  DbLock(const DbLock&) = delete;
  DbLock& operator=(const DbLock&) = delete;

  const std::string& path() const { return path_; }
  // Replaces the description of the holder ("pid P on HOST" is always there).
  Status describe(const std::string& what);

 private:
  DbLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// Sends every gRPC log line (its internal gpr_log calls: a port it cannot bind, a
// connection it drops) to `log` as "grpc ERROR|INFO|DEBUG: MESSAGE" instead of
// gRPC's own format on stderr. Process-wide; call before gRPC starts.
void route_grpc_logs(std::function<void(const std::string&)> log);

}  // namespace gb::coord

// The coordinator's port probe, database lock and gRPC log routing (db_lock.h).
#include "coordinator/service/db_lock.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpc/support/log.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "common/subprocess.h"

namespace gb::coord {

Status probe_listen_address(const ListenAddress& address) {
  if (address.is_unix() || address.port == 0) return Status::Ok();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  const int rc = getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) return Error{"cannot listen on " + address.display(address.port) + ": " + gai_strerror(rc)};
  std::string why;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as gRPC binds
    const bool bound = bind(fd, a->ai_addr, a->ai_addrlen) == 0;
    if (!bound) why = std::strerror(errno);
    close(fd);
    if (bound) {
      freeaddrinfo(found);
      return Status::Ok();
    }
  }
  freeaddrinfo(found);
  return Error{"cannot listen on " + address.display(address.port) + ": " + why +
               " (another coordinator there? give another --listen port, or 0 for a free one)"};
}

Result<std::unique_ptr<DbLock>> DbLock::acquire(const std::string& db_path, bool* busy) {
  if (busy != nullptr) *busy = false;
  const std::string path = db_path + ".lock";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Error{path + ": cannot open the database's lock file: " + std::strerror(errno)};
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    char buf[512];
    const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0) holder.assign(buf, static_cast<size_t>(n));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    close(fd);
    if (err != EWOULDBLOCK) return Error{path + ": cannot lock: " + std::strerror(err)};
    if (busy != nullptr) *busy = true;
    return Error{db_path + ": already served by another gridbench-coordinator (" +
                 (holder.empty() ? std::string("holder unknown") : holder) + ", lock " + path +
                 "); one coordinator per database: stop it first, or give another --db"};
  }
  std::unique_ptr<DbLock> lock(new DbLock(fd, path));
  GB_RETURN_IF_ERROR(lock->describe(""));
  return lock;
}

DbLock::~DbLock() { close(fd_); }

Status DbLock::describe(const std::string& what) {
  const std::string text = "pid " + std::to_string(getpid()) + " on " + host_name() +
                           (what.empty() ? "" : ", " + what) + "\n";
  if (ftruncate(fd_, 0) != 0 || pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    return Error{path_ + ": cannot write: " + std::strerror(errno)};
  return Status::Ok();
}

namespace {

std::mutex g_grpc_log_mu;
std::function<void(const std::string&)>* g_grpc_log = nullptr;

extern "C" void grpc_log_to_project(gpr_log_func_args* args) {
  std::lock_guard lock(g_grpc_log_mu);
  if (g_grpc_log == nullptr || args == nullptr) return;
  const char* level = args->severity == GPR_LOG_SEVERITY_ERROR  ? "ERROR"
                      : args->severity == GPR_LOG_SEVERITY_INFO ? "INFO"
                                                                : "DEBUG";
  (*g_grpc_log)(std::string("grpc ") + level + ": " + (args->message != nullptr ? args->message : ""));
}

}  // namespace

void route_grpc_logs(std::function<void(const std::string&)> log) {
  {
    std::lock_guard lock(g_grpc_log_mu);
    delete g_grpc_log;
    g_grpc_log = log ? new std::function<void(const std::string&)>(std::move(log)) : nullptr;
  }
  gpr_set_log_function(grpc_log_to_project);
}

}  // namespace gb::coord

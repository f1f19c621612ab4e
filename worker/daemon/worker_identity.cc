// A worker process's own name and work directory on this host
// (claim_worker_identity in worker_daemon.h). Not here: what the coordinator does
// with the name (coordinator/service/service.cc refuses a second live registration
// from another host), the runs kept in the directory (job_children.cc).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "worker/daemon/worker_daemon.h"
#include "worker/daemon/worker_daemon_util.h"

namespace gb::worker {
namespace {

constexpr int kMaxSameHost = 256;  // HOST:DEVICE, HOST:DEVICE#2 ... #256

struct Hold {
  int socket_fd = -1;
  int lock_fd = -1;
  ~Hold() {
    if (lock_fd >= 0) close(lock_fd);
    if (socket_fd >= 0) close(socket_fd);
  }
};

// Binds the abstract unix socket of `name` at `coordinator`: the fd, -1 when another
// live process holds it, or an error. Names are per coordinator (the coordinator
// keeps its workers by name), so the key holds both.
Result<int> claim_name(const std::string& name, const std::string& coordinator) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{std::string("cannot create a unix socket to claim the worker name: ") + std::strerror(errno)};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Abstract namespace: sun_path starts with a NUL; long keys are hashed to fit.
  std::string key = "gridbench-worker " + name + " @" + coordinator;
  if (key.size() > sizeof(addr.sun_path) - 1) key = "gridbench-worker #" + std::to_string(std::hash<std::string>{}(key));
  std::memcpy(addr.sun_path + 1, key.data(), key.size());
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + key.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0) return fd;
  const int err = errno;
  close(fd);
  if (err == EADDRINUSE) return -1;
  return Error{"cannot claim the worker name " + name + ": " + std::strerror(err)};
}

// Locks WORK_DIR/worker.lock: the fd, -1 when another live process holds it (then
// *holder says who), or an error.
Result<int> lock_work_dir(const fs::path& dir, std::string* holder) {
  std::error_code ec;
  fs::create_directories(dir / "runs", ec);
  if (ec) return Error{(dir / "runs").string() + ": cannot create: " + ec.message()};
  const fs::path lock = dir / "worker.lock";
  const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Error{lock.string() + ": cannot open: " + std::strerror(errno)};
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
  const int err = errno;
  close(fd);
  if (err != EWOULDBLOCK) return Error{lock.string() + ": cannot lock: " + std::strerror(err)};
  Result<std::string> text = read_text_file(lock.string());
  *holder = text.ok() ? *text : "";
  while (!holder->empty() && (holder->back() == '\n' || holder->back() == ' ')) holder->pop_back();
  return -1;
}

std::string default_work_dir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  return (fs::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") / ("gridbench-worker-" + sanitize(name))).string();
}

}  // namespace

Result<WorkerIdentity> claim_worker_identity(const std::string& name, const std::string& device,
                                             const std::string& coordinator, const std::string& work_dir,
                                             bool* in_use) {
  if (in_use != nullptr) *in_use = false;
  auto conflict = [&](const std::string& what) -> Result<WorkerIdentity> {
    if (in_use != nullptr) *in_use = true;
    return Error{what};
  };
  // Candidates: the name given, or HOST:DEVICE, HOST:DEVICE#2, ... of which the
  // first whose name and (default) work directory are free is taken.
  const std::string base = host_name() + ":" + device;
  const int candidates = name.empty() ? kMaxSameHost : 1;
  for (int i = 1; i <= candidates; ++i) {
    const std::string candidate = !name.empty() ? name : i == 1 ? base : base + "#" + std::to_string(i);
    auto hold = std::make_shared<Hold>();
    Result<int> sock = claim_name(candidate, coordinator);
    if (!sock.ok()) return sock.error();
    if (*sock < 0) {
      if (!name.empty()) {
        return conflict("--name " + name + ": another gridbench-worker on this host runs under this name for " +
                        coordinator + "; give each worker its own --name (or none: each then gets HOST:DEVICE, "
                        "HOST:DEVICE#2, ...)");
      }
      continue;
    }
    hold->socket_fd = *sock;
    WorkerIdentity id;
    id.name = candidate;
    id.work_dir = work_dir.empty() ? default_work_dir(candidate) : work_dir;
    std::string holder;
    Result<int> lock = lock_work_dir(id.work_dir, &holder);
    if (!lock.ok()) return lock.error();
    if (*lock < 0) {
      if (name.empty() && work_dir.empty()) continue;  // another worker's default directory: the next name
      return conflict("work directory " + id.work_dir.string() + " is in use by another gridbench-worker" +
                      (holder.empty() ? "" : " (" + holder + ")") + "; give each worker its own --work-dir");
    }
    hold->lock_fd = *lock;
    const std::string me = "pid " + std::to_string(getpid()) + ", worker " + id.name + "\n";
    if (ftruncate(hold->lock_fd, 0) != 0 || pwrite(hold->lock_fd, me.data(), me.size(), 0) < 0)
      return Error{(id.work_dir / "worker.lock").string() + ": cannot write: " + std::strerror(errno)};
    id.hold = std::move(hold);
    return id;
  }
  return conflict(std::to_string(kMaxSameHost) + " workers named " + base + "... run on this host already");
}

}  // namespace gb::worker

// Host memory left to this process (common/host_memory.h).
#include "common/host_memory.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace gb {
namespace {

std::optional<int64_t> read_number(const std::string& path) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word == "max") return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(word.c_str(), &end, 10);
  if (errno != 0 || end == word.c_str() || *end != '\0' || v < 0) return std::nullopt;
  return static_cast<int64_t>(v);
}

// A counter of a cgroup's memory.stat ("inactive_file 1234").
std::optional<int64_t> read_stat(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  long long v = 0;
  while (in >> k >> v)
    if (k == key) return static_cast<int64_t>(v);
  return std::nullopt;
}

// The cgroup v2 path of this process ("0::/user.slice/...") or "" under v1.
std::string cgroup_v2_path() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "";
}

}  // namespace

Result<int64_t> parse_byte_size(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || errno != 0 || !(v >= 0)) return Error{"'" + text + "': expected a byte count such as 24G"};
  std::string suffix(end);
  double scale = 1;
  if (suffix == "" || suffix == "B") scale = 1;
  else if (suffix == "K" || suffix == "KiB") scale = 1024.0;
  else if (suffix == "M" || suffix == "MiB") scale = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "GiB") scale = 1024.0 * 1024 * 1024;
  else if (suffix == "T" || suffix == "TiB") scale = 1024.0 * 1024 * 1024 * 1024;
  else return Error{"'" + text + "': unknown suffix '" + suffix + "' (expected K, M, G or T)"};
  const double bytes = v * scale;
  if (bytes > 9.2e18) return Error{"'" + text + "': more bytes than fit in 63 bits"};
  return static_cast<int64_t>(bytes);
}

std::string format_bytes(double bytes) {
  char buf[48];
  if (bytes >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof(buf), "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  else std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / (1024.0 * 1024));
  return buf;
}

Result<HostMemory> host_memory_available(std::optional<int64_t> limit_bytes) {
  if (limit_bytes) return HostMemory{*limit_bytes, "--memory-limit"};
  if (const char* env = std::getenv(kMemoryLimitEnv); env != nullptr && *env != '\0') {
    Result<int64_t> v = parse_byte_size(env);
    if (!v) return Error{std::string(kMemoryLimitEnv) + ": " + v.message()};
    return HostMemory{*v, kMemoryLimitEnv};
  }
  HostMemory m;
  {
    std::ifstream in("/proc/meminfo");
    for (std::string line; std::getline(in, line);) {
      long long kib = 0;
      if (std::sscanf(line.c_str(), "MemAvailable: %lld kB", &kib) == 1) {
        m.available_bytes = static_cast<int64_t>(kib) * 1024;
        m.source = "MemAvailable";
      }
    }
  }
  if (m.source.empty()) return Error{"/proc/meminfo: no MemAvailable line (cannot tell the free host memory)"};
  std::optional<int64_t> limit, usage;
  std::string where;
  if (const std::string v2 = cgroup_v2_path(); !v2.empty()) {
    const std::string dir = "/sys/fs/cgroup" + (v2 == "/" ? std::string() : v2);
    limit = read_number(dir + "/memory.max");
    usage = read_number(dir + "/memory.current");
    // Inactive page cache is reclaimable: the working set is what counts (as kubelet does).
    if (usage) *usage -= read_stat(dir + "/memory.stat", "inactive_file").value_or(0);
    where = "cgroup memory.max";
  } else {
    limit = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    usage = read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    if (usage) *usage -= read_stat("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file").value_or(0);
    where = "cgroup memory.limit_in_bytes";
  }
  if (limit && *limit < (int64_t{1} << 60)) {
    const int64_t left = *limit - usage.value_or(0);
    if (left < m.available_bytes) {
      m.available_bytes = left < 0 ? 0 : left;
      m.source = where;
    }
  }
  return m;
}

}  // namespace gb

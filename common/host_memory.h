// The memory this process may still take on the host: the lower of the kernel's
// MemAvailable (/proc/meminfo) and its cgroup's limit less the cgroup's usage
// (v2: memory.max - memory.current; v1: memory.limit_in_bytes - memory.usage_in_bytes;
// the usage without its inactive page cache, which the kernel reclaims),
// or a limit the user gives (GRIDBENCH_MEMORY_LIMIT, bytes, or --memory-limit).
// What is read and from where is in `source`, for messages. Not here: device memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace gb {

struct HostMemory {
  int64_t available_bytes = 0;
  std::string source;  // "MemAvailable", "cgroup memory.max", "GRIDBENCH_MEMORY_LIMIT", ...
};

// The environment variable a runner sets to give its jobs a memory limit in bytes.
inline constexpr const char* kMemoryLimitEnv = "GRIDBENCH_MEMORY_LIMIT";

// `limit_bytes` (when given) or GRIDBENCH_MEMORY_LIMIT, else what the host reports.
// Error when nothing could be read (no /proc) or the variable is not a number.
Result<HostMemory> host_memory_available(std::optional<int64_t> limit_bytes = std::nullopt);

// Parses a byte count with an optional binary suffix: "1073741824", "24G", "512M", "2T".
Result<int64_t> parse_byte_size(const std::string& text);

// "24.0 GiB": bytes for messages.
std::string format_bytes(double bytes);

}  // namespace gb

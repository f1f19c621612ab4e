// The address of a gridbench-coordinator as the CLI (--coordinator,
// GRIDBENCH_COORDINATOR) and gridbench-worker take it, made a gRPC target: a host
// without a port gets the coordinator's default port, so that `--coordinator
// localhost` dials the coordinator rather than gRPC's default (443). Not the
// coordinator's own --listen syntax (coordinator/service/auth.h).
#pragma once

#include <string>

#include "common/status.h"

namespace gb {

constexpr int kDefaultCoordinatorPort = 7878;  // gridbench-coordinator --listen's default

// HOST, HOST:PORT, [IPV6] or [IPV6]:PORT -> the same with a port (7878 when none);
// unix:PATH and targets with a scheme ("dns:///host:port") unchanged. Errors name
// the flag's value: an empty host, a port that is not a number from 1 to 65535, an
// IPv6 address without brackets.
Result<std::string> coordinator_target(const std::string& address);

}  // namespace gb

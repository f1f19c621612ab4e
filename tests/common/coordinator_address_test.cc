// Coordinator addresses get the coordinator's port when they name none (issue 15:
// `--coordinator localhost` dialled gRPC's default, 443).
#include "common/coordinator_address.h"

#include <gtest/gtest.h>

namespace gb {
namespace {

TEST(CoordinatorTarget, AHostWithoutAPortGetsTheCoordinatorsPort) {
  EXPECT_EQ(kDefaultCoordinatorPort, 7878);
  EXPECT_EQ(coordinator_target("localhost").value(), "localhost:7878");
  EXPECT_EQ(coordinator_target("gpu-host.example").value(), "gpu-host.example:7878");
  EXPECT_EQ(coordinator_target("10.0.0.7").value(), "10.0.0.7:7878");
  EXPECT_EQ(coordinator_target("[::1]").value(), "[::1]:7878");
}

TEST(CoordinatorTarget, GivenPortsAndOtherTargetsStayAsTheyAre) {
  EXPECT_EQ(coordinator_target("localhost:9000").value(), "localhost:9000");
  EXPECT_EQ(coordinator_target("[::1]:9000").value(), "[::1]:9000");
  EXPECT_EQ(coordinator_target("unix:/run/gridbench.sock").value(), "unix:/run/gridbench.sock");
  EXPECT_EQ(coordinator_target("dns:///gpu-host:7000").value(), "dns:///gpu-host:7000");
}

TEST(CoordinatorTarget, BadAddressesSayWhatIsExpected) {
  for (const char* bad : {"", "host:", "host:0", "host:99999", "host:http", ":7878", "::1", "[::1", "[]:1", "[::1]x"}) {
    Result<std::string> t = coordinator_target(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_NE(t.message().find("expected HOST, HOST:PORT or [IPV6]:PORT"), std::string::npos) << t.message();
  }
}

}  // namespace
}  // namespace gb

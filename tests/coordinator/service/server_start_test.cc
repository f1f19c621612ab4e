// How gridbench's coordinator server starts (issue 15): one coordinator per
// database (a second one is refused, naming the first), and a port that is taken
// is found before anything is created.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include <grpc/grpc.h>
#include <grpc/support/log.h>

#include "coordinator/service/db_lock.h"
#include "tests/coordinator/service/service_fixture.h"

namespace gb::coord {
namespace {

using namespace service_testing;

TEST_F(ServiceTest, ASecondCoordinatorOnTheSameDatabaseIsRefusedNamingTheFirst) {
  start();
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = db_;
  bool busy = false;
  auto second = CoordinatorServer::start(o, &busy);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(busy);
  EXPECT_NE(second.message().find(db_ + ": already served by another gridbench-coordinator (pid " +
                                  std::to_string(getpid())),
            std::string::npos)
      << second.message();
  EXPECT_NE(second.message().find("serving " + server_->address()), std::string::npos) << second.message();
  // The first one is unaffected; once it stops, the database is free again.
  submit();
  stop();
  auto third = CoordinatorServer::start(o, &busy);
  ASSERT_TRUE(third.ok()) << third.message();
  EXPECT_FALSE(busy);
}

TEST_F(ServiceTest, ATakenPortIsFoundBeforeTheDatabaseIsCreated) {
  // Hold a port.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);

  ServerOptions o;
  o.listen = "127.0.0.1:" + std::to_string(port);
  o.db_path = (dir_ / "never.db").string();
  bool busy = true;
  auto server = CoordinatorServer::start(o, &busy);
  close(fd);
  ASSERT_FALSE(server.ok());
  EXPECT_FALSE(busy);
  EXPECT_NE(server.message().find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << server.message();
  EXPECT_FALSE(fs::exists(o.db_path));
  EXPECT_FALSE(fs::exists(o.db_path + ".lock"));
}

// gRPC's own log lines (gpr_log) reach the coordinator's logger, one line each
// with the severity, instead of gRPC's format on stderr.
TEST(GrpcLogs, GoThroughTheProjectsLogger) {
  std::vector<std::string> lines;
  route_grpc_logs([&](const std::string& line) { lines.push_back(line); });
  grpc_init();  // gRPC logs nothing before it is initialized; initializing keeps the function
  gpr_log(GPR_ERROR, "could not bind %s", "127.0.0.1:1");
  route_grpc_logs([](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  grpc_shutdown();
  ASSERT_GE(lines.size(), 1u);
  EXPECT_EQ(lines[0], "grpc ERROR: could not bind 127.0.0.1:1");
}

TEST(DbLock, HeldUntilReleasedAndDescribesItsHolder) {
  const std::string db = (fs::temp_directory_path() / ("gb_dblock_" + std::to_string(getpid()) + ".db")).string();
  {
    auto first = DbLock::acquire(db);
    ASSERT_TRUE(first.ok()) << first.message();
    ASSERT_TRUE((*first)->describe("serving 127.0.0.1:1").ok());
    bool busy = false;
    auto second = DbLock::acquire(db, &busy);
    ASSERT_FALSE(second.ok());
    EXPECT_TRUE(busy);
    EXPECT_NE(second.message().find("serving 127.0.0.1:1"), std::string::npos) << second.message();
  }
  auto again = DbLock::acquire(db);
  EXPECT_TRUE(again.ok());
  again = Error{"released"};
  fs::remove(db + ".lock");
}

}  // namespace
}  // namespace gb::coord

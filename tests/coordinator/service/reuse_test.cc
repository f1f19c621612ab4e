// SubmitGrid's reuse rule (issue 10): the coordinator reuses a finished measured job
// only when its result run came from the coordinator's own build id and from a
// device class (device_json kind + name) of a registered worker; otherwise the job
// runs again.
#include <gtest/gtest.h>

#include "tests/coordinator/service/service_fixture.h"
#include "worker/job_spec.h"

namespace gb::coord {
namespace {

using namespace service_testing;

void exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << sql << ": " << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

constexpr const char* kOne = R"({"name": "one", "axes": {"seconds": [0]}, "measure": ["sleep"]})";

TEST_F(ServiceTest, MeasuredJobIsReusedOnlyFromTheCoordinatorsBuildAndAKnownDevice) {
  start();
  EXPECT_EQ(submit(kOne, "one.json").queued(), 1);
  register_worker("w1");  // cpu "Test CPU"
  pb::LeaseJobReply l = lease("w1");
  ASSERT_GT(l.run_id(), 0);
  pb::CompleteJobReply c;
  ASSERT_TRUE(complete("w1", l.run_id(), &c).ok());  // engine_version "test"

  // Built by "test", not by this coordinator's build: runs again.
  pb::SubmitGridReply again = submit(kOne, "one.json");
  EXPECT_EQ(again.reused(), 0);
  EXPECT_EQ(again.queued(), 1);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'"), 1);  // the old run stays

  // Run again, then as if by the coordinator's build on the registered worker's
  // device: reused.
  l = lease("w1");
  ASSERT_GT(l.run_id(), 0);
  ASSERT_TRUE(complete("w1", l.run_id(), &c).ok());
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'"), 2);
  exec_sql(db_, "UPDATE runs SET engine_version = '" + worker::engine_version() +
                    "', device_json = '{\"kind\": \"cpu\", \"name\": \"Test CPU\"}'");
  EXPECT_EQ(submit(kOne, "one.json").reused(), 1);

  // A device class no registered worker has: runs again.
  exec_sql(db_, "UPDATE runs SET device_json = '{\"kind\": \"cuda\", \"name\": \"Test CPU\"}'");
  EXPECT_EQ(submit(kOne, "one.json").reused(), 0);
}

}  // namespace
}  // namespace gb::coord

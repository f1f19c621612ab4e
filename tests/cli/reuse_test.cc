// `gridbench run` reuses a finished measured job only from the same engine build on a
// device class this machine has (issue 10): a stored run of another build id or of
// another device runs again, both runs stay in the database and the report shows
// the newest. The build id is the one `gridbench --version` prints.
#include <sqlite3.h>

#include <string>

#include <gtest/gtest.h>

#include "tests/cli/cli_helpers.h"

namespace gb {
namespace {

using namespace cli_testing;

void exec_sql(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << sql << ": " << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

TEST(CliReuse, MeasuredJobRerunsUnderAnotherBuildOrDevice) {
  std::string d = temp_dir();
  write_file(d + "/g.json", R"({"name": "reuse", "axes": {"weight_format": ["int8-tensor"], "shape": ["16x512"]},
    "measure": ["quant_error"]})");
  const std::string db = d + "/gb.db";
  const std::vector<std::string> run = {"run", d + "/g.json", "--db", db, "--out", d + "/out"};
  Output o = gridbench(d, run);
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("1 jobs, 0 reused, 1 run here"), std::string::npos) << o.out;

  // The run records the build id that --version prints (not the bare version).
  Output v = gridbench(d, {"--version"});
  ASSERT_EQ(v.code, 0);
  std::string build = v.out.substr(std::string("gridbench ").size());
  while (!build.empty() && (build.back() == '\n' || build.back() == ' ')) build.pop_back();
  EXPECT_NE(build.find('+'), std::string::npos) << build;
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE engine_version = '" + build + "'"), 1) << build;

  // Same build, same machine: reused, no new run.
  o = gridbench(d, run);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("1 jobs, 1 reused, 0 run here"), std::string::npos) << o.out;
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs"), 1);

  // A result of another build (and a value that marks it): runs again, both kept,
  // and the report shows the new one.
  // (`results` is a view: the values are written in results_data's arrays.)
  exec_sql(db, "UPDATE runs SET engine_version = '0.0.1+old' ; "
               "UPDATE results_data SET metrics = (SELECT json_group_array(json_set(m.value, '$[1]', 42.5)) "
               "FROM json_each(results_data.metrics) m)");
  o = gridbench(d, run);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("1 jobs, 0 reused, 1 run here"), std::string::npos) << o.out;
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'"), 2);
  EXPECT_EQ(query_int(db, "SELECT COUNT(DISTINCT run_id) FROM results WHERE value = 42.5"), 1);  // the old run kept
  Output csv = gridbench(d, {"results", "reuse", "--db", db, "--format", "csv"});
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_EQ(csv.out.find("42.5"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find("0.0"), std::string::npos) << csv.out;

  // A result from another device class (same build): runs again.
  exec_sql(db, "UPDATE runs SET device_json = json_set(device_json, '$.name', 'Some Other CPU')");
  o = gridbench(d, run);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("1 jobs, 0 reused, 1 run here"), std::string::npos) << o.out;
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'"), 3);
  o = gridbench(d, run);
  EXPECT_NE(o.out.find("1 jobs, 1 reused, 0 run here"), std::string::npos) << o.out;
}

}  // namespace
}  // namespace gb

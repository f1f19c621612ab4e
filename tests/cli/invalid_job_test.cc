// A job that cannot run as given ends invalid at once, without its other attempts
// (gridbench-job exit 5, RESULT.json status invalid): here an unset ${VAR} and a
// file missing on the machine that runs it. Crashes and timeouts are still retried
// (tests/cli/cli_test.cc, FailingJobIsRecordedWithItsError).
#include <string>
#include <vector>

#include "tests/cli/cli_helpers.h"

namespace gb::cli_testing {
namespace {

TEST(CliInvalidJob, FailsAtOnceWithoutRetries) {
  const std::string d = temp_dir();
  write_file(d + "/g.json", R"({"name": "inv", "axes": {"dataset": ["text:${GB_TEST_UNSET_VAR}/a.txt",
    "text:${GB_TEST_DATA_DIR}/missing.txt"]},
    "fixed": {"model": "synthetic:gpt2", "context": 16, "chunks": 1}, "measure": ["ppl"]})");
  Output o = run_program(d, "gridbench", {"run", d + "/g.json", "--db", d + "/gb.db", "--out", d + "/out",
                                          "--max-attempts", "3"},
                         {"GB_TEST_DATA_DIR=" + d + "/nowhere"});
  EXPECT_EQ(o.code, 1) << o.out << o.err;
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs WHERE state = 'invalid' AND attempts = 1"), 2) << o.err;
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM runs WHERE state = 'invalid'"), 2);
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM runs"), 2);
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs WHERE error LIKE "
                                    "'$.params.dataset: ${GB_TEST_UNSET_VAR} is not set in the environment%'"),
            1);
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs WHERE error LIKE '%does not exist on this machine%'"),
            1);
  EXPECT_NE(o.out.find("(0 succeeded, 0 failed, 0 oom, 2 invalid, 0 timeout)"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("2 jobs cannot run as given (invalid: not retried)"), std::string::npos) << o.out;
  EXPECT_EQ(o.err.find("retry"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace gb::cli_testing

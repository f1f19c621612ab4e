// MMLU directories: the bundled sample (tests/data/datasets/mmlu: subjects across
// dev/val/test, quoted newlines and doubled quotes), the subject's prompt text, and
// the errors of malformed rows and layouts.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/jobs/datasets/mmlu.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
const std::string kMmlu = std::string(GB_SOURCE_DIR) + "/tests/data/datasets/mmlu";

TEST(Mmlu, ReadsTheSampleDirectory) {
  Result<std::vector<McSubject>> r = load_mmlu(kMmlu);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->size(), 2u);
  const McSubject& optics = (*r)[0];
  EXPECT_EQ(optics.name, "optics");
  EXPECT_EQ(optics.dev.size(), 2u);
  EXPECT_EQ(optics.val.size(), 1u);
  ASSERT_EQ(optics.test.size(), 3u);
  const McQuestion& q = optics.test[1];
  EXPECT_EQ(q.question, "Newton wrote:\n\"The Rays of Light are Bodies\"; which book holds it?");
  EXPECT_EQ(q.choices[1], "Opticks");
  EXPECT_EQ(q.choices[3], "A book, \"untitled\"");
  EXPECT_EQ(q.answer, 1);
  EXPECT_EQ(q.line, 2u);
  EXPECT_EQ(optics.test[2].line, 4u);  // after the quoted newline
  EXPECT_EQ(optics.test[2].answer, 2);
  const McSubject& scripture = (*r)[1];
  EXPECT_EQ(scripture.name, "scripture");
  EXPECT_TRUE(scripture.val.empty());
  EXPECT_EQ(scripture.test.size(), 2u);
  EXPECT_EQ(&scripture.split("test"), &scripture.test);

  Result<std::vector<std::string>> files = mmlu_files(kMmlu);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(*files, (std::vector<std::string>{"dev/optics_dev.csv", "dev/scripture_dev.csv", "val/optics_val.csv",
                                              "test/optics_test.csv", "test/scripture_test.csv"}));
}

TEST(Mmlu, SubjectTextAsTheOriginalHarness) {
  EXPECT_EQ(mmlu_subject_text("abstract_algebra"), " abstract algebra");
  EXPECT_EQ(mmlu_subject_text("virology"), " virology");
  EXPECT_EQ(mmlu_subject_text("high_school_us_history"), " high school us history");
}

TEST(Mmlu, ErrorsNameTheFileAndLine) {
  test_support::TempDir d;
  fs::create_directories(d.path() / "test");
  auto expect = [&](const std::string& csv, const std::string& what) {
    const std::string f = d.write("test/s_test.csv", csv);
    Result<std::vector<McSubject>> r = load_mmlu(d.str());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.message().rfind(f + ":", 0), 0u) << r.message();
    EXPECT_NE(r.message().find(what), std::string::npos) << r.message();
  };
  expect("q,a,b,c,d,A\nq,a,b,c,A\n", ":2: expected 6 fields (question, A, B, C, D, answer), got 5");
  expect("q,a,b,c,d,E\n", ":1: expected the answer A, B, C or D in field 6, got \"E\"");
  expect("\"q,a,b,c,d,A\n", ":1: a quoted field (field 1) is never closed");

  Result<std::vector<McSubject>> none = load_mmlu(d.file("absent"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.message().find("no such directory"), std::string::npos);
  test_support::TempDir empty;
  fs::create_directories(empty.path() / "test");
  Result<std::vector<std::string>> no_csv = mmlu_files(empty.str());
  ASSERT_FALSE(no_csv.ok());
  EXPECT_NE(no_csv.message().find("no dev/, val/ or test/ directory with a .csv file"), std::string::npos);
}

}  // namespace
}  // namespace gb::engine

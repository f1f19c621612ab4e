// The RFC 4180 reader: quoting (commas, line breaks and doubled quotes inside
// quotes), CRLF, empty fields and lines, and the errors FILE:LINE of malformed files.
#include <gtest/gtest.h>

#include "engine/jobs/datasets/csv_reader.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {
namespace csv_reader_test {

std::vector<CsvRecord> ok(std::string_view text) {
  Result<std::vector<CsvRecord>> r = parse_csv(text, "x.csv");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
  return r.ok() ? *r : std::vector<CsvRecord>{};
}

void expect_error(std::string_view text, const std::string& what) {
  Result<std::vector<CsvRecord>> r = parse_csv(text, "x.csv");
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.message().rfind(what, 0), 0u) << r.message() << "\n  expected to start with: " << what;
}

using Fields = std::vector<std::string>;

TEST(CsvReader, PlainRecordsLfAndCrlf) {
  const auto r = ok("a,b,c\r\nd,e,f\ng,h,i");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].fields, (Fields{"a", "b", "c"}));
  EXPECT_EQ(r[1].fields, (Fields{"d", "e", "f"}));
  EXPECT_EQ(r[2].fields, (Fields{"g", "h", "i"}));  // no line break at the end
  EXPECT_EQ(r[2].line, 3u);
  // A lone CR is text; spaces are kept.
  EXPECT_EQ(ok("a\rb , c \n")[0].fields, (Fields{"a\rb ", " c "}));
}

TEST(CsvReader, QuotedFieldsHoldCommasNewlinesAndDoubledQuotes) {
  const auto r = ok("\"x, y\",\"line 1\nline 2\r\nline 3\",\"say \"\"hi\"\"\"\nnext,\"\",\"\"\"\"\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].fields, (Fields{"x, y", "line 1\nline 2\r\nline 3", "say \"hi\""}));
  EXPECT_EQ(r[1].fields, (Fields{"next", "", "\""}));
  EXPECT_EQ(r[1].line, 4u);  // the quoted line breaks count
}

TEST(CsvReader, EmptyFieldsLinesAndBom) {
  const auto r = ok("\xEF\xBB\xBF,a,\n\n\r\n,\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].fields, (Fields{"", "a", ""}));
  EXPECT_EQ(r[1].fields, (Fields{"", ""}));
  EXPECT_EQ(r[1].line, 4u);
  EXPECT_TRUE(ok("").empty());
  EXPECT_TRUE(ok("\n\n").empty());
}

TEST(CsvReader, MalformedFilesSayFileLineWhat) {
  expect_error("a,b\nc,\"open\nstill open", "x.csv:2: a quoted field (field 2) is never closed");
  expect_error("a,b\nc,d\"e\n", "x.csv:2: a double quote inside unquoted field 2");
  expect_error("ok\n\"q\"x,y\n", "x.csv:2: text after the closing quote of field 1");
  expect_error("\"multi\nline\" z\n", "x.csv:2: text after the closing quote");
}

TEST(CsvReader, ReadsFilesAndNamesThem) {
  test_support::TempDir d;
  const std::string f = d.write("s_test.csv", "q,\"a\"\"\",b\n");
  Result<std::vector<CsvRecord>> r = read_csv_file(f);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)[0].fields, (Fields{"q", "a\"", "b"}));
  Result<std::vector<CsvRecord>> missing = read_csv_file(d.file("none.csv"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("none.csv"), std::string::npos);
  Result<std::vector<CsvRecord>> bad = read_csv_file(d.write("bad.csv", "a\"b\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message().rfind(d.file("bad.csv") + ":1: ", 0), 0u) << bad.message();
}

}  // namespace csv_reader_test
}  // namespace
}  // namespace gb::engine

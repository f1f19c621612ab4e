// Text datasets (text:FILE, jsonl:FILE:FIELD): reading, joining, the spec syntax
// (a ':' in the file name), and errors that name the file, the line and the byte
// offset; the English corpus fixture in tests/data/corpus.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "engine/jobs/dataset.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;

using gb::test_support::TempDir;

std::string load_ok(const std::string& spec) {
  Result<std::string> r = load_text_dataset(spec);
  EXPECT_TRUE(r.ok()) << spec << ": " << (r.ok() ? "" : r.message());
  return r.ok() ? *r : "";
}

// The error of a spec that must fail, checked to contain every part.
void expect_error(const std::string& spec, std::initializer_list<std::string> parts) {
  Result<std::string> r = load_text_dataset(spec);
  ASSERT_FALSE(r.ok()) << spec;
  for (const std::string& p : parts) EXPECT_NE(r.message().find(p), std::string::npos) << r.message() << "\n  missing: " << p;
}

TEST(Dataset, ParsesSpecs) {
  Result<DatasetSpec> t = parse_dataset_spec("text:/data/wiki.test.raw");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, DatasetSpec::Kind::kText);
  EXPECT_EQ(t->file, "/data/wiki.test.raw");
  Result<DatasetSpec> j = parse_dataset_spec("jsonl:/data/a:b/pg19.jsonl:text");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->kind, DatasetSpec::Kind::kJsonl);
  EXPECT_EQ(j->file, "/data/a:b/pg19.jsonl");
  EXPECT_EQ(j->field, "text");
  Result<DatasetSpec> colon = parse_dataset_spec("text:C:/x.txt");  // text: keeps every ':'
  ASSERT_TRUE(colon.ok());
  EXPECT_EQ(colon->file, "C:/x.txt");

  for (const char* bad : {"", "wiki.test.raw", "text:", "jsonl:", "jsonl:file.jsonl", "jsonl:file.jsonl:",
                          "jsonl::text", "csv:x.csv:text"}) {
    Result<DatasetSpec> r = parse_dataset_spec(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.message().find("dataset '" + std::string(bad) + "'"), std::string::npos) << r.message();
    EXPECT_FALSE(load_text_dataset(bad).ok());
  }
}

TEST(Dataset, ReadsTextWhole) {
  TempDir d;
  const std::string text = " = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 : <unk> Chronicles\n\r\n\tend";
  EXPECT_EQ(load_ok("text:" + d.write("wiki.test.raw", text)), text);
  // A leading byte order mark is dropped; one elsewhere is text.
  EXPECT_EQ(load_ok("text:" + d.write("bom.txt", "\xEF\xBB\xBFhi \xEF\xBB\xBF")), "hi \xEF\xBB\xBF");
  // NUL bytes are valid UTF-8 and kept.
  EXPECT_EQ(load_ok("text:" + d.write("nul.txt", std::string("a\0b", 3))), std::string("a\0b", 3));
  // A ':' in the file name.
  EXPECT_EQ(load_ok("text:" + d.write("a:b.txt", "colon")), "colon");
}

TEST(Dataset, TextErrors) {
  TempDir d;
  const std::string missing = d.str() + "/missing.txt";
  expect_error("text:" + missing, {missing, "cannot read", "No such file"});
  expect_error("text:" + d.str(), {d.str(), "directory"});
  const std::string empty = d.write("empty.txt", "");
  expect_error("text:" + empty, {empty, "empty dataset"});
  expect_error("text:" + d.write("blank.txt", " \n\n\t\r\n"), {"blank.txt", "empty dataset"});
  // Invalid UTF-8: the byte offset (and line) of the first bad sequence.
  const std::string bad = d.write("bad.txt", "line one\nok \xC3\xA9 then \xC3(");
  expect_error("text:" + bad, {bad, "invalid UTF-8 at byte offset 20", "line 2"});
}

TEST(Dataset, Utf8Validation) {
  EXPECT_FALSE(first_invalid_utf8("").has_value());
  EXPECT_FALSE(first_invalid_utf8("plain ascii\n").has_value());
  EXPECT_FALSE(first_invalid_utf8("\xC3\xA9 \xE4\xB8\x96 \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF").has_value());
  EXPECT_EQ(first_invalid_utf8("ab\x80"), 2u);                  // lone continuation byte
  EXPECT_EQ(first_invalid_utf8("a\xC0\xAF"), 1u);               // overlong '/'
  EXPECT_EQ(first_invalid_utf8("a\xC1\xBF"), 1u);               // overlong
  EXPECT_EQ(first_invalid_utf8("\xE0\x80\xAF"), 0u);            // overlong 3-byte
  EXPECT_EQ(first_invalid_utf8("xx\xF0\x80\x80\xAF"), 2u);      // overlong 4-byte
  EXPECT_EQ(first_invalid_utf8("\xED\xA0\x80"), 0u);            // surrogate U+D800
  EXPECT_EQ(first_invalid_utf8("\xF4\x90\x80\x80"), 0u);        // U+110000
  EXPECT_EQ(first_invalid_utf8("\xF5\x80\x80\x80"), 0u);        // F5
  EXPECT_EQ(first_invalid_utf8("\xFF"), 0u);
  EXPECT_EQ(first_invalid_utf8("abc\xE4\xB8"), 3u);             // truncated at the end
  EXPECT_EQ(first_invalid_utf8("\xE4\xB8x"), 0u);               // truncated in the middle
}

TEST(Dataset, JsonlJoinsDocuments) {
  TempDir d;
  const std::string f = d.write("pg19.jsonl",
                                "{\"text\": \"First book.\\nIt ends.\", \"id\": 1}\n"
                                "\n"
                                "   \t\r\n"
                                "{\"id\": 2, \"text\": \"Second \\u00e9 \\ud83d\\ude00\"}\r\n"
                                "{\"text\": \"\", \"id\": 3}\n"
                                "{\"text\": \"Third, no newline at the end.\"}");
  EXPECT_EQ(load_ok("jsonl:" + f + ":text"),
            "First book.\nIt ends.\n\nSecond \xC3\xA9 \xF0\x9F\x98\x80\n\nThird, no newline at the end.");
  // The file name may contain ':'; the field is after the last one.
  const std::string g = d.write("a:b.jsonl", "{\"body\": \"x\"}\n{\"body\": \"y\"}\n");
  EXPECT_EQ(load_ok("jsonl:" + g + ":body"), "x\n\ny");
  // A single document: no separator.
  EXPECT_EQ(load_ok("jsonl:" + d.write("one.jsonl", "{\"t\":\"only\"}\n") + ":t"), "only");
}

TEST(Dataset, JsonlErrorsNameFileAndLine) {
  TempDir d;
  const std::string head = "{\"text\": \"ok\"}\n\n";  // lines 1 and 2 (blank)
  auto case_of = [&](const std::string& name, const std::string& line3) { return d.write(name, head + line3 + "\n"); };

  std::string f = case_of("syntax.jsonl", "{\"text\": \"unterminated}");
  expect_error("jsonl:" + f + ":text", {f, "line 3", "invalid JSON"});
  f = case_of("trailing.jsonl", "{\"text\": \"a\"} {\"text\": \"b\"}");
  expect_error("jsonl:" + f + ":text", {f, "line 3", "invalid JSON"});
  f = case_of("array.jsonl", "[\"text\"]");
  expect_error("jsonl:" + f + ":text", {f, "line 3", "expected a JSON object, got array"});
  f = case_of("missing.jsonl", "{\"body\": \"x\"}");
  expect_error("jsonl:" + f + ":text", {f, "line 3", "no field 'text'"});
  f = case_of("number.jsonl", "{\"text\": 12}");
  expect_error("jsonl:" + f + ":text", {f, "line 3", "field 'text' is number, expected a string"});
  f = case_of("null.jsonl", "{\"text\": null}");
  expect_error("jsonl:" + f + ":text", {f, "line 3", "field 'text' is null"});
  f = case_of("surrogate.jsonl", "{\"text\": \"\\ud800 alone\"}");
  expect_error("jsonl:" + f + ":text", {f, "line 3", "invalid JSON"});
  f = case_of("utf8.jsonl", "{\"text\": \"caf\xC3\"}");
  expect_error("jsonl:" + f + ":text", {f, "line 3", "invalid UTF-8 at byte offset 29"});

  const std::string missing = d.str() + "/nope.jsonl";
  expect_error("jsonl:" + missing + ":text", {missing, "cannot read"});
  f = d.write("empty.jsonl", "");
  expect_error("jsonl:" + f + ":text", {f, "empty dataset"});
  f = d.write("blank.jsonl", "\n  \n\r\n");
  expect_error("jsonl:" + f + ":text", {f, "empty dataset"});
  f = d.write("emptydocs.jsonl", "{\"text\": \"\"}\n{\"text\": \"  \\n\"}\n");
  expect_error("jsonl:" + f + ":text", {f, "empty dataset", "2 lines"});
}

TEST(Dataset, CorpusFixtureIsEnglishUtf8Prose) {
  const std::string path = std::string(GB_SOURCE_DIR) + "/tests/data/corpus/opticks-book1-part1.txt";
  const std::string text = load_ok("text:" + path);
  EXPECT_EQ(text.size(), 150726u);
  EXPECT_NE(text.find("OPTICKS"), std::string::npos);
  EXPECT_NE(text.find("Refrangibility"), std::string::npos);
  EXPECT_NE(text.find("\xC3\xA6"), std::string::npos);  // æ
  EXPECT_EQ(text.find('\r'), std::string::npos);
  size_t words = 0;
  for (size_t i = 0; i < text.size(); ++i)
    words += (std::isalpha(static_cast<unsigned char>(text[i])) && (i == 0 || std::isspace(static_cast<unsigned char>(text[i - 1]))));
  EXPECT_GT(words, 20000u);
}

}  // namespace
}  // namespace gb::engine

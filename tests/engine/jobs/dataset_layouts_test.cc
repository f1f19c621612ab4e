// The dataset layouts by path beyond a single text file: wikitext:FILE (articles
// at " = Title = " headings), pg19:DIR (a book per .txt), jsonl:FILE:PROMPT,ANSWER,
// mmlu:DIR; the bundled samples in tests/data/datasets; which job kind reads which
// layout; and the digests that make a missing or malformed dataset an error before
// any job runs.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/jobs/dataset.h"
#include "engine/jobs/job_inputs.h"
#include "engine/jobs/job_kinds.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
using test_support::TempDir;
const std::string kData = std::string(GB_SOURCE_DIR) + "/tests/data/datasets";

std::vector<Document> docs_ok(const std::string& spec) {
  Result<DatasetSpec> d = parse_dataset_spec(spec);
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.message());
  if (!d) return {};
  Result<std::vector<Document>> r = load_documents(*d);
  EXPECT_TRUE(r.ok()) << spec << ": " << (r.ok() ? "" : r.message());
  return r.ok() ? *r : std::vector<Document>{};
}

TEST(DatasetLayouts, ParsesEveryKind) {
  struct Case {
    const char* spec;
    DatasetSpec::Kind kind;
    const char* file;
  };
  for (const Case& c : {Case{"wikitext:/d/wiki.test.raw", DatasetSpec::Kind::kWikitext, "/d/wiki.test.raw"},
                        Case{"pg19:/d/pg19/test", DatasetSpec::Kind::kPg19, "/d/pg19/test"},
                        Case{"mmlu:/d/mmlu/data", DatasetSpec::Kind::kMmlu, "/d/mmlu/data"}}) {
    Result<DatasetSpec> d = parse_dataset_spec(c.spec);
    ASSERT_TRUE(d.ok()) << c.spec;
    EXPECT_EQ(d->kind, c.kind);
    EXPECT_EQ(d->file, c.file);
    EXPECT_EQ(file_part("dataset", c.spec), c.file);
  }
  Result<DatasetSpec> two = parse_dataset_spec("jsonl:/d/a:b.jsonl:question,answer");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->file, "/d/a:b.jsonl");
  EXPECT_EQ(two->fields, (std::vector<std::string>{"question", "answer"}));
  EXPECT_EQ(two->field, "question");
  for (const char* bad : {"wikitext:", "pg19:", "mmlu:", "jsonl:f.jsonl:a,", "jsonl:f.jsonl:,b", "jsonl:f.jsonl:a,b,c"}) {
    Result<DatasetSpec> r = parse_dataset_spec(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.message().find("dataset '" + std::string(bad) + "'"), std::string::npos) << r.message();
  }
  Result<DatasetSpec> unknown = parse_dataset_spec("csv:x");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("mmlu:DIR"), std::string::npos) << unknown.message();
}

TEST(DatasetLayouts, WikitextSplitsAtArticleHeadingsOnly) {
  EXPECT_TRUE(is_wikitext_article_heading(" = Valkyria Chronicles III = "));
  EXPECT_TRUE(is_wikitext_article_heading(" = Robert Boulter = \r"));
  EXPECT_FALSE(is_wikitext_article_heading(" = = Career = = "));
  EXPECT_FALSE(is_wikitext_article_heading(" = = = 2000 – 2005 = = = "));
  EXPECT_FALSE(is_wikitext_article_heading(" a = b = c "));
  EXPECT_FALSE(is_wikitext_article_heading(" = "));

  const std::string file = kData + "/wikitext/wiki.sample.raw";
  const std::vector<Document> docs = docs_ok("wikitext:" + file);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].name, "Light and Colour");
  EXPECT_EQ(docs[1].name, "The Rainbow");
  EXPECT_EQ(docs[2].name, "Mirrors");
  EXPECT_EQ(docs[0].text.rfind(" \n = Light and Colour = \n", 0), 0u);  // the blank first line joins it
  EXPECT_NE(docs[0].text.find(" = = Refraction = = "), std::string::npos);
  EXPECT_EQ(docs[1].text.rfind(" = The Rainbow = \n", 0), 0u);
  // As text it is the file exactly (what llama.cpp's perplexity reads), the articles' concatenation.
  Result<std::string> text = load_text_dataset("wikitext:" + file);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, docs[0].text + docs[1].text + docs[2].text);
  Result<std::string> raw = load_text_dataset("text:" + file);
  EXPECT_EQ(*text, *raw);

  TempDir d;
  const std::vector<Document> pre = docs_ok("wikitext:" + d.write("p.raw", "intro line\n = A = \n body\n"));
  ASSERT_EQ(pre.size(), 2u);
  EXPECT_EQ(pre[0].name, "(before the first heading)");
  EXPECT_EQ(pre[0].text, "intro line\n");
  EXPECT_EQ(pre[1].text, " = A = \n body\n");
}

TEST(DatasetLayouts, Pg19ReadsEachTxtBookInNameOrder) {
  const std::vector<Document> books = docs_ok("pg19:" + kData + "/pg19");
  ASSERT_EQ(books.size(), 2u);  // README.note is no book
  EXPECT_EQ(books[0].name, "kjv_heldout_excerpt.txt");
  EXPECT_EQ(books[1].name, "opticks_part1.txt");
  EXPECT_EQ(books[1].text.size(), 2000u);
  Result<std::string> text = load_text_dataset("pg19:" + kData + "/pg19");
  ASSERT_TRUE(text.ok()) << text.message();
  EXPECT_EQ(*text, books[0].text + "\n\n" + books[1].text);

  TempDir d;
  Result<std::string> none = load_text_dataset("pg19:" + d.str());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.message().find("no .txt files"), std::string::npos) << none.message();
  Result<std::string> missing = load_text_dataset("pg19:" + d.file("absent"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("no such directory"), std::string::npos);
  d.write("bad.txt", "ok\n\xC3(");
  Result<std::string> bad = load_text_dataset("pg19:" + d.str());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find(d.file("bad.txt") + ": invalid UTF-8 at byte offset 3 (line 2)"), std::string::npos)
      << bad.message();
}

TEST(DatasetLayouts, JsonlPromptAnswerPairs) {
  Result<DatasetSpec> spec = parse_dataset_spec("jsonl:" + kData + "/jsonl/qa.jsonl:prompt,answer");
  ASSERT_TRUE(spec.ok());
  Result<std::vector<PromptAnswer>> r = load_prompt_answers(*spec);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[1].prompt, "Q: Who wrote Opticks?\nA:");
  EXPECT_EQ((*r)[1].answer, "Isaac Newton.");
  EXPECT_EQ((*r)[2].line, 4u);  // after the blank line
  // Two fields are no text, and one field no pairs.
  EXPECT_FALSE(load_text_dataset(*spec).ok());
  Result<DatasetSpec> one = parse_dataset_spec("jsonl:" + kData + "/jsonl/qa.jsonl:prompt");
  EXPECT_FALSE(load_prompt_answers(*one).ok());
  TempDir d;
  Result<DatasetSpec> missing = parse_dataset_spec("jsonl:" + d.write("m.jsonl", "{\"q\": \"x\"}\n") + ":q,a");
  Result<std::vector<PromptAnswer>> e = load_prompt_answers(*missing);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.message().find("line 1: no field 'a'"), std::string::npos) << e.message();
}

TEST(DatasetLayouts, EachKindReadsItsLayout) {
  auto spec = [](const std::string& s) { return *parse_dataset_spec(s); };
  EXPECT_FALSE(dataset_kind_mismatch("ppl", spec("wikitext:f")));
  EXPECT_FALSE(dataset_kind_mismatch("ppl", spec("pg19:d")));
  EXPECT_FALSE(dataset_kind_mismatch("ppl", spec("jsonl:f:text")));
  EXPECT_TRUE(dataset_kind_mismatch("ppl", spec("mmlu:d")));
  EXPECT_TRUE(dataset_kind_mismatch("ppl", spec("jsonl:f:q,a")));
  EXPECT_FALSE(dataset_kind_mismatch("mc_accuracy", spec("mmlu:d")));
  EXPECT_TRUE(dataset_kind_mismatch("mc_accuracy", spec("text:f")));
  EXPECT_FALSE(dataset_kind_mismatch("gen_accuracy", spec("jsonl:f:q,a")));
  EXPECT_TRUE(dataset_kind_mismatch("gen_accuracy", spec("jsonl:f:q")));
  // check_job says so for the whole job (as grid validation and gridbench-job ask it).
  Status s = check_job("ppl", Json{{"model", "synthetic:gpt2"}, {"dataset", "mmlu:" + kData + "/mmlu"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("dataset: ppl reads text"), std::string::npos) << s.message();
  EXPECT_TRUE(check_job("mc_accuracy", Json{{"model", "synthetic:gpt2"}, {"dataset", "mmlu:" + kData + "/mmlu"},
                                            {"mc_mode", "choice_text"}, {"shots", 0}, {"limit", 2}})
                  .ok());
  EXPECT_FALSE(check_job("mc_accuracy", Json{{"model", "synthetic:gpt2"}, {"dataset", "mmlu:d"}, {"mc_mode", "logits"}}).ok());
}

TEST(DatasetLayouts, DigestsCoverADirectorysFilesAndRefuseMissingOrMalformedOnes) {
  TempDir d;
  fs::create_directories(d.path() / "m" / "test");
  fs::create_directories(d.path() / "m" / "dev");
  d.write("m/test/s_test.csv", "q,a,b,c,d,A\n");
  d.write("m/dev/s_dev.csv", "q,a,b,c,d,B\n");
  Result<std::string> a = input_digest("dataset", "mmlu:" + d.file("m"));
  ASSERT_TRUE(a.ok()) << a.message();
  d.write("m/dev/s_dev.csv", "q,a,b,c,d,C\n");  // a changed shot changes the digest
  Result<std::string> b = input_digest("dataset", "mmlu:" + d.file("m"));
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);
  const std::string bad = d.write("m/test/s_test.csv", "q,a,b,c,d,A\nq,a,b\n");
  Result<std::string> malformed = input_digest("dataset", "mmlu:" + d.file("m"));
  ASSERT_FALSE(malformed.ok());
  EXPECT_NE(malformed.message().find(bad + ":2: expected 6 fields"), std::string::npos) << malformed.message();
  EXPECT_FALSE(input_digest("dataset", "mmlu:" + d.file("absent")).ok());
  EXPECT_FALSE(input_digest("dataset", "pg19:" + d.file("absent")).ok());

  Result<std::string> books = input_digest("dataset", "pg19:" + kData + "/pg19");
  ASSERT_TRUE(books.ok()) << books.message();
  fs::create_directories(d.path() / "p");
  d.write("p/one.txt", "a book");
  Result<std::string> p1 = input_digest("dataset", "pg19:" + d.file("p"));
  d.write("p/two.txt", "another");
  Result<std::string> p2 = input_digest("dataset", "pg19:" + d.file("p"));
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_NE(*p1, *p2);  // a book added
  // A one-file dataset's digest is what it always was: the same file as text: and wikitext:.
  const std::string f = kData + "/wikitext/wiki.sample.raw";
  EXPECT_EQ(*input_digest("dataset", "wikitext:" + f), *input_digest("dataset", "text:" + f));
}

}  // namespace
}  // namespace gb::engine

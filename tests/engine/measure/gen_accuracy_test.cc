// gen_accuracy: answer normalisation and gsm8k's final-number extraction on known
// strings, and the kind on the reference model against its greedy continuation
// (transformers', reference_eval.json): a right answer, a wrong one, a number.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "engine/measure/evals/answer_match.h"
#include "engine/measure/measures.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {
namespace gen_accuracy_test {

const std::string kData = std::string(GB_SOURCE_DIR) + "/tests/data";

TEST(AnswerMatch, FinalNumberAsGsm8k) {
  EXPECT_EQ(final_number("3 + 4 = 7 apples.\n#### 7"), "7");
  EXPECT_EQ(final_number("#### 1,234"), "1234");
  EXPECT_EQ(final_number("so 12 then 950."), "950");               // the last number; the period ends the sentence
  EXPECT_EQ(final_number("It costs $1,200.50 in all"), "1200.5");  // '$' and ',' dropped, trailing zero too
  EXPECT_EQ(final_number("#### 4.50"), "4.5");
  EXPECT_EQ(final_number("#### 10.000"), "10");
  EXPECT_EQ(final_number("temperature -3 today"), "-3");
  EXPECT_EQ(final_number("down to -$5"), "-5");
  EXPECT_EQ(final_number("007 agents"), "7");
  EXPECT_EQ(final_number("#### 12\nthen 99"), "12");  // after the last "####", not the text's last number
  EXPECT_EQ(final_number("1,2,3"), "123");            // separators between digits are read as thousands
  EXPECT_EQ(final_number("a, 5"), "5");
  EXPECT_FALSE(final_number("no digits here").has_value());
  EXPECT_FALSE(final_number("").has_value());
  EXPECT_TRUE(number_match("The answer is 950.", "1,200 - 250 = 950\n#### 950"));
  EXPECT_TRUE(number_match("4.5", "#### 4.50"));
  EXPECT_FALSE(number_match("7 or 8", "#### 7"));
  EXPECT_FALSE(number_match("seven", "#### 7"));
}

TEST(AnswerMatch, ExactMatchNormalises) {
  EXPECT_EQ(normalize_answer("  Isaac   Newton. "), "isaac newton");
  EXPECT_EQ(normalize_answer("A\tB\n"), "a b");
  EXPECT_EQ(first_line_answer("\n  \n Violet light\nmore"), "violet light");
  EXPECT_TRUE(exact_match(" isaac newton\nHe wrote", "Isaac Newton."));
  EXPECT_FALSE(exact_match("Isaac", "Isaac Newton."));
  EXPECT_FALSE(exact_match("", "x"));
}

TEST(GenAccuracy, ReferenceModelAgainstItsGreedyContinuation) {
  std::ifstream in(kData + "/reference_model/reference_eval.json");
  const Json greedy = Json::parse(in)["greedy"];
  const std::string text = greedy["generated_text"];  // " of the LORD, and the LORD.\nAnd ..."
  const std::string first_line = text.substr(0, text.find('\n'));
  test_support::TempDir d;
  const std::string prompt = greedy["prompt"];
  const std::string f = d.write("g.jsonl", Json{{"p", prompt}, {"a", first_line}}.dump() + "\n" +
                                               Json{{"p", prompt}, {"a", "of the lord"}}.dump() + "\n");
  const MeasureFn* run = find_measure("gen_accuracy");
  ASSERT_NE(run, nullptr);
  auto metrics = [&](const Json& params) {
    EXPECT_TRUE(check_job("gen_accuracy", params).ok()) << check_job("gen_accuracy", params).message();
    Result<JobOutput> out = (*run)(params, nullptr);
    EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.message());
    std::map<std::string, double> m;
    if (out)
      for (const Metric& x : out->metrics)
        if (x.value) m[x.name] = *x.value;
    return m;
  };
  const std::string model = "hf:" + kData + "/reference_model";
  std::map<std::string, double> m = metrics({{"model", model}, {"dataset", "jsonl:" + f + ":p,a"}, {"max_new_tokens", 24}});
  EXPECT_EQ(m["prompts"], 2);
  EXPECT_DOUBLE_EQ(m["accuracy"], 0.5);  // the first line matches; "of the lord" is only its start
  EXPECT_DOUBLE_EQ(m["accuracy_stderr"], 0.5 / std::sqrt(2.0));
  EXPECT_EQ(m["no_answer"], 0);
  // Generation stops once the first line is complete: at most the tokens to the newline, per prompt.
  EXPECT_LE(m["generated_tokens"], 2 * 24);
  m = metrics({{"model", model}, {"dataset", "jsonl:" + f + ":p,a"}, {"max_new_tokens", 24}, {"limit", 1}});
  EXPECT_EQ(m["prompts"], 1);
  EXPECT_DOUBLE_EQ(m["accuracy"], 1.0);

  // Number matching on the gsm8k-layout sample: the reference model writes no numbers.
  m = metrics({{"model", model}, {"dataset", "jsonl:" + kData + "/datasets/jsonl/arith.jsonl:question,answer"},
               {"answer_match", "number"}, {"max_new_tokens", 8}});
  EXPECT_EQ(m["prompts"], 3);
  EXPECT_LE(m["accuracy"] * 3, 3 - m["no_answer"]);  // a generation without a number is never right
}

}  // namespace gen_accuracy_test
}  // namespace
}  // namespace gb::engine

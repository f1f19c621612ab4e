#include "coordinator/store/codecs/run_metrics.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace gb::coord {
namespace {

TEST(RunMetrics, RoundTripsValuesBitForBitInOrder) {
  const std::vector<engine::Metric> metrics = {{"tok_per_s", 1.0 / 3, "tok/s", ""},
                                               {"tiny", 1e-300, "", ""},
                                               {"big", 1.7976931348623157e308, "B", ""},
                                               {"n", 3.0, "", ""},
                                               {"max_context", std::nullopt, "", "oom"}};
  const std::string text = encode_run_metrics(metrics);
  EXPECT_EQ(text.substr(0, 32), "[[\"tok_per_s\",0.3333333333333333");
  auto back = decode_run_metrics(text, "t");
  ASSERT_TRUE(back.ok()) << back.message();
  ASSERT_EQ(back->size(), metrics.size());
  for (size_t i = 0; i < metrics.size(); ++i) {
    EXPECT_EQ((*back)[i].name, metrics[i].name);
    EXPECT_EQ((*back)[i].value, metrics[i].value) << metrics[i].name;
    EXPECT_EQ((*back)[i].unit, metrics[i].unit);
    EXPECT_EQ((*back)[i].text, metrics[i].text);
  }
  EXPECT_EQ(encode_run_metrics({}), "[]");
}

TEST(RunMetrics, AnyTextStaysValidJson) {
  const std::string bad_utf8 = "caf\xc3";  // a cut multi-byte character, as a sampled token can end
  const std::vector<engine::Metric> metrics = {
      {"greedy", std::nullopt, "", "say \"hi\"\\\n\t\x01 \xc3\xbcber"}, {"cut", std::nullopt, "", bad_utf8}};
  auto back = decode_run_metrics(encode_run_metrics(metrics), "t");
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ((*back)[0].text, metrics[0].text);
  EXPECT_EQ((*back)[1].text, "caf\xef\xbf\xbd");  // U+FFFD, as the store's other JSON columns
}

TEST(RunMetrics, NonFiniteValuesAreStoredAsAbsent) {
  auto back = decode_run_metrics(encode_run_metrics({{"a", std::numeric_limits<double>::infinity(), "", ""},
                                                      {"b", std::nan(""), "", ""}}),
                                 "t");
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_FALSE((*back)[0].value.has_value());
  EXPECT_FALSE((*back)[1].value.has_value());
}

TEST(RunMetrics, ReadsJsonItDidNotWriteItself) {
  // Whitespace and escapes, as SQL (json_set) may leave a row.
  auto r = decode_run_metrics(" [ [\"a\" , 1.5 , \"ms\", \"\" ] , [\"b\\u00e9\", null, \"\", \"x\"] ] ", "t");
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].value, 1.5);
  EXPECT_EQ((*r)[1].name, "b\xc3\xa9");
  EXPECT_FALSE((*r)[1].value.has_value());
}

TEST(RunMetrics, RefusesWhatItDoesNotWrite) {
  for (const char* bad : {"", "{}", "[1]", "[[\"a\",1,\"\"]]", "[[\"a\",\"1\",\"\",\"\"]]", "[[1,1,\"\",\"\"]]",
                          "[[\"a\",1,\"\",\"\"]"}) {
    auto r = decode_run_metrics(bad, "the result of job abc");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.message().find("the result of job abc"), std::string::npos) << r.message();
  }
}

}  // namespace
}  // namespace gb::coord

// common/json_parse.h: the limits every parser of outside JSON applies.
#include "common/json_parse.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace gb {
namespace {

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string error_of(std::string_view text, const JsonLimits& limits = {}) {
  Result<nlohmann::json> j = parse_json(text, "in.json", limits);
  return j.ok() ? std::string("(parsed)") : j.message();
}

TEST(JsonParse, ParsesOrdinaryJsonLikeNlohmann) {
  const std::string text = R"({"b": [1, 2.5, -3, true, null, "x"], "a": {"c": 18446744073709551615}})";
  Result<nlohmann::json> j = parse_json(text, "in.json");
  ASSERT_TRUE(j.ok()) << j.message();
  EXPECT_EQ(*j, nlohmann::json::parse(text));
  Result<nlohmann::ordered_json> o = parse_ordered_json(text, "in.json");
  ASSERT_TRUE(o.ok()) << o.message();
  EXPECT_EQ(o->begin().key(), "b");  // file order kept
  EXPECT_EQ(o->dump(), nlohmann::ordered_json::parse(text).dump());
}

TEST(JsonParse, RefusesNesting100000DeepWithoutCrashing) {
  EXPECT_EQ(error_of(nested(100000)),
            "in.json: $" + [] {
              std::string p;
              for (int i = 0; i < 64; ++i) p += "[0]";
              return p;
            }() + ": nested deeper than 64 levels; expected at most 64");
  const std::string objects = [] {
    std::string s;
    for (int i = 0; i < 100000; ++i) s += "{\"a\":";
    return s + "1" + std::string(100000, '}');
  }();
  EXPECT_NE(error_of(objects).find("in.json: $.a.a.a"), std::string::npos);
}

TEST(JsonParse, DepthLimitIsExact) {
  EXPECT_EQ(error_of(nested(64)), "(parsed)");
  EXPECT_NE(error_of(nested(65)).find("nested deeper than 64 levels"), std::string::npos);
  JsonLimits l;
  l.max_depth = 2;
  EXPECT_EQ(error_of("[[1]]", l), "(parsed)");
  EXPECT_EQ(error_of(R"({"x": [[1]]})", l), "in.json: $.x[0]: nested deeper than 2 levels; expected at most 2");
}

TEST(JsonParse, RefusesNumbersOutsideTheRangeOfADouble) {
  EXPECT_EQ(error_of(R"({"hidden_size": 1e400})"),
            "in.json: $.hidden_size: number 1e400 is outside the range of a double");
  EXPECT_EQ(error_of(R"({"a": [1, -1e400]})"), "in.json: $.a[1]: number -1e400 is outside the range of a double");
  EXPECT_EQ(error_of("1e400"), "in.json: $: number 1e400 is outside the range of a double");
  // Integers past 64 bits are doubles, as nlohmann reads them; underflow is zero.
  Result<nlohmann::json> big = parse_json("[100000000000000000000000, 1e-400]", "in.json");
  ASSERT_TRUE(big.ok()) << big.message();
  EXPECT_DOUBLE_EQ((*big)[0].get<double>(), 1e23);
  EXPECT_EQ((*big)[1].get<double>(), 0.0);
}

TEST(JsonParse, RefusesInputOverItsSizeLimit) {
  JsonLimits l;
  l.max_bytes = 10;
  EXPECT_EQ(error_of("[1,2,3,4,5]", l), "in.json: 11 bytes, more than the limit of 10 bytes");
  EXPECT_EQ(error_of("[1,2,3,4]", l), "(parsed)");
  const std::string big = "[" + std::string(16 * kMiB, ' ') + "]";
  EXPECT_EQ(error_of(big), "in.json: 16777218 bytes, more than the limit of 16 MiB");
}

TEST(JsonParse, SyntaxErrorsGiveLineAndColumn) {
  EXPECT_EQ(error_of("{\n  \"a\": 1,\n}"),
            "in.json: line 3 column 1: syntax error while parsing object key - unexpected '}'; expected string literal");
  EXPECT_NE(error_of("").find("in.json: line 1 column 1: syntax error"), std::string::npos);
  EXPECT_NE(error_of("[1] x").find("in.json: line 1 column 5"), std::string::npos);
}

TEST(JsonParse, DuplicateKeysAreRefusedWhenAsked) {
  EXPECT_EQ(error_of(R"({"a": 1, "a": 2})"), "(parsed)");
  JsonLimits l;
  l.refuse_duplicate_keys = true;
  EXPECT_EQ(error_of(R"({"a": 1, "b": {"c": 1, "c": 2}, "a": 2})", l),
            "in.json: $.b.c: duplicate key\nin.json: $.a: duplicate key");
}

TEST(JsonParse, ReadsFilesWithinTheLimitOnly) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("gb_json_parse_" + std::to_string(::getpid()) + ".json")).string();
  {
    std::ofstream(path) << R"({"n": 1e400})";
  }
  Result<nlohmann::json> j = read_json_file(path);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.message(), path + ": $.n: number 1e400 is outside the range of a double");
  JsonLimits l;
  l.max_bytes = 4;
  EXPECT_EQ(read_json_file(path, l).message(), path + ": 12 bytes, more than the limit of 4 bytes");
  std::filesystem::remove(path);
  EXPECT_NE(read_json_file(path).message().find(path + ": cannot read: "), std::string::npos);
}

TEST(JsonParse, PathsQuoteKeysThatAreNotIdentifiers) {
  EXPECT_EQ(json_path_key("$", "model"), "$.model");
  EXPECT_EQ(json_path_key("$", "a b"), "$[\"a b\"]");
  EXPECT_EQ(json_path_key("$", "1x"), "$[\"1x\"]");
  EXPECT_EQ(json_path_key("$", "\xff"), "$[\"\xEF\xBF\xBD\"]");  // invalid UTF-8 shown, not thrown
  EXPECT_EQ(json_path_index("$.m", 2), "$.m[2]");
}

}  // namespace
}  // namespace gb

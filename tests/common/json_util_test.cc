#include "common/json_util.h"

#include <gtest/gtest.h>

namespace gb {
namespace {

TEST(JsonUtil, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(JsonUtil, CanonicalSortsKeysAndNormalizesNumbers) {
  Json a = Json::parse(R"({"b": 4096.0, "a": {"y": 1.5, "x": [2.0, "s", true]}})");
  Json b = Json::parse(R"({"a": {"x": [2, "s", true], "y": 1.5}, "b": 4096})");
  EXPECT_EQ(canonical_json(a), R"({"a":{"x":[2,"s",true],"y":1.5},"b":4096})");
  EXPECT_EQ(canonical_json(a), canonical_json(b));
  EXPECT_EQ(content_hash(a), content_hash(b));
  EXPECT_EQ(content_hash(a).size(), 16u);
}

TEST(JsonUtil, DifferentValuesDifferentHashes) {
  EXPECT_NE(content_hash(Json{{"batch_size", 1}}), content_hash(Json{{"batch_size", 2}}));
  EXPECT_NE(content_hash(Json{{"bits", 4.5}}), content_hash(Json{{"bits", 4}}));
  EXPECT_NE(content_hash(Json{{"x", "1"}}), content_hash(Json{{"x", 1}}));
}

TEST(JsonUtil, UnsignedAndSignedIntegersAgree) {
  Json u = Json::parse("{\"n\": 7}");
  Json s = Json{{"n", static_cast<uint64_t>(7)}};
  EXPECT_EQ(canonical_json(u), canonical_json(s));
}

}  // namespace
}  // namespace gb

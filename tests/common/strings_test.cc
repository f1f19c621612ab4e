// common/strings.h: join.
#include "common/strings.h"

#include <gtest/gtest.h>

namespace gb {
namespace {

TEST(Join, SeparatesItemsOnly) {
  EXPECT_EQ(join({}), "");
  EXPECT_EQ(join({"a"}), "a");
  EXPECT_EQ(join({"a", "b", "c"}), "a, b, c");
  EXPECT_EQ(join({"x", "", "y"}, " / "), "x /  / y");  // empty items keep their separators
  EXPECT_EQ(join({"decode_step_ms", "decode_latency"}, " or "), "decode_step_ms or decode_latency");
}

}  // namespace
}  // namespace gb

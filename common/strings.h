// Small text helpers shared across components.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gb {

// The items with `sep` between them ("a, b, c" by default).
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

// The first `limit` items joined by "; ", then "; and N more" where there are more (for
// error messages that name what is missing or extra).
std::string join_limited(const std::vector<std::string>& items, size_t limit = 6);

}  // namespace gb

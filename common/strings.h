// Small text helpers shared across components.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gb {

// The items with `sep` between them ("a, b, c" by default).
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

}  // namespace gb

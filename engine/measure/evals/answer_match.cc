// Answer normalisation and gsm8k's final number (engine/measure/evals/answer_match.h).
#include "engine/measure/evals/answer_match.h"

#include <cctype>
#include <vector>

namespace gb::engine {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Every number of `s` in order, canonical: "-1,234.50" -> "-1234.5", "7." -> "7".
std::vector<std::string> numbers(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    if (!is_digit(s[i])) {
      ++i;
      continue;
    }
    const bool negative = (i > 0 && s[i - 1] == '-') ||
                          (i > 1 && s[i - 1] == '$' && s[i - 2] == '-');
    std::string whole, frac;
    // Digits with thousands separators: a ',' counts only between digits.
    while (i < s.size() && (is_digit(s[i]) || (s[i] == ',' && i + 1 < s.size() && is_digit(s[i + 1]) && !whole.empty()))) {
      if (s[i] != ',') whole += s[i];
      ++i;
    }
    if (i + 1 < s.size() && s[i] == '.' && is_digit(s[i + 1])) {
      ++i;
      while (i < s.size() && is_digit(s[i])) frac += s[i++];
    }
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    const size_t nz = whole.find_first_not_of('0');
    whole = nz == std::string::npos ? "0" : whole.substr(nz);
    std::string n = whole + (frac.empty() ? "" : "." + frac);
    if (negative && n != "0") n = "-" + n;
    out.push_back(n);
  }
  return out;
}

}  // namespace

std::string normalize_answer(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  while (!out.empty() && out.back() == '.') out.pop_back();
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string first_line_answer(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string line = normalize_answer(text.substr(pos, end - pos));
    if (!line.empty()) return line;
    pos = end + 1;
  }
  return "";
}

std::optional<std::string> final_number(std::string_view text) {
  const size_t mark = text.rfind("####");
  if (mark != std::string_view::npos) {
    const std::vector<std::string> after = numbers(text.substr(mark + 4));
    if (!after.empty()) return after.front();
  }
  const std::vector<std::string> all = numbers(text);
  if (all.empty()) return std::nullopt;
  return all.back();
}

bool exact_match(std::string_view generation, std::string_view answer) {
  return first_line_answer(generation) == normalize_answer(answer);
}

bool number_match(std::string_view generation, std::string_view answer) {
  const std::optional<std::string> g = final_number(generation), a = final_number(answer);
  return g && a && *g == *a;
}

}  // namespace gb::engine

// How gen_accuracy compares a generation with its reference answer:
//
//   exact   the generation's first non-blank line against the answer, both
//           normalised: surrounding whitespace dropped, runs of whitespace made one
//           space, ASCII letters lower-cased, trailing '.' dropped
//   number  gsm8k's final number: the number after the last "####" when there is
//           one, else the last number in the text ("-1,234.50" -> "-1234.5": commas
//           and a leading '$' dropped, trailing zeros of a fraction dropped); both
//           sides must have one and they must be equal
//
// Not here: generating (engine_scoring_model.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gb::engine {

std::string normalize_answer(std::string_view text);
// The first line of `text` that is not blank, normalised.
std::string first_line_answer(std::string_view text);
// The final number as above, or nullopt when the text has none.
std::optional<std::string> final_number(std::string_view text);

bool exact_match(std::string_view generation, std::string_view answer);
bool number_match(std::string_view generation, std::string_view answer);

}  // namespace gb::engine

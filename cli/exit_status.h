#pragma once
// The gridbench CLI's exit statuses (the README's "Exit codes") and the one way a command reports a
// failure: the message on stderr, prefixed with the program's name, and the status returned.

#include <cstdio>
#include <string>

namespace gb::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitInvalid = 2;      // bad arguments or input files
inline constexpr int kExitOom = 3;          // the model cannot fit in the memory left (generate)
inline constexpr int kExitInterrupted = 130;

inline int fail(const std::string& message, int code = kExitError) {
  std::fprintf(stderr, "gridbench: %s\n", message.c_str());
  return code;
}

}  // namespace gb::cli

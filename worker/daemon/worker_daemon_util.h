// Small helpers and aliases that the worker daemon's files share (private to
// gb_worker). Not the daemon's interface (worker_daemon.h) nor its state
// (worker_daemon_impl.h).
#pragma once

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/status.h"

namespace gb::worker {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// `s` with every character but [A-Za-z0-9._-] made '_' (a name for a path).
inline std::string sanitize(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return out;
}

// The whole file, or an error naming it.
inline Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot read: " + std::strerror(errno)};
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace gb::worker

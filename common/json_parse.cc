// Limited JSON parsing (common/json_parse.h): a SAX handler that builds the
// document as nlohmann's own DOM parser does, and refuses what the limits refuse
// before it is built. nlohmann's SAX driver is iterative, so a deep input costs
// no stack; the handler stops it at max_depth + 1.
#include "common/json_parse.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

namespace gb {
namespace {

constexpr size_t kMaxDuplicateErrors = 50;

// Position (1-based line and column) of the 1-based byte offset `byte` in `text`.
std::pair<size_t, size_t> line_column(std::string_view text, size_t byte) {
  size_t pos = byte > 0 ? std::min(byte - 1, text.size()) : 0;
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < pos; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, pos - line_start + 1};
}

template <class J>
class LimitedSax {
 public:
  using number_integer_t = typename J::number_integer_t;
  using number_unsigned_t = typename J::number_unsigned_t;
  using number_float_t = typename J::number_float_t;
  using string_t = typename J::string_t;
  using binary_t = typename J::binary_t;

  LimitedSax(std::string_view text, const std::string& source, const JsonLimits& limits)
      : text_(text), source_(source), limits_(limits) {}

  bool null() { return put(J(nullptr)) != nullptr; }
  bool boolean(bool v) { return put(J(v)) != nullptr; }
  bool number_integer(number_integer_t v) { return put(J(v)) != nullptr; }
  bool number_unsigned(number_unsigned_t v) { return put(J(v)) != nullptr; }
  bool number_float(number_float_t v, const string_t& text) {
    if (!std::isfinite(v)) return fail(child_path(), "number " + text + " is outside the range of a double");
    return put(J(v)) != nullptr;
  }
  bool string(string_t& v) { return put(J(std::move(v))) != nullptr; }
  bool binary(binary_t& v) { return put(J::binary(std::move(v))) != nullptr; }

  bool start_object(std::size_t /*elements*/) { return open(J::object()); }
  bool start_array(std::size_t /*elements*/) { return open(J::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(string_t& k) {
    Frame& f = stack_.back();
    if (limits_.refuse_duplicate_keys && f.value->contains(k)) {
      if (duplicates_.size() < kMaxDuplicateErrors)
        duplicates_.push_back(source_ + ": " + json_path_key(f.path, k) + ": duplicate key");
    }
    f.key = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string& token, const nlohmann::detail::exception& ex) {
    if (ex.id == 406) {  // out_of_range 406: number overflow
      return fail(child_path(), "number " + token + " is outside the range of a double");
    }
    auto [line, col] = line_column(text_, position);
    std::string what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..."
    if (auto c = what.find(", column "); c != std::string::npos) {
      if (auto s = what.find(": ", c); s != std::string::npos) what = what.substr(s + 2);
    } else if (auto b = what.find("] "); b != std::string::npos) {
      what = what.substr(b + 2);
    }
    error_ = source_ + ": line " + std::to_string(line) + " column " + std::to_string(col) + ": " + what;
    return false;
  }

  Result<J> finish(bool parsed) {
    if (!error_.empty()) return Error{error_};
    if (!parsed) return Error{source_ + ": invalid JSON"};
    if (!duplicates_.empty()) {
      std::string msg;
      for (const auto& d : duplicates_) msg += (msg.empty() ? "" : "\n") + d;
      return Error{msg};
    }
    return std::move(root_);
  }

 private:
  struct Frame {
    J* value;
    std::string path;
    string_t key;  // the key of the member being read (objects)
  };

  std::string child_path() const {
    if (stack_.empty()) return "$";
    const Frame& f = stack_.back();
    return f.value->is_object() ? json_path_key(f.path, f.key) : json_path_index(f.path, f.value->size());
  }

  // Places `v` where the parser is and returns where it went.
  J* put(J&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = stack_.back();
    if (f.value->is_array()) {
      f.value->push_back(std::move(v));
      return &f.value->back();
    }
    J& slot = (*f.value)[f.key];
    slot = std::move(v);
    return &slot;
  }

  bool open(J&& empty) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
      return fail(child_path(), "nested deeper than " + std::to_string(limits_.max_depth) +
                                    " levels; expected at most " + std::to_string(limits_.max_depth));
    }
    std::string path = child_path();
    J* v = put(std::move(empty));
    stack_.push_back(Frame{v, std::move(path), {}});
    return true;
  }

  bool close() {
    if (!stack_.empty()) stack_.pop_back();
    return true;
  }

  bool fail(const std::string& path, const std::string& what) {
    error_ = source_ + ": " + path + ": " + what;
    return false;
  }

  std::string_view text_;
  const std::string& source_;
  const JsonLimits& limits_;
  J root_;
  std::vector<Frame> stack_;
  std::vector<std::string> duplicates_;
  std::string error_;
};

template <class J>
Result<J> parse_limited(std::string_view text, const std::string& source, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) return Error{source + ": " + size_limit_message(text.size(), limits.max_bytes)};
  LimitedSax<J> sax(text, source, limits);
  bool ok = J::sax_parse(text.begin(), text.end(), &sax, nlohmann::json::input_format_t::json, /*strict=*/true);
  return sax.finish(ok);
}

std::string size_text(size_t bytes) {
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

Result<nlohmann::json> parse_json(std::string_view text, const std::string& source, const JsonLimits& limits) {
  return parse_limited<nlohmann::json>(text, source, limits);
}

Result<nlohmann::ordered_json> parse_ordered_json(std::string_view text, const std::string& source,
                                                  const JsonLimits& limits) {
  return parse_limited<nlohmann::ordered_json>(text, source, limits);
}

std::string size_limit_message(size_t bytes, size_t max_bytes) {
  return std::to_string(bytes) + " bytes, more than the limit of " + size_text(max_bytes);
}

Result<std::string> read_limited_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Error{path + ": cannot read: is a directory"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot read: " + std::strerror(errno)};
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size >= 0 && static_cast<size_t>(size) > max_bytes)
    return Error{path + ": " + size_limit_message(static_cast<size_t>(size), max_bytes)};
  in.seekg(0, std::ios::beg);
  // Read at most one byte past the limit: a file that grows (or a pipe) is still bounded.
  std::string text;
  text.resize(std::min(max_bytes + 1, size > 0 ? static_cast<size_t>(size) + 1 : size_t{1} << 16));
  size_t got = 0;
  while (in && got <= max_bytes) {
    if (got == text.size()) text.resize(std::min(max_bytes + 1, text.size() * 2));
    in.read(text.data() + got, static_cast<std::streamsize>(text.size() - got));
    got += static_cast<size_t>(in.gcount());
  }
  if (in.bad()) return Error{path + ": cannot read: " + std::strerror(errno)};
  if (got > max_bytes) return Error{path + ": " + size_limit_message(got, max_bytes)};
  text.resize(got);
  return text;
}

Result<nlohmann::json> read_json_file(const std::string& path, const JsonLimits& limits) {
  Result<std::string> text = read_limited_file(path, limits.max_bytes);
  if (!text) return text.error();
  return parse_json(*text, path, limits);
}

std::string json_path_key(const std::string& base, const std::string& key) {
  bool ident = !key.empty() && !std::isdigit(static_cast<unsigned char>(key[0])) &&
               std::all_of(key.begin(), key.end(), [](char c) {
                 return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
               });
  if (ident) return base + "." + key;
  return base + "[" + nlohmann::json(key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "]";
}

std::string json_path_index(const std::string& base, size_t index) {
  return base + "[" + std::to_string(index) + "]";
}

}  // namespace gb

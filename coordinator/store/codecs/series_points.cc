#include "coordinator/store/codecs/series_points.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace gb::coord {

namespace {

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, ec == std::errc() ? end : buf);
}

// A strict reader of encode_series_points' grammar (whitespace allowed between tokens).
class Reader {
 public:
  Reader(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  Result<std::vector<engine::SeriesPoint>> read() {
    std::vector<engine::SeriesPoint> out;
    GB_RETURN_IF_ERROR(expect('['));
    if (peek() == ']') {
      ++i_;
    } else {
      while (true) {
        engine::SeriesPoint p;
        GB_RETURN_IF_ERROR(expect('['));
        GB_RETURN_IF_ERROR(number(&p.x));
        GB_RETURN_IF_ERROR(expect(','));
        GB_RETURN_IF_ERROR(number(&p.y));
        GB_RETURN_IF_ERROR(expect(']'));
        out.push_back(p);
        const char c = peek();
        ++i_;
        if (c == ']') break;
        if (c != ',') return fail("',' or ']' after a point");
      }
    }
    if (peek() != '\0') return fail("the end of the text after the array");
    return out;
  }

 private:
  char peek() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  Error fail(const std::string& expected) const {
    return Error{what_ + ": points at offset " + std::to_string(i_) + ": expected " + expected};
  }
  Status expect(char c) {
    if (peek() != c) return fail(std::string("'") + c + "'");
    ++i_;
    return Status::Ok();
  }
  Status number(double* v) {
    peek();
    if (s_.substr(i_, 4) == "null") {
      i_ += 4;
      *v = std::numeric_limits<double>::quiet_NaN();
      return Status::Ok();
    }
    const char* first = s_.data() + i_;
    const char* last = s_.data() + s_.size();
    auto [end, ec] = std::from_chars(first, last, *v);
    if (ec != std::errc() || end == first || !std::isfinite(*v)) return fail("a finite number or null");
    i_ += static_cast<size_t>(end - first);
    return Status::Ok();
  }

  std::string_view s_;
  const std::string& what_;
  size_t i_ = 0;
};

}  // namespace

std::string encode_series_points(const std::vector<engine::SeriesPoint>& points) {
  std::string out;
  out.reserve(2 + points.size() * 24);
  out += '[';
  for (size_t i = 0; i < points.size(); ++i) {
    if (i) out += ',';
    out += '[';
    append_number(out, points[i].x);
    out += ',';
    append_number(out, points[i].y);
    out += ']';
  }
  out += ']';
  return out;
}

Result<std::vector<engine::SeriesPoint>> decode_series_points(std::string_view text, const std::string& what) {
  return Reader(text, what).read();
}

}  // namespace gb::coord

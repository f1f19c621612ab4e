#include "coordinator/store/codecs/run_metrics.h"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "common/json_parse.h"

namespace gb::coord {

namespace {

// Printable ASCII without '"' and '\\' goes in as it is (every metric name and
// unit); anything else through nlohmann, which escapes and repairs UTF-8.
void append_string(std::string& out, const std::string& s) {
  bool plain = true;
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

void append_value(std::string& out, const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) {
    out += "null";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), *v);
  out.append(buf, ec == std::errc() ? end : buf);
}

// The text as encode_run_metrics writes it where no string needed an escape (the
// common case: names, units and outcomes are plain ASCII): read without building a
// JSON tree. Returns false where the text is not of that shape; the caller then
// parses it as JSON.
bool read_plain(std::string_view s, std::vector<engine::Metric>* out) {
  size_t i = 0;
  auto eat = [&](char c) {
    if (i >= s.size() || s[i] != c) return false;
    ++i;
    return true;
  };
  auto str = [&](std::string* v) {
    if (!eat('"')) return false;
    const size_t end = s.find('"', i);
    if (end == std::string_view::npos) return false;
    v->assign(s.substr(i, end - i));
    i = end + 1;
    return true;
  };
  if (!eat('[')) return false;
  if (eat(']')) return i == s.size();
  while (true) {
    engine::Metric m;
    if (!eat('[') || !str(&m.name) || !eat(',')) return false;
    if (s.substr(i, 4) == "null") {
      i += 4;
    } else {
      double v = 0;
      auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), v);
      if (ec != std::errc() || end == s.data() + i || !std::isfinite(v)) return false;
      i = static_cast<size_t>(end - s.data());
      m.value = v;
    }
    if (!eat(',') || !str(&m.unit) || !eat(',') || !str(&m.text) || !eat(']')) return false;
    out->push_back(std::move(m));
    if (eat(']')) return i == s.size();
    if (!eat(',')) return false;
  }
}

}  // namespace

std::string encode_run_metrics(const std::vector<engine::Metric>& metrics) {
  std::string out;
  out.reserve(2 + metrics.size() * 48);
  out += '[';
  for (size_t i = 0; i < metrics.size(); ++i) {
    const engine::Metric& m = metrics[i];
    if (i) out += ',';
    out += '[';
    append_string(out, m.name);
    out += ',';
    append_value(out, m.value);
    out += ',';
    append_string(out, m.unit);
    out += ',';
    append_string(out, m.text);
    out += ']';
  }
  out += ']';
  return out;
}

Result<std::vector<engine::Metric>> decode_run_metrics(std::string_view text, const std::string& what) {
  if (text.find('\\') == std::string_view::npos) {
    std::vector<engine::Metric> plain;
    if (read_plain(text, &plain)) return plain;
  }
  JsonLimits limits;
  limits.max_bytes = 256 * kMiB;  // written by the store itself; the limits only guard against a corrupt file
  Result<nlohmann::json> doc = parse_json(text, what, limits);
  if (!doc.ok()) return Error{what + ": metrics are not valid JSON: " + doc.message()};
  if (!doc->is_array()) return Error{what + ": metrics: expected an array"};
  std::vector<engine::Metric> out;
  out.reserve(doc->size());
  for (size_t i = 0; i < doc->size(); ++i) {
    const nlohmann::json& e = (*doc)[i];
    const bool shaped = e.is_array() && e.size() == 4 && e[0].is_string() && (e[1].is_number() || e[1].is_null()) &&
                        e[2].is_string() && e[3].is_string();
    if (!shaped) {
      return Error{what + ": metrics[" + std::to_string(i) + "]: expected [name, number or null, unit, text]"};
    }
    engine::Metric m;
    m.name = e[0].get<std::string>();
    if (e[1].is_number()) m.value = e[1].get<double>();
    m.unit = e[2].get<std::string>();
    m.text = e[3].get<std::string>();
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace gb::coord

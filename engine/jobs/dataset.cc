// Text datasets: text:FILE and jsonl:FILE:FIELD (engine/jobs/dataset.h).
#include "engine/jobs/dataset.h"

#include "common/json_parse.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace gb::engine {
namespace {

constexpr std::string_view kTextPrefix = "text:";
constexpr std::string_view kJsonlPrefix = "jsonl:";

Result<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Error{path + ": is a directory, not a dataset file"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read " + path + " (" + std::strerror(errno) + ")"};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{"cannot read " + path + " (read error)"};
  return text.str();
}

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos; }

// 1-based line of byte `offset`.
size_t line_of(std::string_view s, size_t offset) {
  size_t line = 1;
  for (size_t i = 0; i < offset && i < s.size(); ++i) line += s[i] == '\n';
  return line;
}

Result<std::string> load_text(const std::string& path) {
  Result<std::string> text = read_file(path);
  if (!text) return text.error();
  std::string& s = *text;
  if (s.starts_with("\xEF\xBB\xBF")) s.erase(0, 3);
  if (std::optional<size_t> bad = first_invalid_utf8(s))
    return Error{path + ": invalid UTF-8 at byte offset " + std::to_string(*bad) + " (line " +
                 std::to_string(line_of(s, *bad)) + ")"};
  if (is_blank(s)) return Error{path + ": empty dataset (no text)"};
  return text;
}

Result<std::string> load_jsonl(const std::string& path, const std::string& field) {
  Result<std::string> file = read_file(path);
  if (!file) return file.error();
  const std::string& s = *file;
  if (std::optional<size_t> bad = first_invalid_utf8(s))
    return Error{path + ", line " + std::to_string(line_of(s, *bad)) + ": invalid UTF-8 at byte offset " +
                 std::to_string(*bad)};
  std::string out;
  size_t documents = 0, lines = 0;
  size_t pos = 0, line_no = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string::npos) end = s.size();
    const std::string_view line(s.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (is_blank(line)) continue;
    ++lines;
    const std::string at = path + ", line " + std::to_string(line_no) + ": ";
    Result<nlohmann::json> parsed = parse_json(line, "invalid JSON");
    if (!parsed) return Error{at + parsed.message()};
    nlohmann::json j = std::move(*parsed);
    if (!j.is_object()) return Error{at + "expected a JSON object, got " + std::string(j.type_name())};
    auto it = j.find(field);
    if (it == j.end()) return Error{at + "no field '" + field + "'"};
    if (!it->is_string())
      return Error{at + "field '" + field + "' is " + std::string(it->type_name()) + ", expected a string"};
    const std::string& doc = it->get_ref<const std::string&>();
    if (doc.empty()) continue;
    if (documents++ > 0) out += "\n\n";
    out += doc;
  }
  if (lines == 0) return Error{path + ": empty dataset (no JSON lines)"};
  if (is_blank(out))
    return Error{path + ": empty dataset (field '" + field + "' has no text in any of " + std::to_string(lines) +
                 " line" + (lines == 1 ? "" : "s") + ")"};
  return out;
}

}  // namespace

std::optional<size_t> first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // continuation byte, C0/C1 (overlong) or F5..FF
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return i;  // overlong, beyond Unicode, or a surrogate
    i += len;
  }
  return std::nullopt;
}

Result<DatasetSpec> parse_dataset_spec(const std::string& spec) {
  DatasetSpec d;
  if (spec.starts_with(kTextPrefix)) {
    d.kind = DatasetSpec::Kind::kText;
    d.file = spec.substr(kTextPrefix.size());
    if (d.file.empty()) return Error{"dataset '" + spec + "': text: needs a file, e.g. text:wiki.test.raw"};
    return d;
  }
  if (spec.starts_with(kJsonlPrefix)) {
    d.kind = DatasetSpec::Kind::kJsonl;
    const std::string rest = spec.substr(kJsonlPrefix.size());
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos)
      return Error{"dataset '" + spec + "': jsonl: needs a file and a field, e.g. jsonl:pg19.jsonl:text"};
    d.file = rest.substr(0, colon);
    d.field = rest.substr(colon + 1);
    if (d.file.empty()) return Error{"dataset '" + spec + "': jsonl: needs a file before the field"};
    if (d.field.empty()) return Error{"dataset '" + spec + "': jsonl: needs a field name after the last ':'"};
    return d;
  }
  return Error{"dataset '" + spec + "': unknown kind (expected text:FILE or jsonl:FILE:FIELD)"};
}

Result<std::string> load_text_dataset(const DatasetSpec& spec) {
  return spec.kind == DatasetSpec::Kind::kText ? load_text(spec.file) : load_jsonl(spec.file, spec.field);
}

Result<std::string> load_text_dataset(const std::string& spec) {
  Result<DatasetSpec> d = parse_dataset_spec(spec);
  if (!d) return d.error();
  return load_text_dataset(*d);
}

}  // namespace gb::engine

// RFC 4180 CSV (engine/jobs/datasets/csv_reader.h).
#include "engine/jobs/datasets/csv_reader.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace gb::engine {

Result<std::vector<CsvRecord>> parse_csv(std::string_view s, const std::string& source) {
  if (s.starts_with("\xEF\xBB\xBF")) s.remove_prefix(3);
  std::vector<CsvRecord> out;
  const size_t n = s.size();
  size_t i = 0, line = 1;
  auto at = [&](size_t l) { return source + ":" + std::to_string(l) + ": "; };
  while (i < n) {
    // An empty line (LF or CRLF) is no record.
    if (s[i] == '\n') {
      ++i, ++line;
      continue;
    }
    if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
      i += 2, ++line;
      continue;
    }
    CsvRecord rec;
    rec.line = line;
    while (true) {  // one field per turn
      std::string field;
      if (i < n && s[i] == '"') {
        const size_t open_line = line;
        ++i;
        bool closed = false;
        while (i < n) {
          const char c = s[i];
          if (c == '"') {
            if (i + 1 < n && s[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        if (!closed)
          return Error{at(open_line) + "a quoted field (field " + std::to_string(rec.fields.size() + 1) +
                       ") is never closed before the end of the file"};
        if (i < n && s[i] != ',' && s[i] != '\n' && !(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
          return Error{at(line) + "text after the closing quote of field " + std::to_string(rec.fields.size() + 1) +
                       " (expected ',' or the end of the line)"};
      } else {
        while (i < n && s[i] != ',' && s[i] != '\n' && !(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')) {
          if (s[i] == '"')
            return Error{at(line) + "a double quote inside unquoted field " + std::to_string(rec.fields.size() + 1) +
                         " (quote the field and double the quote: \"\")"};
          field += s[i++];
        }
      }
      rec.fields.push_back(std::move(field));
      if (i < n && s[i] == ',') {
        ++i;
        continue;  // another field follows (empty at the end of the line)
      }
      break;
    }
    // The end of the record: LF, CRLF or the end of the file.
    if (i < n) {
      i += s[i] == '\r' ? 2 : 1;
      ++line;
    }
    out.push_back(std::move(rec));
  }
  return out;
}

Result<std::vector<CsvRecord>> read_csv_file(const std::string& path) {
  constexpr uintmax_t kMaxBytes = uintmax_t{1} << 30;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Error{path + ": is a directory, not a CSV file"};
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxBytes) return Error{path + ": " + std::to_string(size) + " bytes, more than the 1 GiB a CSV may have"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read " + path + " (" + std::strerror(errno) + ")"};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{"cannot read " + path + " (read error)"};
  return parse_csv(text.str(), path);
}

}  // namespace gb::engine

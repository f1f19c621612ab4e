// Datasets by path: text:, wikitext:, pg19:, jsonl: and mmlu: (engine/jobs/dataset.h).
#include "engine/jobs/dataset.h"

#include "common/json_parse.h"
#include "engine/jobs/datasets/mmlu.h"

#include <algorithm>
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

// The lines of a jsonl file with their fields, blank lines skipped.
struct JsonlRow {
  size_t line = 0;
  std::vector<std::string> values;
};

Result<std::vector<JsonlRow>> load_jsonl_rows(const std::string& path, const std::vector<std::string>& fields) {
  Result<std::string> file = read_file(path);
  if (!file) return file.error();
  const std::string& s = *file;
  if (std::optional<size_t> bad = first_invalid_utf8(s))
    return Error{path + ", line " + std::to_string(line_of(s, *bad)) + ": invalid UTF-8 at byte offset " +
                 std::to_string(*bad)};
  std::vector<JsonlRow> rows;
  size_t lines = 0;
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
    JsonlRow row;
    row.line = line_no;
    for (const std::string& field : fields) {
      auto it = j.find(field);
      if (it == j.end()) return Error{at + "no field '" + field + "'"};
      if (!it->is_string())
        return Error{at + "field '" + field + "' is " + std::string(it->type_name()) + ", expected a string"};
      row.values.push_back(it->get<std::string>());
    }
    rows.push_back(std::move(row));
  }
  if (lines == 0) return Error{path + ": empty dataset (no JSON lines)"};
  return rows;
}

Result<std::vector<Document>> load_jsonl_documents(const std::string& path, const std::string& field) {
  Result<std::vector<JsonlRow>> rows = load_jsonl_rows(path, {field});
  if (!rows) return rows.error();
  std::vector<Document> docs;
  bool any_text = false;
  for (JsonlRow& r : *rows) {
    if (r.values[0].empty()) continue;
    any_text = any_text || !is_blank(r.values[0]);
    docs.push_back({"line " + std::to_string(r.line), std::move(r.values[0])});
  }
  const size_t lines = rows->size();
  if (!any_text)
    return Error{path + ": empty dataset (field '" + field + "' has no text in any of " + std::to_string(lines) +
                 " line" + (lines == 1 ? "" : "s") + ")"};
  return docs;
}

// Articles of raw wikitext: slices of the file that start at each heading line.
std::vector<Document> wikitext_articles(const std::string& text) {
  std::vector<Document> docs;
  size_t doc_start = 0, pos = 0;
  std::string title;
  auto close = [&](size_t end) {
    if (end > doc_start) docs.push_back({title.empty() ? "(before the first heading)" : title, text.substr(doc_start, end - doc_start)});
  };
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    if (is_wikitext_article_heading(line)) {
      // A blank stretch before the first heading joins the first article.
      const bool blank_preamble =
          docs.empty() && title.empty() && is_blank(std::string_view(text).substr(doc_start, pos - doc_start));
      if (!blank_preamble) {
        close(pos);
        doc_start = pos;
      }
      std::string_view t = line;
      t.remove_prefix(t.find('=') + 1);
      t.remove_suffix(t.size() - t.rfind('='));
      const size_t a = t.find_first_not_of(' '), b = t.find_last_not_of(' ');
      title = a == std::string_view::npos ? "" : std::string(t.substr(a, b - a + 1));
    }
    pos = end + 1;
  }
  close(text.size());
  return docs;
}

Result<std::vector<Document>> load_pg19(const std::string& dir) {
  Result<std::vector<std::string>> files = dataset_files(DatasetSpec{DatasetSpec::Kind::kPg19, dir, "", {}});
  if (!files) return files.error();
  std::vector<Document> docs;
  for (const std::string& f : *files) {
    Result<std::string> text = read_file(f);
    if (!text) return text.error();
    std::string& s = *text;
    if (s.starts_with("\xEF\xBB\xBF")) s.erase(0, 3);
    if (std::optional<size_t> bad = first_invalid_utf8(s))
      return Error{f + ": invalid UTF-8 at byte offset " + std::to_string(*bad) + " (line " +
                   std::to_string(line_of(s, *bad)) + ")"};
    if (is_blank(s)) continue;
    docs.push_back({std::filesystem::path(f).filename().string(), std::move(s)});
  }
  if (docs.empty()) return Error{dir + ": empty dataset (every .txt file is blank)"};
  return docs;
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

bool is_wikitext_article_heading(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  const size_t a = line.find_first_not_of(' ');
  if (a == std::string_view::npos) return false;
  const size_t b = line.find_last_not_of(' ');
  const std::string_view t = line.substr(a, b - a + 1);
  // "= Title =": one '=' each side, a space inside each; "= = Section = =" is not.
  return t.size() >= 5 && t.starts_with("= ") && t.ends_with(" =") && t[2] != '=' && t[t.size() - 3] != '=';
}

std::optional<std::string> dataset_kind_mismatch(std::string_view job_kind, const DatasetSpec& spec) {
  const bool mmlu = spec.kind == DatasetSpec::Kind::kMmlu;
  const bool pairs = spec.kind == DatasetSpec::Kind::kJsonl && spec.fields.size() == 2;
  if (job_kind == "mc_accuracy" && !mmlu)
    return "mc_accuracy reads multiple choice: expected mmlu:DIR (MMLU's CSV layout)";
  if (job_kind == "gen_accuracy" && !pairs)
    return "gen_accuracy reads prompts and answers: expected jsonl:FILE:PROMPT_FIELD,ANSWER_FIELD";
  if ((job_kind == "ppl" || job_kind == "kv_calibrate") && (mmlu || pairs))
    return std::string(job_kind) + " reads text: expected text:FILE, wikitext:FILE, pg19:DIR or jsonl:FILE:FIELD (one field)";
  return std::nullopt;
}

Result<DatasetSpec> parse_dataset_spec(const std::string& spec) {
  DatasetSpec d;
  const std::string kinds = "text:FILE, wikitext:FILE, pg19:DIR, jsonl:FILE:FIELD, jsonl:FILE:PROMPT,ANSWER or mmlu:DIR";
  struct Prefix {
    std::string_view prefix;
    DatasetSpec::Kind kind;
    const char* example;
  };
  for (const Prefix& p : {Prefix{kTextPrefix, DatasetSpec::Kind::kText, "text:wiki.test.raw"},
                          Prefix{"wikitext:", DatasetSpec::Kind::kWikitext, "wikitext:wiki.test.raw"},
                          Prefix{"pg19:", DatasetSpec::Kind::kPg19, "pg19:pg19/test"},
                          Prefix{"mmlu:", DatasetSpec::Kind::kMmlu, "mmlu:mmlu/data"}}) {
    if (!spec.starts_with(p.prefix)) continue;
    d.kind = p.kind;
    d.file = spec.substr(p.prefix.size());
    if (d.file.empty())
      return Error{"dataset '" + spec + "': " + std::string(p.prefix) + " needs a " +
                   (p.kind == DatasetSpec::Kind::kPg19 || p.kind == DatasetSpec::Kind::kMmlu ? "directory" : "file") +
                   ", e.g. " + p.example};
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
    size_t pos = 0;
    while (pos <= d.field.size()) {
      size_t comma = d.field.find(',', pos);
      if (comma == std::string::npos) comma = d.field.size();
      d.fields.push_back(d.field.substr(pos, comma - pos));
      if (d.fields.back().empty())
        return Error{"dataset '" + spec + "': jsonl: an empty field name in '" + d.field + "'"};
      pos = comma + 1;
    }
    if (d.fields.size() > 2)
      return Error{"dataset '" + spec + "': jsonl: at most two fields (PROMPT,ANSWER), got " +
                   std::to_string(d.fields.size())};
    d.field = d.fields[0];
    return d;
  }
  return Error{"dataset '" + spec + "': unknown kind (expected " + kinds + ")"};
}

Result<std::vector<std::string>> dataset_files(const DatasetSpec& spec) {
  namespace fs = std::filesystem;
  if (spec.kind == DatasetSpec::Kind::kMmlu) {
    Result<std::vector<std::string>> rel = mmlu_files(spec.file);
    if (!rel) return rel.error();
    std::vector<std::string> out;
    for (const std::string& r : *rel) out.push_back((fs::path(spec.file) / r).string());
    return out;
  }
  if (spec.kind != DatasetSpec::Kind::kPg19) return std::vector<std::string>{spec.file};
  std::error_code ec;
  if (!fs::is_directory(spec.file, ec))
    return Error{spec.file + ": no such directory (pg19:DIR names a directory of .txt books)"};
  std::vector<std::string> out;
  for (const fs::directory_entry& e : fs::directory_iterator(spec.file, ec))
    if (e.path().extension() == ".txt" && !e.is_directory(ec)) out.push_back(e.path().string());
  if (ec) return Error{spec.file + ": cannot list (" + ec.message() + ")"};
  if (out.empty()) return Error{spec.file + ": no .txt files (pg19:DIR names a directory of .txt books)"};
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<Document>> load_documents(const DatasetSpec& spec) {
  switch (spec.kind) {
    case DatasetSpec::Kind::kText: {
      Result<std::string> t = load_text(spec.file);
      if (!t) return t.error();
      return std::vector<Document>{{std::filesystem::path(spec.file).filename().string(), std::move(*t)}};
    }
    case DatasetSpec::Kind::kWikitext: {
      Result<std::string> t = load_text(spec.file);
      if (!t) return t.error();
      return wikitext_articles(*t);
    }
    case DatasetSpec::Kind::kPg19:
      return load_pg19(spec.file);
    case DatasetSpec::Kind::kJsonl:
      if (spec.fields.size() > 1)
        return Error{"dataset jsonl:" + spec.file + ":" + spec.field + " names " + std::to_string(spec.fields.size()) +
                     " fields (a prompt and an answer); a text dataset reads one"};
      return load_jsonl_documents(spec.file, spec.field);
    case DatasetSpec::Kind::kMmlu:
      break;
  }
  return Error{"dataset mmlu:" + spec.file + " is multiple choice (for mc_accuracy), not a text to score"};
}

Result<std::vector<PromptAnswer>> load_prompt_answers(const DatasetSpec& spec) {
  if (spec.kind != DatasetSpec::Kind::kJsonl || spec.fields.size() != 2)
    return Error{"expected a dataset jsonl:FILE:PROMPT_FIELD,ANSWER_FIELD (prompts and their answers)"};
  Result<std::vector<JsonlRow>> rows = load_jsonl_rows(spec.file, spec.fields);
  if (!rows) return rows.error();
  std::vector<PromptAnswer> out;
  for (JsonlRow& r : *rows) out.push_back({std::move(r.values[0]), std::move(r.values[1]), r.line});
  return out;
}

Result<std::string> load_text_dataset(const DatasetSpec& spec) {
  // text: and wikitext: are the file as it is (llama.cpp's perplexity reads it whole).
  if (spec.kind == DatasetSpec::Kind::kText || spec.kind == DatasetSpec::Kind::kWikitext) return load_text(spec.file);
  Result<std::vector<Document>> docs = load_documents(spec);
  if (!docs) return docs.error();
  std::string out;
  for (size_t i = 0; i < docs->size(); ++i) out += (i ? "\n\n" : "") + (*docs)[i].text;
  return out;
}

Result<std::string> load_text_dataset(const std::string& spec) {
  Result<DatasetSpec> d = parse_dataset_spec(spec);
  if (!d) return d.error();
  return load_text_dataset(*d);
}

}  // namespace gb::engine

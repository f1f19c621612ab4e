// MMLU CSV directories (engine/jobs/datasets/mmlu.h).
#include "engine/jobs/datasets/mmlu.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "engine/jobs/datasets/csv_reader.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, 3> kSplits = {"dev", "val", "test"};

std::string subject_of(const std::string& file, const std::string& split) {
  std::string stem = fs::path(file).stem().string();
  const std::string suffix = "_" + split;
  if (stem.size() > suffix.size() && stem.ends_with(suffix)) stem.resize(stem.size() - suffix.size());
  return stem;
}

Result<std::vector<McQuestion>> read_questions(const std::string& path) {
  Result<std::vector<CsvRecord>> rows = read_csv_file(path);
  if (!rows) return rows.error();
  std::vector<McQuestion> out;
  for (CsvRecord& r : *rows) {
    const std::string at = path + ":" + std::to_string(r.line) + ": ";
    if (r.fields.size() != 6)
      return Error{at + "expected 6 fields (question, A, B, C, D, answer), got " + std::to_string(r.fields.size())};
    std::string a = r.fields[5];
    a.erase(0, a.find_first_not_of(" \t\r"));
    a.erase(a.find_last_not_of(" \t\r") + 1);
    if (a.size() != 1 || a[0] < 'A' || a[0] > 'D')
      return Error{at + "expected the answer A, B, C or D in field 6, got \"" + r.fields[5] + "\""};
    McQuestion q;
    q.question = std::move(r.fields[0]);
    for (int j = 0; j < 4; ++j) q.choices[static_cast<size_t>(j)] = std::move(r.fields[static_cast<size_t>(j) + 1]);
    q.answer = a[0] - 'A';
    q.file = path;
    q.line = r.line;
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> mmlu_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Error{dir + ": no such directory (mmlu:DIR names an MMLU CSV directory)"};
  std::vector<std::string> out;
  for (const char* split : kSplits) {
    const fs::path sub = fs::path(dir) / split;
    if (!fs::is_directory(sub, ec)) continue;
    std::vector<std::string> files;
    for (const fs::directory_entry& e : fs::directory_iterator(sub, ec))
      if (e.path().extension() == ".csv" && !e.is_directory(ec)) files.push_back(std::string(split) + "/" + e.path().filename().string());
    if (ec) return Error{sub.string() + ": cannot list (" + ec.message() + ")"};
    std::sort(files.begin(), files.end());
    out.insert(out.end(), files.begin(), files.end());
  }
  if (out.empty())
    return Error{dir + ": no dev/, val/ or test/ directory with a .csv file (expected MMLU's layout: "
                       "test/SUBJECT_test.csv, dev/SUBJECT_dev.csv, ...)"};
  return out;
}

Result<std::vector<McSubject>> load_mmlu(const std::string& dir) {
  Result<std::vector<std::string>> files = mmlu_files(dir);
  if (!files) return files.error();
  std::map<std::string, McSubject> by_name;
  for (const std::string& rel : *files) {
    const std::string split = rel.substr(0, rel.find('/'));
    const std::string name = subject_of(rel, split);
    Result<std::vector<McQuestion>> qs = read_questions((fs::path(dir) / rel).string());
    if (!qs) return qs.error();
    McSubject& s = by_name[name];
    s.name = name;
    std::vector<McQuestion>& into = split == "dev" ? s.dev : split == "val" ? s.val : s.test;
    into.insert(into.end(), std::make_move_iterator(qs->begin()), std::make_move_iterator(qs->end()));
  }
  std::vector<McSubject> out;
  for (auto& [_, s] : by_name) out.push_back(std::move(s));
  return out;
}

std::string mmlu_subject_text(const std::string& subject) {
  std::string out;
  size_t pos = 0;
  while (pos <= subject.size()) {
    size_t end = subject.find('_', pos);
    if (end == std::string::npos) end = subject.size();
    out += " " + subject.substr(pos, end - pos);
    pos = end + 1;
  }
  return out;
}

}  // namespace gb::engine

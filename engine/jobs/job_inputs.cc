// The file-naming parameters of a job, their digests and ${VAR} expansion
// (engine/jobs/job_inputs.h).
#include "engine/jobs/job_inputs.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "common/json_util.h"
#include "common/mapped_file.h"
#include "engine/jobs/dataset.h"
#include "engine/jobs/datasets/mmlu.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;

constexpr size_t kGgufDigestBytes = size_t{256} << 20;

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

// Errors of MappedFile name the path already.
Result<std::string> digest_file(const std::string& path, size_t max_bytes, std::string* into) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return Error{path + ": is a directory; expected a file"};
  Result<MappedFile> f = MappedFile::open(path);
  if (!f) return f.error();
  const size_t n = std::min(f->size(), max_bytes);
  into->append(std::to_string(f->size())).append(":");
  into->append(sha256_hex(std::string_view(reinterpret_cast<const char*>(f->data()), n)));
  into->append(";");
  return *into;
}

Result<std::string> digest_hf_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Error{dir + ": no such directory (hf:DIR names a model directory)"};
  std::string acc;
  if (auto r = digest_file((fs::path(dir) / "config.json").string(), SIZE_MAX, &acc); !r) return r.error();
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index, ec)) {
    if (auto r = digest_file(index.string(), SIZE_MAX, &acc); !r) return r.error();
  } else if (fs::exists(single, ec)) {
    Result<MappedFile> f = MappedFile::open(single.string());
    if (!f) return f.error();
    uint64_t n = 0;
    if (f->size() >= 8)
      for (int i = 7; i >= 0; --i) n = n << 8 | f->data()[i];
    const size_t header = static_cast<size_t>(std::min<uint64_t>(f->size(), 8 + std::min<uint64_t>(n, f->size())));
    acc += std::to_string(f->size()) + ":" +
           sha256_hex(std::string_view(reinterpret_cast<const char*>(f->data()), header)) + ";";
  } else {
    return Error{dir + ": no model.safetensors or model.safetensors.index.json"};
  }
  return acc;
}

}  // namespace

bool is_file_param(const std::string& name) { return name == "model" || name == "dataset" || name == "tokenizer"; }

std::string file_part(const std::string& param, const std::string& value) {
  if (param == "model") {
    if (starts_with(value, "hf:")) return value.substr(3);
    if (starts_with(value, "gguf:")) return value.substr(5);
    return "";
  }
  if (param == "dataset") {
    for (std::string_view p : {"text:", "wikitext:", "pg19:", "mmlu:"})
      if (starts_with(value, p)) return value.substr(p.size());
    if (starts_with(value, "jsonl:")) {
      const std::string rest = value.substr(6);
      const size_t colon = rest.rfind(':');
      return colon == std::string::npos ? rest : rest.substr(0, colon);
    }
    return "";
  }
  if (param == "tokenizer") return value;
  return "";
}

std::string with_file_part(const std::string& param, const std::string& value, const std::string& file) {
  const std::string old = file_part(param, value);
  if (old.empty()) return value;
  const size_t at = value.find(old, param == "tokenizer" ? 0 : value.find(':') + 1);
  if (at == std::string::npos) return value;
  return value.substr(0, at) + file + value.substr(at + old.size());
}

Result<std::string> input_digest(const std::string& param, const std::string& value) {
  const std::string file = file_part(param, value);
  if (file.empty()) return Error{value + ": names no file"};
  if (param == "dataset") {
    // Every file the dataset reads (a directory's books or CSV files), by relative name.
    Result<DatasetSpec> spec = parse_dataset_spec(value);
    if (!spec) return spec.error();
    Result<std::vector<std::string>> files = dataset_files(*spec);
    if (!files) return files.error();
    std::string acc;
    for (const std::string& f : *files) {
      if (files->size() > 1) acc += fs::path(f).lexically_relative(file).string() + "=";
      if (auto r = digest_file(f, SIZE_MAX, &acc); !r) return r.error();
    }
    if (spec->kind == DatasetSpec::Kind::kMmlu)
      if (Result<std::vector<McSubject>> m = load_mmlu(spec->file); !m) return m.error();
    return sha256_hex(acc).substr(0, 16);
  }
  Result<std::string> acc = (param == "model" && starts_with(value, "hf:")) ? digest_hf_dir(file) : [&] {
    std::string into;
    return digest_file(file, param == "model" ? kGgufDigestBytes : SIZE_MAX, &into);
  }();
  if (!acc) return acc.error();
  return sha256_hex(*acc).substr(0, 16);
}

Status expand_job_vars(nlohmann::json& params) {
  if (!params.is_object()) return Status::Ok();
  for (auto& [name, v] : params.items()) {
    if (!is_file_param(name) || !v.is_string()) continue;
    std::string s = v.get<std::string>();
    std::string out;
    size_t pos = 0;
    while (true) {
      const size_t open = s.find("${", pos);
      if (open == std::string::npos) break;
      const size_t close = s.find('}', open + 2);
      if (close == std::string::npos) break;
      const std::string var = s.substr(open + 2, close - open - 2);
      const char* val = std::getenv(var.c_str());
      if (val == nullptr) return Error{"$.params." + name + ": ${" + var + "} is not set in the environment"};
      out += s.substr(pos, open - pos) + val;
      pos = close + 1;
    }
    if (pos == 0) continue;
    v = out + s.substr(pos);
  }
  return Status::Ok();
}

}  // namespace gb::engine

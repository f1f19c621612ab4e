// Safetensors parsing, memory-mapped reading and writing (engine/weights/hf/safetensors.h).
#include "engine/weights/hf/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/json_parse.h"

namespace gb::engine {
namespace {

using nlohmann::json;

std::string known_dtypes() {
  std::string s;
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kI64, DType::kI32,
                  DType::kI16, DType::kI8, DType::kU64, DType::kU32, DType::kU16, DType::kU8,
                  DType::kBool, DType::kF8E4M3, DType::kF8E5M2})
    s += (s.empty() ? "" : ", ") + std::string(dtype_name(t));
  return s;
}

// A JSON value as a non-negative integer that fits in uint64.
bool as_u64(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

std::string offsets_string(uint64_t b, uint64_t e) {
  return "[" + std::to_string(b) + ", " + std::to_string(e) + "]";
}

// Parses one "NAME": {...} entry; the error text is relative ("tensor 'X': ...").
Result<SafetensorsEntry> parse_entry(const std::string& name, const json& v, uint64_t data_size) {
  const std::string t = "tensor '" + name + "': ";
  if (name.empty()) return Error{"a tensor has an empty name"};
  if (!v.is_object()) return Error{t + "expected an object {dtype, shape, data_offsets}, got " + v.dump()};
  for (const auto& [key, _] : v.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      return Error{t + "unexpected field '" + key + "' (expected dtype, shape, data_offsets)"};
  SafetensorsEntry e;
  e.name = name;

  auto dt = v.find("dtype");
  if (dt == v.end()) return Error{t + "missing field dtype"};
  if (!dt->is_string()) return Error{t + "dtype must be a string, got " + dt->dump()};
  std::optional<DType> dtype = dtype_from_name(dt->get<std::string>());
  if (!dtype) return Error{t + "unknown dtype " + dt->dump() + " (known: " + known_dtypes() + ")"};
  e.dtype = *dtype;

  auto sh = v.find("shape");
  if (sh == v.end()) return Error{t + "missing field shape"};
  if (!sh->is_array()) return Error{t + "shape must be an array of integers, got " + sh->dump()};
  // Every partial product must fit, so that numel() and nbytes() never overflow.
  uint64_t nbytes = dtype_size(e.dtype);
  for (const json& d : *sh) {
    uint64_t u;
    if (!as_u64(d, &u) || u > static_cast<uint64_t>(INT64_MAX))
      return Error{t + "shape must be an array of non-negative integers, got " + sh->dump()};
    e.shape.push_back(static_cast<int64_t>(u));
    if (__builtin_mul_overflow(nbytes, u, &nbytes) || nbytes > static_cast<uint64_t>(INT64_MAX))
      return Error{t + "shape " + sh->dump() + " has more bytes than fit in 63 bits"};
  }

  auto off = v.find("data_offsets");
  if (off == v.end()) return Error{t + "missing field data_offsets"};
  if (!off->is_array() || off->size() != 2 || !as_u64((*off)[0], &e.begin) || !as_u64((*off)[1], &e.end))
    return Error{t + "data_offsets must be [BEGIN, END] with non-negative integers, got " + off->dump()};
  if (e.begin > e.end)
    return Error{t + "data_offsets " + offsets_string(e.begin, e.end) + " end before they begin"};
  if (e.end > data_size)
    return Error{t + "data_offsets " + offsets_string(e.begin, e.end) +
                 " are out of range: the data buffer holds " + std::to_string(data_size) + " bytes"};
  if (e.end - e.begin != nbytes)
    return Error{t + "shape " + shape_string(e.shape) + " of " + std::string(dtype_name(e.dtype)) + " is " +
                 std::to_string(nbytes) + " bytes but data_offsets " + offsets_string(e.begin, e.end) +
                 " hold " + std::to_string(e.end - e.begin) + " bytes"};
  return e;
}

}  // namespace

Result<SafetensorsHeader> parse_safetensors_header(const uint8_t* file, size_t size, const std::string& where) {
  const std::string w = where + ": ";
  if (size < 8)
    return Error{w + "file is " + std::to_string(size) + " bytes, too short for the 8-byte header length"};
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | file[i];
  if (n > kMaxSafetensorsHeaderBytes)
    return Error{w + "header length " + std::to_string(n) + " exceeds the limit of " +
                 std::to_string(kMaxSafetensorsHeaderBytes) + " bytes (not a safetensors file?)"};
  if (n > size - 8)
    return Error{w + "header length " + std::to_string(n) + " is larger than the file (" + std::to_string(size) +
                 " bytes: truncated, or not a safetensors file)"};
  if (n < 2) return Error{w + "header length " + std::to_string(n) + " is too short for a JSON object"};

  SafetensorsHeader h;
  h.data_start = 8 + n;
  h.data_size = size - h.data_start;

  // Duplicate keys are refused (nlohmann would silently keep the last one), as are
  // nesting past 64 levels and numbers outside the range of a double.
  JsonLimits limits;
  limits.max_bytes = kMaxSafetensorsHeaderBytes;
  limits.refuse_duplicate_keys = true;
  Result<json> parsed =
      parse_json(std::string_view(reinterpret_cast<const char*>(file) + 8, n), where + ": header", limits);
  if (!parsed) return parsed.error();
  json root = std::move(*parsed);
  if (!root.is_object()) return Error{w + "header must be a JSON object, got " + std::string(root.type_name())};

  for (const auto& [name, v] : root.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) return Error{w + "__metadata__ must be an object of strings, got " + v.dump()};
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string()) return Error{w + "__metadata__ '" + k + "' must be a string, got " + s.dump()};
        h.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    Result<SafetensorsEntry> e = parse_entry(name, v, h.data_size);
    if (!e) return Error{w + e.message()};
    h.tensors.push_back(std::move(*e));
  }

  // The tensors must tile the buffer: contiguous, no overlap, nothing left over.
  std::stable_sort(h.tensors.begin(), h.tensors.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const SafetensorsEntry& e : h.tensors) {
    if (e.begin < expected)
      return Error{w + "tensor '" + e.name + "': data_offsets " + offsets_string(e.begin, e.end) +
                   " overlap tensor '" + prev->name + "' " + offsets_string(prev->begin, prev->end)};
    if (e.begin > expected)
      return Error{w + "tensor '" + e.name + "': data_offsets " + offsets_string(e.begin, e.end) +
                   " are not contiguous: bytes " + offsets_string(expected, e.begin) +
                   " of the data buffer belong to no tensor"};
    expected = e.end;
    prev = &e;
  }
  if (expected != h.data_size)
    return Error{w + "the data buffer holds " + std::to_string(h.data_size) + " bytes but the tensors end at byte " +
                 std::to_string(expected) + " (" + std::to_string(h.data_size - expected) +
                 " trailing bytes belong to no tensor)"};
  return h;
}

// ---- SafetensorsFile ----

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  Result<MappedFile> m = MappedFile::open(path);
  if (!m) return m.error();
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_ = std::move(*m);
  Result<SafetensorsHeader> h = parse_safetensors_header(f->map_.data(), f->map_.size(), path);
  if (!h) return h.error();
  f->header_ = std::move(*h);
  for (size_t i = 0; i < f->header_.tensors.size(); ++i) f->index_.emplace(f->header_.tensors[i].name, i);
  return f;
}

SafetensorsFile::~SafetensorsFile() = default;

const SafetensorsEntry* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView SafetensorsFile::view(const SafetensorsEntry& e) const {
  TensorView v;
  v.dtype = e.dtype;
  v.shape = e.shape;
  v.data = map_.data() + header_.data_start + e.begin;
  return v;
}

// ---- writing ----

std::string safetensors_header_json(const std::vector<SafetensorsWriteEntry>& tensors,
                                    const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  uint64_t offset = 0;
  for (const SafetensorsWriteEntry& t : tensors) {
    const uint64_t nbytes = t.tensor.nbytes();
    h[t.name] = {{"dtype", std::string(dtype_name(t.tensor.dtype))},
                 {"shape", t.tensor.shape},
                 {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  if (!metadata.empty()) h["__metadata__"] = metadata;
  return h.dump();
}

Status write_safetensors(const std::string& path, const std::vector<SafetensorsWriteEntry>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  for (const SafetensorsWriteEntry& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__")
      return Error{path + ": cannot write a tensor named '" + t.name + "'"};
    if (!names.insert(t.name).second) return Error{path + ": duplicate tensor name '" + t.name + "'"};
    for (int64_t d : t.tensor.shape)
      if (d < 0) return Error{path + ": tensor '" + t.name + "' has a negative dimension"};
    if (t.tensor.nbytes() > 0 && t.tensor.data == nullptr)
      return Error{path + ": tensor '" + t.name + "' has no data"};
  }
  std::string header = safetensors_header_json(tensors, metadata);
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error{path + ": cannot open for writing: " + std::strerror(errno)};
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const SafetensorsWriteEntry& t : tensors)
    if (t.tensor.nbytes() > 0)
      out.write(static_cast<const char*>(t.tensor.data), static_cast<std::streamsize>(t.tensor.nbytes()));
  out.close();
  if (!out) return Error{path + ": write failed"};
  return Status::Ok();
}

}  // namespace gb::engine

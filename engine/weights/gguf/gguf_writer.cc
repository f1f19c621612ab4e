// The GGUF writer (engine/weights/gguf/gguf_writer.h).
#include "engine/weights/gguf/gguf_writer.h"

#include <bit>
#include <cstring>
#include <fstream>

namespace gb::engine {

GgufWriteValue GgufWriteValue::u32(uint32_t v) {
  return {GgufValueType::kUint32, GgufValueType::kUint32, {v}, {}, {}, {}};
}
GgufWriteValue GgufWriteValue::u64(uint64_t v) {
  return {GgufValueType::kUint64, GgufValueType::kUint64, {v}, {}, {}, {}};
}
GgufWriteValue GgufWriteValue::i32(int32_t v) {
  return {GgufValueType::kInt32, GgufValueType::kInt32, {}, {v}, {}, {}};
}
GgufWriteValue GgufWriteValue::f32(float v) {
  return {GgufValueType::kFloat32, GgufValueType::kFloat32, {}, {}, {v}, {}};
}
GgufWriteValue GgufWriteValue::f64(double v) {
  return {GgufValueType::kFloat64, GgufValueType::kFloat64, {}, {}, {v}, {}};
}
GgufWriteValue GgufWriteValue::boolean(bool v) {
  return {GgufValueType::kBool, GgufValueType::kBool, {v ? 1u : 0u}, {}, {}, {}};
}
GgufWriteValue GgufWriteValue::string(std::string v) {
  return {GgufValueType::kString, GgufValueType::kString, {}, {}, {}, {std::move(v)}};
}
GgufWriteValue GgufWriteValue::string_array(std::vector<std::string> v) {
  return {GgufValueType::kArray, GgufValueType::kString, {}, {}, {}, std::move(v)};
}
GgufWriteValue GgufWriteValue::i32_array(std::vector<int32_t> v) {
  return {GgufValueType::kArray, GgufValueType::kInt32, {}, {v.begin(), v.end()}, {}, {}};
}
GgufWriteValue GgufWriteValue::f32_array(std::vector<float> v) {
  return {GgufValueType::kArray, GgufValueType::kFloat32, {}, {}, {v.begin(), v.end()}, {}};
}

namespace {

void put_le(std::string& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out += static_cast<char>(v >> (8 * i));
}
void put_string(std::string& out, std::string_view s) {
  put_le(out, s.size(), 8);
  out += s;
}

// Element i of a value of (element) type t.
void put_element(std::string& out, const GgufWriteValue& v, GgufValueType t, size_t i) {
  auto at = [&](const auto& vec) {
    return i < vec.size() ? vec[i] : typename std::decay_t<decltype(vec)>::value_type{};
  };
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kBool: put_le(out, at(v.uints), 1); break;
    case GgufValueType::kUint16: put_le(out, at(v.uints), 2); break;
    case GgufValueType::kUint32: put_le(out, at(v.uints), 4); break;
    case GgufValueType::kUint64: put_le(out, at(v.uints), 8); break;
    case GgufValueType::kInt8: put_le(out, static_cast<uint64_t>(at(v.ints)), 1); break;
    case GgufValueType::kInt16: put_le(out, static_cast<uint64_t>(at(v.ints)), 2); break;
    case GgufValueType::kInt32: put_le(out, static_cast<uint64_t>(at(v.ints)), 4); break;
    case GgufValueType::kInt64: put_le(out, static_cast<uint64_t>(at(v.ints)), 8); break;
    case GgufValueType::kFloat32: put_le(out, std::bit_cast<uint32_t>(static_cast<float>(at(v.floats))), 4); break;
    case GgufValueType::kFloat64: put_le(out, std::bit_cast<uint64_t>(at(v.floats)), 8); break;
    case GgufValueType::kString: put_string(out, at(v.strings)); break;
    case GgufValueType::kArray: break;  // not written
  }
}

size_t element_count(const GgufWriteValue& v) {
  switch (v.element_type) {
    case GgufValueType::kString: return v.strings.size();
    case GgufValueType::kFloat32: case GgufValueType::kFloat64: return v.floats.size();
    case GgufValueType::kInt8: case GgufValueType::kInt16: case GgufValueType::kInt32: case GgufValueType::kInt64:
      return v.ints.size();
    default: return v.uints.size();
  }
}

}  // namespace

std::string gguf_file_bytes(const GgufWriteMetadata& metadata, const std::vector<GgufWriteTensor>& tensors) {
  uint64_t alignment = kGgufDefaultAlignment;
  for (const auto& [key, v] : metadata)
    if (key == "general.alignment" && v.type == GgufValueType::kUint32 && !v.uints.empty() && v.uints[0] != 0)
      alignment = v.uints[0];
  auto align = [&](uint64_t x) { return (x + alignment - 1) / alignment * alignment; };

  std::string out;
  put_le(out, kGgufMagic, 4);
  put_le(out, 3, 4);
  put_le(out, tensors.size(), 8);
  put_le(out, metadata.size(), 8);
  for (const auto& [key, v] : metadata) {
    put_string(out, key);
    put_le(out, static_cast<uint32_t>(v.type), 4);
    if (v.type == GgufValueType::kArray) {
      put_le(out, static_cast<uint32_t>(v.element_type), 4);
      const size_t n = element_count(v);
      put_le(out, n, 8);
      for (size_t i = 0; i < n; ++i) put_element(out, v, v.element_type, i);
    } else {
      put_element(out, v, v.type, 0);
    }
  }
  std::vector<uint64_t> offsets;
  uint64_t next = 0;
  for (const GgufWriteTensor& t : tensors) {
    const uint64_t off = t.offset.value_or(align(next));
    offsets.push_back(off);
    next = off + t.bytes.size();
    put_string(out, t.name);
    put_le(out, t.ne.size(), 4);
    for (int64_t d : t.ne) put_le(out, static_cast<uint64_t>(d), 8);
    put_le(out, t.type, 4);
    put_le(out, off, 8);
  }
  const uint64_t data_start = align(out.size());
  out.resize(data_start, '\0');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t at = data_start + offsets[i];
    if (out.size() < at + tensors[i].bytes.size()) out.resize(at + tensors[i].bytes.size(), '\0');
    if (!tensors[i].bytes.empty()) std::memcpy(out.data() + at, tensors[i].bytes.data(), tensors[i].bytes.size());
  }
  return out;
}

Status write_gguf(const std::string& path, const GgufWriteMetadata& metadata,
                  const std::vector<GgufWriteTensor>& tensors) {
  const std::string bytes = gguf_file_bytes(metadata, tensors);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error{path + ": cannot open for writing: " + std::strerror(errno)};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Error{path + ": write failed"};
  return Status::Ok();
}

}  // namespace gb::engine

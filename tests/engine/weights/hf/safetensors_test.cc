// Safetensors: write -> read round trips, the f16/bf16 conversions, and every kind of
// corrupt file giving an error that names the file and the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

#include "engine/weights/hf/safetensors.h"
#include "engine/weights/tensor_view.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;

using gb::test_support::TempDir;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A file from a header text and `data` bytes; `len` overrides the header length.
std::string raw_file(const std::string& header, size_t data, std::optional<uint64_t> len = std::nullopt) {
  const uint64_t n = len.value_or(header.size());
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s + header + std::string(data, '\x01');
}

// The error of opening `bytes` as a file, "" when it opens.
std::string open_error(const TempDir& dir, const std::string& bytes) {
  const std::string path = dir.file("bad.safetensors");
  write_bytes(path, bytes);
  auto f = SafetensorsFile::open(path);
  return f ? "" : f.message();
}

TEST(Safetensors, RoundTripEveryFloatDtypeAndMore) {
  TempDir dir;
  std::vector<float> f32 = {1.5f, -2.25f, 0.0f, 3e-5f, 65504.0f, -1e30f};
  std::vector<uint16_t> f16, bf16;
  for (float x : f32) {
    f16.push_back(kernels::f32_to_f16(x));
    bf16.push_back(kernels::f32_to_bf16(x));
  }
  std::vector<int64_t> i64 = {1, -2, 3};
  std::vector<SafetensorsWriteEntry> tensors = {
      {"a.f32", {DType::kF32, {2, 3}, f32.data()}},
      {"b.f16", {DType::kF16, {3, 2}, f16.data()}},
      {"c.bf16", {DType::kBF16, {6}, bf16.data()}},
      {"d.i64", {DType::kI64, {3}, i64.data()}},
      {"e.empty", {DType::kF32, {0, 4}, nullptr}},
      {"f.scalar", {DType::kF32, {}, f32.data()}},
  };
  const std::string path = dir.file("m.safetensors");
  ASSERT_TRUE(write_safetensors(path, tensors, {{"format", "pt"}}).ok());

  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  EXPECT_EQ((*f)->header().data_start % 8, 0u);
  ASSERT_EQ((*f)->tensors().size(), tensors.size());
  for (const auto& t : tensors) {
    const SafetensorsEntry* e = (*f)->find(t.name);
    ASSERT_NE(e, nullptr) << t.name;
    EXPECT_EQ(e->dtype, t.tensor.dtype) << t.name;
    EXPECT_EQ(e->shape, t.tensor.shape) << t.name;
    const TensorView v = (*f)->view(*e);
    ASSERT_EQ(v.nbytes(), t.tensor.nbytes()) << t.name;
    if (v.nbytes() > 0) {
      EXPECT_EQ(std::memcmp(v.data, t.tensor.data, v.nbytes()), 0) << t.name;
    }
  }
  EXPECT_EQ((*f)->find("nope"), nullptr);
  // Values come back through the conversions.
  EXPECT_EQ(to_f32((*f)->view(*(*f)->find("a.f32"))), f32);
  const std::vector<float> h = to_f32((*f)->view(*(*f)->find("b.f16")));
  const std::vector<float> b = to_f32((*f)->view(*(*f)->find("c.bf16")));
  for (size_t i = 0; i < f32.size(); ++i) {
    if (std::fabs(f32[i]) <= 65504) {
      EXPECT_NEAR(h[i], f32[i], std::fabs(f32[i]) * 1e-3 + 1e-7) << i;
    }
    EXPECT_NEAR(b[i], f32[i], std::fabs(f32[i]) * 8e-3) << i;
  }
  EXPECT_TRUE(std::isinf(h[5]));  // -1e30 overflows f16
}

TEST(Safetensors, EmptyFileWithNoTensors) {
  TempDir dir;
  const std::string path = dir.file("empty.safetensors");
  ASSERT_TRUE(write_safetensors(path, {}).ok());
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_TRUE((*f)->tensors().empty());
}

TEST(Safetensors, WriterRefusesBadNames) {
  TempDir dir;
  float x = 1;
  const std::string path = dir.file("w.safetensors");
  Status s = write_safetensors(path, {{"a", {DType::kF32, {1}, &x}}, {"a", {DType::kF32, {1}, &x}}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("duplicate tensor name 'a'"), std::string::npos) << s.message();
  EXPECT_FALSE(write_safetensors(path, {{"__metadata__", {DType::kF32, {1}, &x}}}).ok());
  EXPECT_FALSE(write_safetensors(path, {{"", {DType::kF32, {1}, &x}}}).ok());
  EXPECT_FALSE(write_safetensors(dir.file("no/such/dir/x.safetensors"), {}).ok());
}

TEST(Conversions, FirstNonFinite) {
  std::vector<float> f = {1, 2, NAN, INFINITY};
  EXPECT_EQ(first_non_finite({DType::kF32, {4}, f.data()}), 2);
  EXPECT_EQ(first_non_finite({DType::kF32, {2}, f.data()}), -1);
  std::vector<uint16_t> h = {kernels::f32_to_f16(1), kernels::f32_to_f16(65504), kernels::f32_to_f16(1e6f)};
  EXPECT_EQ(first_non_finite({DType::kF16, {3}, h.data()}), 2);
  std::vector<uint16_t> b = {kernels::f32_to_bf16(1e30f), kernels::f32_to_bf16(-INFINITY)};
  EXPECT_EQ(first_non_finite({DType::kBF16, {2}, b.data()}), 1);
}

struct Corruption {
  const char* what;
  std::string bytes;
  std::vector<std::string> expect;  // substrings of the error
};

TEST(Safetensors, EveryCorruptionIsAClearError) {
  TempDir dir;
  const std::string t2 = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::vector<Corruption> cases = {
      {"short", std::string(5, '\0'), {"5 bytes", "too short"}},
      {"length past the file", raw_file(t2, 8, t2.size() + 9), {"header length", "larger than the file"}},
      {"length far past the file", raw_file(t2, 8, uint64_t{1} << 40), {"header length", "exceeds the limit"}},
      {"length one too long", raw_file(t2, 8, t2.size() + 1), {"header: line 1 column", "syntax error"}},
      {"length too short", raw_file(t2, 8, t2.size() - 3), {"header: line 1 column", "syntax error"}},
      {"zero length", raw_file("", 0, 0), {"header length 0"}},
      {"not JSON", raw_file("hello world!", 0), {"header: line 1 column", "syntax error"}},
      {"nested 100,000 deep", raw_file(std::string(100000, '[') + std::string(100000, ']'), 0),
       {"header: $", "nested deeper than 64 levels"}},
      {"number past a double", raw_file(R"({"w":{"dtype":"F32","shape":[1e400],"data_offsets":[0,8]}})", 8),
       {"header: $.w.shape[0]: number 1e400 is outside the range of a double"}},
      {"not an object", raw_file("[1, 2, 3]", 0), {"must be a JSON object"}},
      {"unknown dtype", raw_file(R"({"w":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "unknown dtype \"F17\""}},
      {"dtype not a string", raw_file(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "dtype must be a string"}},
      {"shape x dtype != bytes", raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "shape [3] of F32 is 12 bytes", "hold 8 bytes"}},
      {"wrong dtype size", raw_file(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "4 bytes"}},
      {"negative dim", raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "non-negative integers"}},
      {"float dim", raw_file(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "non-negative integers"}},
      {"huge shape", raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "more bytes than fit"}},
      {"missing shape", raw_file(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "missing field shape"}},
      {"extra field", raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
       {"tensor 'w'", "unexpected field 'x'"}},
      {"entry not an object", raw_file(R"({"w":[1]})", 0), {"tensor 'w'", "expected an object"}},
      {"offsets past the buffer (truncated data)",
       raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
       {"tensor 'w'", "out of range", "holds 4 bytes"}},
      {"offsets reversed", raw_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
       {"tensor 'w'", "end before they begin"}},
      {"offsets malformed", raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8),
       {"tensor 'w'", "data_offsets must be"}},
      {"overlap",
       raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                12),
       {"tensor 'b'", "overlap tensor 'a'"}},
      {"gap",
       raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                12),
       {"tensor 'b'", "not contiguous", "[4, 8]"}},
      {"gap at the start", raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       {"tensor 'a'", "not contiguous"}},
      {"trailing bytes", raw_file(t2, 12), {"trailing bytes"}},
      {"duplicate name",
       raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                8),
       {"header: $.w: duplicate key"}},
      {"duplicate field", raw_file(R"({"w":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}})", 8),
       {"header: $.w.dtype: duplicate key"}},
      {"bad metadata", raw_file(R"({"__metadata__":{"a":1}})", 0), {"__metadata__ 'a' must be a string"}},
      {"metadata not an object", raw_file(R"({"__metadata__":[]})", 0), {"__metadata__ must be an object"}},
      {"invalid UTF-8", raw_file("{\"w\xff\":1}", 0), {"header: line 1 column", "invalid string"}},
  };
  for (const Corruption& c : cases) {
    const std::string err = open_error(dir, c.bytes);
    ASSERT_FALSE(err.empty()) << c.what;
    EXPECT_EQ(err.rfind(dir.file("bad.safetensors") + ": ", 0), 0u) << c.what << ": " << err;
    for (const std::string& e : c.expect) EXPECT_NE(err.find(e), std::string::npos) << c.what << ": " << err;
  }
  // The error-free baselines of the cases above do open.
  EXPECT_EQ(open_error(dir, raw_file(t2, 8)), "");
  EXPECT_EQ(open_error(dir, raw_file(t2 + "    ", 8)), "");  // space padding is fine
}

TEST(Safetensors, TruncatedAndMissingFiles) {
  TempDir dir;
  std::vector<float> a(16, 1.0f), b(16, 2.0f);
  const std::string path = dir.file("m.safetensors");
  ASSERT_TRUE(write_safetensors(path, {{"a", {DType::kF32, {16}, a.data()}}, {"b", {DType::kF32, {4, 4}, b.data()}}}).ok());
  const std::string whole = read_bytes(path);
  // Data cut short: the last tensor runs past the end.
  std::string err = open_error(dir, whole.substr(0, whole.size() - 4));
  EXPECT_NE(err.find("tensor 'b'"), std::string::npos) << err;
  EXPECT_NE(err.find("out of range"), std::string::npos) << err;
  // Cut inside the header.
  err = open_error(dir, whole.substr(0, 20));
  EXPECT_NE(err.find("larger than the file"), std::string::npos) << err;
  err = open_error(dir, "");
  EXPECT_NE(err.find("0 bytes"), std::string::npos) << err;
  auto f = SafetensorsFile::open(dir.file("absent.safetensors"));
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("absent.safetensors: cannot open"), std::string::npos) << f.message();
  f = SafetensorsFile::open(dir.file(""));  // the directory itself
  ASSERT_FALSE(f.ok());
}

// Random byte mutations of a valid file: every result is a header whose tensors lie
// inside the file, or an error; never a crash (the fuzz target does this at scale).
TEST(Safetensors, MutatedFilesNeverCrash) {
  std::vector<float> a(6, 1.0f);
  std::vector<uint16_t> b(5, 0x3c00);
  const std::string header = safetensors_header_json(
      {{"model.layers.0.w", {DType::kF32, {2, 3}, a.data()}}, {"model.b", {DType::kBF16, {5}, b.data()}}},
      {{"format", "pt"}});
  const std::string valid = raw_file(header, 34);
  ASSERT_TRUE(parse_safetensors_header(reinterpret_cast<const uint8_t*>(valid.data()), valid.size(), "x").ok());
  std::mt19937 rng(7);
  int ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string m = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % m.size();
      switch (rng() % 4) {
        case 0: m[pos] = static_cast<char>(rng()); break;
        case 1: m[pos] = "0123456789[]{}\",:-e"[rng() % 19]; break;
        case 2: m.erase(pos, 1); break;
        default: m.insert(pos, 1, static_cast<char>(rng())); break;
      }
    }
    if (rng() % 8 == 0) m.resize(rng() % m.size());
    auto h = parse_safetensors_header(reinterpret_cast<const uint8_t*>(m.data()), m.size(), "mutant");
    if (!h.ok()) {
      ASSERT_EQ(h.message().rfind("mutant: ", 0), 0u) << h.message();
      continue;
    }
    ++ok;
    for (const SafetensorsEntry& t : h->tensors) {
      ASSERT_LE(h->data_start + t.end, m.size());
      ASSERT_EQ(t.end - t.begin, static_cast<uint64_t>(shape_numel(t.shape)) * dtype_size(t.dtype));
    }
  }
  EXPECT_GT(ok, 0);  // some mutations (e.g. in a metadata value) stay valid
}

}  // namespace
}  // namespace gb::engine

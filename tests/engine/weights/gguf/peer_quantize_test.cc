// gridbench's GGUF quantizers and dequantizers against llama.cpp's own files: every
// tensor that llama-quantize wrote into ../shared/peers/llama-gguf/peer-llama-<type>.gguf
// is quantized again here from the f16 file's tensor, and must come out byte for
// byte the same; and its blocks dequantize to values close to the weights they
// came from.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/weights/gguf/gguf_file.h"
#include "kernels/codecs/packed_matrix.h"
#include "kernels/quantize/ggml_quantize.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
using kernels::WeightCodec;

const std::string kPeers = std::string(GB_SOURCE_DIR) + "/../shared/peers/llama-gguf";

std::optional<WeightCodec> codec_of(uint32_t ggml_type) {
  switch (static_cast<GgmlType>(ggml_type)) {
    case GgmlType::kQ8_0: return WeightCodec::kQ8_0;
    case GgmlType::kQ4_0: return WeightCodec::kQ4_0;
    case GgmlType::kQ4_1: return WeightCodec::kQ4_1;
    case GgmlType::kQ5_0: return WeightCodec::kQ5_0;
    case GgmlType::kQ5_1: return WeightCodec::kQ5_1;
    case GgmlType::kQ2_K: return WeightCodec::kQ2_K;
    case GgmlType::kQ3_K: return WeightCodec::kQ3_K;
    case GgmlType::kQ4_K: return WeightCodec::kQ4_K;
    case GgmlType::kQ5_K: return WeightCodec::kQ5_K;
    case GgmlType::kQ6_K: return WeightCodec::kQ6_K;
    default: return std::nullopt;
  }
}

class PeerQuantize : public ::testing::TestWithParam<std::string> {};

TEST_P(PeerQuantize, EveryTensorQuantizesToLlamaCppsBytes) {
  const std::string f16_path = kPeers + "/peer-llama-f16.gguf";
  const std::string q_path = kPeers + "/peer-llama-" + GetParam() + ".gguf";
  if (!fs::exists(f16_path) || !fs::exists(q_path))
    GTEST_SKIP() << "peer GGUF files not found in " << kPeers << " (../shared is absent)";
  auto f16 = GgufFile::open(f16_path);
  auto q = GgufFile::open(q_path);
  ASSERT_TRUE(f16.ok()) << f16.message();
  ASSERT_TRUE(q.ok()) << q.message();
  std::map<WeightCodec, int> checked;
  for (const GgufTensorInfo& t : (*q)->tensors()) {
    const std::optional<WeightCodec> codec = codec_of(t.type);
    if (!codec) continue;
    const GgufTensorInfo* src = (*f16)->tensor(t.name);
    ASSERT_NE(src, nullptr) << t.name;
    Result<TensorView> v = (*f16)->view(*src);
    ASSERT_TRUE(v.ok()) << v.message();
    const std::vector<float> x = to_f32(*v);
    const int64_t cols = t.ne[0], rows = static_cast<int64_t>(x.size()) / cols;
    const size_t row_bytes = kernels::codec_row_bytes(*codec, cols);
    ASSERT_EQ(row_bytes * static_cast<size_t>(rows), t.nbytes) << t.name;
    std::vector<uint8_t> mine(t.nbytes);
    for (int64_t r = 0; r < rows; ++r)
      kernels::ggml_quantize_row(*codec, x.data() + r * cols, mine.data() + r * row_bytes, cols);
    const uint8_t* theirs = (*q)->data(t);
    size_t first_diff = mine.size();
    for (size_t i = 0; i < mine.size(); ++i)
      if (mine[i] != theirs[i]) {
        first_diff = i;
        break;
      }
    EXPECT_EQ(first_diff, mine.size()) << t.name << " (" << kernels::codec_name(*codec) << "): first differing byte "
                                       << first_diff << " of " << mine.size() << ", row "
                                       << first_diff / row_bytes;
    ++checked[*codec];
  }
  EXPECT_FALSE(checked.empty()) << q_path << " holds no tensor of a quantized type";
}

INSTANTIATE_TEST_SUITE_P(LlamaQuantize, PeerQuantize,
                         ::testing::Values("q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q6_k", "q4_k_m"));

TEST(PeerDequantize, BlocksDecodeToTheirDefinition) {
  // llama.cpp's blocks, dequantized by gridbench, come back close to the f16 weights
  // they were made from, within what each type's bits allow (relative RMS error): a
  // misread layout (a nibble order, a scale packing) gives errors of order 1.
  const std::map<std::string, double> max_rel = {{"q8_0", 0.01}, {"q6_k", 0.03}, {"q5_0", 0.08}, {"q5_1", 0.08},
                                                 {"q4_0", 0.15}, {"q4_1", 0.15}, {"q4_k_m", 0.15}};
  for (const auto& [type, tol] : max_rel) {
    const std::string f16_path = kPeers + "/peer-llama-f16.gguf", q_path = kPeers + "/peer-llama-" + type + ".gguf";
    if (!fs::exists(f16_path) || !fs::exists(q_path)) GTEST_SKIP() << "peer GGUF files not found in " << kPeers;
    auto f16 = GgufFile::open(f16_path);
    auto q = GgufFile::open(q_path);
    ASSERT_TRUE(f16.ok() && q.ok());
    for (const GgufTensorInfo& t : (*q)->tensors()) {
      const std::optional<WeightCodec> codec = codec_of(t.type);
      if (!codec) continue;
      auto ref = (*f16)->view(*(*f16)->tensor(t.name));
      ASSERT_TRUE(ref.ok());
      const std::vector<float> want = to_f32(*ref);
      TensorView packed;
      packed.packed = *codec;
      packed.shape = {static_cast<int64_t>(want.size()) / t.ne[0], t.ne[0]};
      packed.data = (*q)->data(t);
      const std::vector<float> got = to_f32(packed);
      double num = 0, den = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += double{want[i]} * want[i];
      }
      EXPECT_LT(std::sqrt(num / den), tol) << type << " " << t.name;
    }
  }
}

}  // namespace
}  // namespace gb::engine

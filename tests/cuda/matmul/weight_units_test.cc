// The decoders the CUDA linear kernels run, on the host (they are __host__
// __device__, so this needs no GPU): for every case of matmul_cases.h, every unit of
// every row (weight_units.h, the generic kernel's and the prefill dequantizer's) and
// every piece of the tuned GEMV (gemv_pieces.h) equals dequantize_row bit for bit,
// i.e. the kernels index each format exactly as the CPU reference does; and
// gemv_piece_fits takes exactly the tuned codecs whose rows are whole pieces.
#include "kernels/cuda/matmul/weight_units.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/cuda/matmul/gemv_pieces.h"
#include "tests/cuda/matmul/matmul_cases.h"

namespace gb::kernels::cuda {
namespace {

using testing::matmul_cases;
using testing::MatmulCase;

constexpr int64_t kRows = 5;

template <WeightCodec C>
void expect_pieces(const PackedMatrix& m, const std::vector<float>& ref, const std::string& what) {
  constexpr int E = Piece<C>::kElems;
  ASSERT_EQ(m.cols % E, 0) << what;
  float v[E];
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t p = 0; p < m.cols / E; ++p) {
      Piece<C>::decode(m, r, p, v);
      for (int i = 0; i < E; ++i) {
        const float want = ref[static_cast<size_t>(r * m.cols + p * E + i)];
        ASSERT_EQ(std::memcmp(&v[i], &want, 4), 0)
            << what << ": row " << r << " piece " << p << " element " << i << ": " << v[i] << " != " << want;
      }
    }
}

void expect_pieces_of(const PackedMatrix& m, const std::vector<float>& ref, const std::string& what) {
  switch (m.codec) {
    case WeightCodec::kF32: return expect_pieces<WeightCodec::kF32>(m, ref, what);
    case WeightCodec::kF16: return expect_pieces<WeightCodec::kF16>(m, ref, what);
    case WeightCodec::kBF16: return expect_pieces<WeightCodec::kBF16>(m, ref, what);
    case WeightCodec::kInt8: return expect_pieces<WeightCodec::kInt8>(m, ref, what);
    case WeightCodec::kFp8: return expect_pieces<WeightCodec::kFp8>(m, ref, what);
    case WeightCodec::kInt4: return expect_pieces<WeightCodec::kInt4>(m, ref, what);
    case WeightCodec::kNf4: return expect_pieces<WeightCodec::kNf4>(m, ref, what);
    case WeightCodec::kFp4: return expect_pieces<WeightCodec::kFp4>(m, ref, what);
    case WeightCodec::kQ8_0: return expect_pieces<WeightCodec::kQ8_0>(m, ref, what);
    case WeightCodec::kQ4_0: return expect_pieces<WeightCodec::kQ4_0>(m, ref, what);
    case WeightCodec::kQ4_K: return expect_pieces<WeightCodec::kQ4_K>(m, ref, what);
    case WeightCodec::kQ6_K: return expect_pieces<WeightCodec::kQ6_K>(m, ref, what);
    default: FAIL() << what << ": gemv_piece_fits took a codec without a Piece";
  }
}

bool tuned_codec(WeightCodec c) {
  switch (c) {
    case WeightCodec::kF32:
    case WeightCodec::kF16:
    case WeightCodec::kBF16:
    case WeightCodec::kInt8:
    case WeightCodec::kFp8:
    case WeightCodec::kInt4:
    case WeightCodec::kNf4:
    case WeightCodec::kFp4:
    case WeightCodec::kQ8_0:
    case WeightCodec::kQ4_0:
    case WeightCodec::kQ4_K:
    case WeightCodec::kQ6_K: return true;
    default: return false;
  }
}

TEST(CudaWeightUnits, UnitsAndPiecesEqualDequantizeRow) {
  uint64_t seed = 100;
  for (const MatmulCase& c : matmul_cases())
    for (int64_t K : c.ks) {
      const std::string what = c.name + " K=" + std::to_string(K);
      const std::vector<float> w = testing::normal_values(kRows * K, ++seed);
      Result<QuantizedMatrix> q = quantize_matrix(c.spec, w.data(), kRows, K, what);
      ASSERT_TRUE(q.ok()) << q.message();
      // Rows 16-byte aligned on the host too (std::vector's storage is), as on the device.
      const PackedMatrix m = q->view();
      const std::vector<float> ref = dequantize_matrix(*q);
      ASSERT_EQ(ref.size(), static_cast<size_t>(kRows * K));
      float buf[kMaxUnit];
      for (int64_t r = 0; r < kRows; ++r) {
        int64_t k = 0;
        for (int64_t u = 0; u < units_per_row(m); ++u) {
          const int n = decode_unit(m, r, u, buf);
          ASSERT_GT(n, 0) << what;
          for (int i = 0; i < n; ++i, ++k) {
            const float want = ref[static_cast<size_t>(r * K + k)];
            ASSERT_EQ(std::memcmp(&buf[i], &want, 4), 0)
                << what << ": row " << r << " unit " << u << " element " << i << ": " << buf[i] << " != " << want;
          }
        }
        ASSERT_EQ(k, K) << what << ": the units cover the row";
      }
      const bool fits = gemv_piece_fits(m);
      if (fits) {
        EXPECT_TRUE(tuned_codec(m.codec)) << what;
        expect_pieces_of(m, ref, what);
      }
      // Every tuned codec at its larger shape (whole pieces, aligned rows) is taken.
      if (tuned_codec(m.codec) && K >= 256 && reinterpret_cast<uintptr_t>(m.codes) % 16 == 0) {
        EXPECT_TRUE(fits) << what << ": the tuned GEMV should take it";
      }
      if (c.name == "int4_g10" || c.name == "fp8_g8" || K == 97) {
        EXPECT_FALSE(fits) << what;
      }
    }
}

}  // namespace
}  // namespace gb::kernels::cuda

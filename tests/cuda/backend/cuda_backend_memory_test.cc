// The CUDA backend's memory and error paths: without a GPU, making one is an error
// value (no crash) that says why; with one, the account by category is exact and
// agrees with cudaMemGetInfo, an allocation larger than the device is an error
// naming the bytes asked and free after which the backend still works, uploads and
// downloads at offsets round-trip, and a bad launch comes back from take_error().
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/cuda/backend/backend_pair.h"
#include "tests/cuda/gpu_test_util.h"

namespace gb::testing {
namespace {

using engine::MemoryUse;
using engine::MemoryUseScope;

TEST(CudaBackendMemory, WithoutAGpuMakingOneIsAnErrorThatSaysWhy) {
  if (gpu_present()) GTEST_SKIP() << "a GPU is present: this test is for machines without one";
  Result<std::unique_ptr<engine::CudaBackend>> b = engine::make_cuda_backend(0);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.message().find("cuda:0"), std::string::npos) << b.message();
  EXPECT_FALSE(engine::cuda_device_free_memory(0).ok());
  ASSERT_TRUE(engine::cuda_unavailable(0).has_value());
  EXPECT_NE(engine::cuda_unavailable(0)->find("cuda:0"), std::string::npos);
  EXPECT_FALSE(engine::device_memory_shortfall(int64_t{1} << 40, 0, "x").has_value())
      << "an unreadable free memory is not a shortfall";
}

TEST(CudaBackendMemory, NoSuchDeviceIsAnError) {
  Result<std::unique_ptr<engine::CudaBackend>> b = engine::make_cuda_backend(4096);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.message().find("cuda:4096"), std::string::npos) << b.message();
}

TEST(CudaBackendMemory, AccountByCategoryIsExactAndAgreesWithTheDevice) {
  GB_REQUIRE_GPU();
  auto b = cuda_backend_or_die();
  const engine::DeviceMemoryAccount a0 = b->memory_account();
  EXPECT_EQ(a0.live_total, 0u);
  std::unique_ptr<Buffer> w, kv, ws;
  {
    MemoryUseScope s(*b, MemoryUse::kWeights);
    w = b->alloc((size_t{256} << 20) + 1).value();  // rounded up to 256 bytes
  }
  {
    MemoryUseScope s(*b, MemoryUse::kKvCache);
    kv = b->alloc(1000).value();
  }
  EXPECT_EQ(b->memory_use(), MemoryUse::kWorkspace) << "the scopes restore the category";
  ws = b->alloc(256).value();
  const engine::DeviceMemoryAccount a1 = b->memory_account();
  EXPECT_EQ(a1.live[0], (size_t{256} << 20) + 256);
  EXPECT_EQ(a1.live[1], 1024u);
  EXPECT_EQ(a1.live[2], 256u);
  EXPECT_EQ(a1.live_total, a1.live[0] + a1.live[1] + a1.live[2]);
  EXPECT_EQ(w->size(), (size_t{256} << 20) + 1) << "a buffer's size is what was asked";
  // The device saw at least the 256 MiB go (other processes may take more meanwhile).
  EXPECT_GE(a0.device_free, a1.device_free + (uint64_t{255} << 20));
  EXPECT_EQ(a1.device_total, a0.device_total);
  w.reset();
  const engine::DeviceMemoryAccount a2 = b->memory_account();
  EXPECT_EQ(a2.live[0], 0u);
  EXPECT_EQ(a2.peak[0], (size_t{256} << 20) + 256) << "the peak stays";
  EXPECT_EQ(a2.peak_total, a1.live_total);
  b->reset_peak();
  EXPECT_EQ(b->memory_account().peak_total, a2.live_total);
}

TEST(CudaBackendMemory, TooLargeAnAllocationIsAnErrorAndTheBackendStillWorks) {
  GB_REQUIRE_GPU();
  auto b = cuda_backend_or_die();
  const engine::DeviceMemoryAccount a = b->memory_account();
  Result<std::unique_ptr<Buffer>> huge = b->alloc(static_cast<size_t>(a.device_total) * 2);
  ASSERT_FALSE(huge.ok());
  const std::string m = huge.message();
  EXPECT_NE(m.find(std::string(engine::kDeviceOutOfMemory)), std::string::npos) << m;
  EXPECT_NE(m.find(std::to_string(a.device_total * 2)), std::string::npos) << m << ": names the bytes asked";
  EXPECT_NE(m.find("free of"), std::string::npos) << m;
  EXPECT_TRUE(b->take_error().ok()) << "a refused allocation is not an op error";
  // Still usable: a round trip and an op.
  Arena ar(*b);
  const std::vector<float> x = random_normal(1000, 1), y = random_normal(1000, 2);
  float* xd = ar.put(x);
  b->add(xd, ar.put(y), 1000);
  const std::vector<float> got = ar.get(xd, 1000);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], x[i] + y[i]) << i;
  EXPECT_TRUE(b->take_error().ok());
}

TEST(CudaBackendMemory, UploadDownloadAtOffsets) {
  GB_REQUIRE_GPU();
  auto b = cuda_backend_or_die();
  std::unique_ptr<Buffer> buf = b->alloc(4096).value();
  std::vector<uint8_t> src(4096);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7 + 3);
  b->upload(*buf, 0, src.data(), src.size());
  std::vector<uint8_t> patch(100, 0xAB);
  b->upload(*buf, 1001, patch.data(), patch.size());
  std::vector<uint8_t> back(4096);
  b->download(*buf, 0, back.data(), back.size());
  for (size_t i = 0; i < src.size(); ++i)
    ASSERT_EQ(back[i], i >= 1001 && i < 1101 ? 0xAB : src[i]) << i;
  std::vector<uint8_t> part(10);
  b->download(*buf, 4086, part.data(), part.size());
  for (size_t i = 0; i < part.size(); ++i) EXPECT_EQ(part[i], src[4086 + i]);
  EXPECT_TRUE(b->take_error().ok());
}

TEST(CudaBackendMemory, ABadLaunchComesBackFromTakeError) {
  GB_REQUIRE_GPU();
  auto b = cuda_backend_or_die();
  Arena ar(*b);
  float* x = ar.zeros(64);
  const std::vector<float> f(64, 1.0f);
  const int64_t pos = 3;
  b->rope(x, 1, 64, 1, 32, &pos, engine::RopeParams{64, f.data()});  // rot_dim 64 > head_dim 32
  b->synchronize();
  Status s = b->take_error();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("rot_dim"), std::string::npos) << s.message();
  EXPECT_TRUE(b->take_error().ok()) << "taken once";
}

}  // namespace
}  // namespace gb::testing

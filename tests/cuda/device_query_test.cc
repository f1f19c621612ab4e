// The CUDA device probe (kernels/cuda/device_query.cu): on a machine without a GPU it
// finds none and the measurements answer with an error value rather than crash; on
// one with a GPU it finds it and measures a copy bandwidth and a bf16 matmul rate in
// a plausible range.
#include <gtest/gtest.h>

#include "kernels/device_info.h"
#include "tests/cuda/gpu_test_util.h"

namespace gb::kernels {
namespace {

TEST(CudaDeviceQuery, BuiltWithCuda) { EXPECT_TRUE(built_with_cuda()); }

TEST(CudaDeviceQuery, NoDeviceMeansErrorsNotCrashes) {
  if (gb::testing::gpu_present()) GTEST_SKIP() << "a GPU is present: this test is for machines without one";
  EXPECT_TRUE(cuda_devices().empty());
  EXPECT_FALSE(measure_cuda_copy_bandwidth(0, 1 << 20, 2).ok());
  EXPECT_FALSE(measure_cuda_matmul_flops(0, 256, 2).ok());
}

TEST(CudaDeviceQuery, DeviceFoundAndMeasured) {
  GB_REQUIRE_GPU();
  const std::vector<DeviceInfo> devs = cuda_devices();
  ASSERT_FALSE(devs.empty());
  EXPECT_EQ(devs[0].kind, "cuda");
  EXPECT_GT(devs[0].memory_bytes, 1e9);
  EXPECT_GE(devs[0].compute_capability, 70);
  Result<double> bw = measure_cuda_copy_bandwidth(0, size_t{256} << 20, 3);
  ASSERT_TRUE(bw.ok()) << bw.message();
  EXPECT_GT(*bw, 1e11);   // > 100 GB/s on any datacenter GPU
  EXPECT_LT(*bw, 2e13);   // < 20 TB/s
  Result<double> fl = measure_cuda_matmul_flops(0, 4096, 3);
  ASSERT_TRUE(fl.ok()) << fl.message();
  EXPECT_GT(*fl, 1e13);
}

}  // namespace
}  // namespace gb::kernels

// cuda jobs in the job runner: on a build or machine without CUDA a `backend: cuda`
// job ends `invalid` (a retry here cannot help) with a message that says why, before
// anything loads; on one with a GPU, a job whose estimate exceeds the device's free
// memory ends `oom` before loading.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/host_memory.h"

#include "engine/backend/cuda_backend.h"
#include "kernels/device_info.h"
#include "worker/job_runner.h"

namespace gb::worker {
namespace {

Json speed_params(const std::string& model) {
  return Json{{"model", model}, {"backend", "cuda"}, {"weight_format", "bf16"}, {"kv_format", "f16"},
              {"prompt_tokens", 8}, {"gen_tokens", 4}};
}

TEST(RunJobCuda, WithoutCudaTheJobIsInvalidAndSaysWhy) {
  if (!engine::cuda_unavailable(0)) GTEST_SKIP() << "this machine runs cuda jobs: the test is for one that cannot";
  const JobResult r = run_job({"speed", "h", 0, speed_params("synthetic:llama-3-8b")}, nullptr);
  EXPECT_EQ(r.status, JobStatus::kInvalid) << r.error;
  EXPECT_NE(r.error.find("backend cuda"), std::string::npos) << r.error;
  if (!engine::cuda_backend_built())
    EXPECT_NE(r.error.find("built without CUDA"), std::string::npos) << r.error;
  else
    EXPECT_NE(r.error.find("not on this machine"), std::string::npos) << r.error;
  EXPECT_EQ(exit_code_for(r), kExitInvalid);
}

TEST(RunJobCuda, ACpuJobIsNotAffected) {
  // The same parameters on the cpu backend pass the cuda checks: with a 1 GiB host
  // limit, f32 llama-3-8b is host oom before loading, not invalid.
  Json p = speed_params("synthetic:llama-3-8b");
  p["backend"] = "cpu";
  p["weight_format"] = "f32";
  ::setenv(kMemoryLimitEnv, "1G", 1);
  const JobResult r = run_job({"speed", "h", 0, p}, nullptr);
  ::unsetenv(kMemoryLimitEnv);
  EXPECT_EQ(r.status, JobStatus::kOom) << r.error;
  EXPECT_EQ(r.error.find("backend cuda"), std::string::npos) << r.error;
}

TEST(RunJobCuda, TooLargeForTheDeviceIsOomBeforeLoading) {
  if (engine::cuda_unavailable(0)) GTEST_SKIP() << "no CUDA device on this machine: built with CUDA, not run (needs a GPU)";
  // f32 qwen1.5-110b: ~440 GB of weights, more than any single GPU holds.
  Json p = speed_params("synthetic:qwen1.5-110b");
  p["weight_format"] = "f32";
  const JobResult r = run_job({"speed", "h", 0, p}, nullptr);
  EXPECT_EQ(r.status, JobStatus::kOom) << r.error;
  EXPECT_NE(r.error.find(std::string(engine::kDeviceOutOfMemory)), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("nothing was loaded"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace gb::worker

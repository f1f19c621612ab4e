// The speed kind on the CUDA backend: once the untimed warm-up step has recorded
// the decode step, every timed step is launched from its CUDA graph (graph_steps
// equals timed_steps); `cuda_graphs: false` launches none. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "engine/jobs/job_kinds.h"
#include "engine/measure/measures.h"
#include "tests/cuda/gpu_test_util.h"

namespace gb::testing {
namespace {

double value_of(const engine::JobOutput& o, const std::string& name) {
  for (const engine::Metric& m : o.metrics)
    if (m.name == name && m.value) return *m.value;
  ADD_FAILURE() << "no metric " << name;
  return NAN;
}

Result<engine::JobOutput> run_speed(const engine::Json& params) {
  if (Status s = engine::check_job("speed", params); !s.ok()) return s.error();
  const engine::MeasureFn* k = engine::find_measure("speed");
  if (k == nullptr) return Error{"no speed measure"};
  return (*k)(params, nullptr);
}

TEST(CudaSpeedJob, TimedDecodeStepsAreLaunchedFromGraphs) {
  GB_REQUIRE_GPU();
  engine::Json p = {{"model", "synthetic:gpt2"}, {"backend", "cuda"}, {"weight_format", "bf16"}, {"kv_format", "f16"},
            {"prompt_tokens", 8}, {"gen_tokens", 6}};
  Result<engine::JobOutput> on = run_speed(p);
  ASSERT_TRUE(on.ok()) << on.message();
  EXPECT_EQ(value_of(*on, "timed_steps"), 6);
  EXPECT_EQ(value_of(*on, "graph_steps"), 6);
  p["cuda_graphs"] = false;
  Result<engine::JobOutput> off = run_speed(p);
  ASSERT_TRUE(off.ok()) << off.message();
  EXPECT_EQ(value_of(*off, "graph_steps"), 0);
}

}  // namespace
}  // namespace gb::testing

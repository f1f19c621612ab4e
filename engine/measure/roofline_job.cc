// The `roofline` kind: reference 003's theory for one configuration and device,
// computed by engine/theory/theory_output.h (pure arithmetic, which the coordinator
// links too). No engine run.
#include "engine/measure/measures.h"
#include "engine/theory/theory_output.h"

namespace gb::engine {

Result<JobOutput> run_roofline_job(const Json& params, const ProgressFn& progress) {
  Result<JobOutput> out = roofline_output(params);
  if (out && progress) progress(1.0, "roofline computed");
  return out;
}

}  // namespace gb::engine

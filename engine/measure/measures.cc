// The run function of every job kind (engine/measure/measures.h).
#include "engine/measure/measures.h"

#include <string>
#include <utility>
#include <vector>

namespace gb::engine {

const MeasureFn* find_measure(std::string_view kind) {
  static const std::vector<std::pair<std::string, MeasureFn>> measures = {
      {"roofline", run_roofline_job}, {"sleep", run_sleep_job}, {"ppl", run_ppl_job},
      {"memory", run_memory_job},     {"speed", run_speed_job},
  };
  for (const auto& [name, fn] : measures)
    if (name == kind) return &fn;
  return nullptr;
}

}  // namespace gb::engine

// The run function of every job kind (engine/measure/measures.h).
#include "engine/measure/measures.h"


namespace gb::engine {

const std::vector<Measure>& measures() {
  static const std::vector<Measure> all = {
      {"roofline", run_roofline_job}, {"sleep", run_sleep_job}, {"ppl", run_ppl_job},
      {"memory", run_memory_job},     {"speed", run_speed_job},       {"quant_error", run_quant_error_job},
      {"decode_curve", run_decode_curve_job}, {"context_search", run_context_search_job},
      {"mc_accuracy", run_mc_accuracy_job},   {"gen_accuracy", run_gen_accuracy_job},
      {"kv_calibrate", run_kv_calibrate_job},
  };
  return all;
}

const MeasureFn* find_measure(std::string_view kind) {
  for (const Measure& m : measures())
    if (m.kind == kind) return &m.run;
  return nullptr;
}

}  // namespace gb::engine

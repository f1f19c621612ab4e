// The roofline theory of reference 003 (sections 3 to 5.2): parameter counts, KV
// cache size, the longest context that fits, prefill read/compute latency and its
// knees, and decode latency (n-1)/W + B, for one model x weight bits x KV bits x
// batch size x device. Units: bytes, seconds-based rates, latencies in ms.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "engine/spec/device_spec.h"
#include "engine/spec/model_config.h"

namespace gb::engine {

// Parameter counts as 003 counts them: every linear weight and bias of the decoder
// layers (norms excluded), lm_head, and the embedding (token table, plus a learned
// position table). A tied embedding counts once, as lm_head.
struct ParamCounts {
  int64_t decoder = 0;     // Lp
  int64_t lm_head = 0;     // Hp
  int64_t embedding = 0;   // Ep (not activated: one row per token)
  int64_t activated = 0;   // Ap = Lp + Hp
  int64_t total = 0;       // Tp = Ap + Ep
};
ParamCounts count_params(const ModelConfig& m);

// K and V elements one token adds to the cache: layers x 2 x kv_heads x head_dim
// (003: layers x 2 x hidden / n_groups).
int64_t kv_elems_per_token(const ModelConfig& m);
// num_heads / num_kv_heads.
double n_groups(const ModelConfig& m);

// "003": device memory minus the activated weights (003's tables). "total": minus
// all weights (embedding included). Both also subtract RooflineSetup::reserve_bytes.
enum class MemoryModel { k003, kTotal };
// kRough: lm_head runs for every prompt token (compute Mp x n, Mp = activated);
// kExact: lm_head runs once (compute Lp x n + Hp).
enum class PrefillModel { kRough, kExact };

struct RooflineSetup {
  ModelConfig model;
  DeviceSpec device;
  double weight_bits = 16;  // bits per weight actually read
  double kv_bits = 16;      // bits per cached K or V element
  int64_t batch_size = 1;   // sequences decoded together; weights are read once per step
  int64_t kv_capacity = 0;  // streaming cache: at most this many tokens (sink + window); 0 = full cache
  MemoryModel memory_model = MemoryModel::k003;
  double reserve_bytes = 0;
};

// A roofline job's parameters (engine/jobs/job_params.cc) turned into a setup: model,
// weight_format, kv_format, device, and optional batch_size, bits,
// count_group_scales, memory_model, reserve_gib.
Result<RooflineSetup> roofline_setup_from_params(const nlohmann::json& params);

// The longest context: a token count, "oom" (not even one token fits) or
// "unbounded" (a streaming cache that fits never grows).
struct ContextLimit {
  enum class Kind { kTokens, kOom, kUnbounded };
  Kind kind = Kind::kOom;
  int64_t tokens = 0;  // kTokens only
  std::string text() const;  // "oom", "unbounded", or the number
};

struct PrefillLatency {
  double read_ms = 0;
  double compute_ms = 0;
  double ms() const { return read_ms > compute_ms ? read_ms : compute_ms; }
};

// Where the prefill compute curve crosses the read curve, floored: `first` where
// compute overtakes read, `second` where read (of the KV cache) overtakes again.
// nullopt: no such crossing at a positive prompt length.
struct Knees {
  std::optional<int64_t> first;
  std::optional<int64_t> second;
};

class Roofline {
 public:
  explicit Roofline(RooflineSetup setup);

  const RooflineSetup& setup() const { return s_; }
  const ParamCounts& params() const { return p_; }
  double n_groups() const;
  int64_t kv_elems_per_token() const { return kv_elems_; }
  double kv_bytes_per_token() const;  // one sequence
  double weight_bytes() const;        // activated x weight_bits / 8: read once per step

  ContextLimit max_context() const;

  // Prefill of n prompt tokens per sequence (003 sec. 4.3): the KV read sums to
  // n(n+1)/2 tokens; a streaming cap is not applied to the prompt.
  PrefillLatency prefill(PrefillModel model, double n) const;
  Knees knees(PrefillModel model) const;

  // Decode (003 sec. 4.4): B = weight bytes / bandwidth; W = tokens per 1 ms of
  // extra latency = bandwidth x 1 ms / (batch x KV bytes per token).
  double decode_B_ms() const;
  double decode_W_tokens_per_ms() const;
  // (n_cached - 1) / W + B with n_cached = min(n, kv_capacity) for a streaming cache.
  double decode_latency_ms(int64_t n) const;

 private:
  RooflineSetup s_;
  ParamCounts p_;
  int64_t kv_elems_ = 0;
};

}  // namespace gb::engine

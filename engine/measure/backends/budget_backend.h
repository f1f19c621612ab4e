// A Backend that counts what is allocated through it and refuses an allocation
// that would take the live total over a budget, forwarding every op to the backend
// it wraps. It turns "does this context fit in N GiB" into an allocation error the
// job sees (as a GPU's out-of-memory is), so that on the CPU the kernel's OOM
// killer never judges: the `context_search` kind bisects on it. What it counts is
// the engine's own memory (weights, KV cache, activations: everything the model
// allocates through its backend), not host-side vectors or the allocator's slack.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/measure/backends/forwarding_backend.h"

namespace gb::engine {

class BudgetBackend final : public ForwardingBackend {
 public:
  BudgetBackend(Backend& inner, uint64_t budget_bytes) : ForwardingBackend(inner), budget_(budget_bytes) {}

  uint64_t live_bytes() const { return live_; }
  uint64_t peak_bytes() const { return peak_; }
  uint64_t budget_bytes() const { return budget_; }
  bool refused() const { return refused_; }  // an allocation was refused since reset_peak
  // Forgets the peak (and the refusal); live bytes stay.
  void reset_peak() {
    peak_ = live_;
    refused_ = false;
  }

  // Buffers come back wrapped (counted while they live); the memory calls unwrap them.
  Result<std::unique_ptr<Buffer>> alloc(size_t bytes) override;
  void upload(Buffer& dst, size_t offset, const void* src, size_t bytes) override;
  void download(const Buffer& src, size_t offset, void* dst, size_t bytes) override;
  void copy(Buffer& dst, size_t dst_offset, const Buffer& src, size_t src_offset, size_t bytes) override;
  bool fill_synthetic(Buffer& dst, size_t offset, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n,
                      kernels::WeightCodec codec) override;

 private:
  friend class BudgetBuffer;
  uint64_t budget_;
  uint64_t live_ = 0;
  uint64_t peak_ = 0;
  bool refused_ = false;
};

}  // namespace gb::engine

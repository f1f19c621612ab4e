// Decode steps recorded once and launched again (Backend::RecordedStep: CUDA graphs
// on the CUDA backend), for Model::forward. A recorded step is bound to what it was
// recorded with (its StepShape): the layout of its cache's storage, the
// model's scratch buffers, the sequences in the batch and the host arrays the step
// hands the backend (their addresses: the model rewrites their contents before each
// launch). The first step of a shape runs op by op (it grows the backend's
// workspaces to what the step needs) and is then recorded, without running again;
// every later step of the shape is launched. A recording that fails turns recording
// off for this model (every step then runs op by op), and says why in last_failure().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/backend.h"

namespace gb::engine {

struct StepShape {
  uint64_t cache_layout = 0;  // KvCache::layout_generation(): unique to one cache's layout
  uint64_t scratch = 0;       // the model's scratch buffers' generation
  std::vector<int> seqs;      // the batch's sequences, in order (one token each)
  std::vector<const void*> host_arrays;
  bool operator==(const StepShape&) const = default;
};

class RecordedSteps {
 public:
  // Runs a step of `shape` on `b`: launches the recording made for it, or, the
  // first time (or when the backend refuses a recording whose workspace moved),
  // runs `enqueue` (which enqueues the step's ops) and records it for the next
  // steps. False, and nothing run, where the caller runs the step itself: a backend
  // that records nothing, or recording off after a failed recording.
  bool run(Backend& b, const StepShape& shape, const std::function<void()>& enqueue);

  int64_t launches() const { return launches_; }
  int64_t recordings() const { return recordings_; }
  const std::string& last_failure() const { return last_failure_; }
  // Forgets every recording (before the buffers they read are freed).
  void clear() { entries_.clear(); }

 private:
  static constexpr size_t kMaxEntries = 4;
  struct Entry {
    StepShape shape;
    std::unique_ptr<Backend::RecordedStep> step;
  };
  std::vector<Entry> entries_;  // the most recently recorded last
  bool off_ = false;
  int64_t launches_ = 0, recordings_ = 0;
  std::string last_failure_;
};

}  // namespace gb::engine

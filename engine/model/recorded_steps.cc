// Decode steps recorded once and launched again (engine/model/recorded_steps.h).
#include "engine/model/recorded_steps.h"

#include <utility>

namespace gb::engine {

bool RecordedSteps::run(Backend& b, const StepShape& shape, const std::function<void()>& enqueue) {
  if (off_ || !b.can_record()) return false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!(entries_[i].shape == shape)) continue;
    if (b.launch(*entries_[i].step)) {
      ++launches_;
      return true;
    }
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));  // a workspace moved: record again
    break;
  }
  // The step runs op by op (growing what it needs), then is recorded for the next
  // steps of its shape: recording enqueues nothing that runs.
  enqueue();
  b.begin_recording();
  enqueue();
  Result<std::unique_ptr<Backend::RecordedStep>> step = b.end_recording();
  if (!step) {
    off_ = true;
    last_failure_ = step.message();
    return true;
  }
  ++recordings_;
  if (entries_.size() == kMaxEntries) entries_.erase(entries_.begin());
  entries_.push_back({shape, std::move(*step)});
  return true;
}

}  // namespace gb::engine

// The memory-budget backend (engine/measure/backends/budget_backend.h).
#include "engine/measure/backends/budget_backend.h"

#include <algorithm>
#include <string>

namespace gb::engine {

// A buffer of the wrapped backend, counted while it lives.
class BudgetBuffer final : public Buffer {
 public:
  BudgetBuffer(BudgetBackend& owner, std::unique_ptr<Buffer> inner, size_t counted)
      : owner_(owner), inner_(std::move(inner)), counted_(counted) {}
  ~BudgetBuffer() override { owner_.live_ -= counted_; }
  void* data() override { return inner_->data(); }
  size_t size() const override { return inner_->size(); }
  Buffer& inner() { return *inner_; }
  const Buffer& inner() const { return *inner_; }

 private:
  BudgetBackend& owner_;
  std::unique_ptr<Buffer> inner_;
  size_t counted_;
};

namespace {

Buffer& unwrap(Buffer& b) { return static_cast<BudgetBuffer&>(b).inner(); }
const Buffer& unwrap(const Buffer& b) { return static_cast<const BudgetBuffer&>(b).inner(); }

}  // namespace

Result<std::unique_ptr<Buffer>> BudgetBackend::alloc(size_t bytes) {
  if (live_ + bytes > budget_) {
    refused_ = true;
    return Error{"out of the memory budget: " + std::to_string(bytes) + " bytes more than the " +
                 std::to_string(budget_ - std::min<uint64_t>(live_, budget_)) + " left of " + std::to_string(budget_)};
  }
  Result<std::unique_ptr<Buffer>> b = inner_.alloc(bytes);
  if (!b) return b.error();
  live_ += bytes;
  peak_ = std::max(peak_, live_);
  return std::unique_ptr<Buffer>(new BudgetBuffer(*this, std::move(*b), bytes));
}

void BudgetBackend::upload(Buffer& dst, size_t offset, const void* src, size_t bytes) {
  inner_.upload(unwrap(dst), offset, src, bytes);
}
void BudgetBackend::download(const Buffer& src, size_t offset, void* dst, size_t bytes) {
  inner_.download(unwrap(src), offset, dst, bytes);
}
void BudgetBackend::copy(Buffer& dst, size_t dst_offset, const Buffer& src, size_t src_offset, size_t bytes) {
  inner_.copy(unwrap(dst), dst_offset, unwrap(src), src_offset, bytes);
}
bool BudgetBackend::fill_synthetic(Buffer& dst, size_t offset, uint64_t key, float mean, float stddev, uint64_t begin,
                                   int64_t n, kernels::WeightCodec codec) {
  return inner_.fill_synthetic(unwrap(dst), offset, key, mean, stddev, begin, n, codec);
}

}  // namespace gb::engine

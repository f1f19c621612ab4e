// The thread pool (engine/backend/thread_pool.h): condition variables for sleeping
// threads, atomics for the spinning phase before they sleep.
#include "engine/backend/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

namespace gb::engine {

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
void range_of(int64_t n, int parts, int index, int64_t* begin, int64_t* end) {
  *begin = n * index / parts;
  *end = n * (index + 1) / parts;
}

// Spins until done() or `limit` passes; returns done().
template <typename F>
bool spin_until(F done, std::chrono::microseconds limit) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (done()) return true;
    _mm_pause();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() - t0 > limit) return done();
  }
}
}  // namespace

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  const int parts = static_cast<int>(std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), 1, size()));
  if (parts == 1) {
    fn(0, n);
    return;
  }
  run_static(n, parts, fn);
}

void ThreadPool::parallel_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(chunk, 1);
  const int64_t chunks = (n + chunk - 1) / chunk;
  if (chunks == 1 || size() == 1) {
    for (int64_t b = 0; b < n; b += chunk) fn(b, std::min(n, b + chunk));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    parts_ = static_cast<int>(std::min<int64_t>(chunks, size()));
    chunk_ = chunk;
    next_chunk_.store(0, std::memory_order_relaxed);
    done_chunks_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  take_chunks(n, chunk, fn);
  // Every chunk done; a worker that has not come yet finds fn_ cleared and stays
  // out, one that is inside is waited for (it may still touch the counters).
  if (!spin_until([&] { return done_chunks_.load(std::memory_order_acquire) == chunks; }, kSpin)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return done_chunks_.load(std::memory_order_acquire) == chunks; });
  }
  std::unique_lock<std::mutex> lock(mu_);
  fn_ = nullptr;
  done_cv_.wait(lock, [&] { return inside_ == 0; });
}

void ThreadPool::take_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  for (;;) {
    const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= chunks) return;
    fn(c * chunk, std::min(n, (c + 1) * chunk));
    if (done_chunks_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_all();
    }
  }
}

void ThreadPool::run_static(int64_t n, int parts, const std::function<void(int64_t, int64_t)>& fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    parts_ = parts;
    chunk_ = 0;
    pending_.store(parts - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  int64_t b, e;
  range_of(n, parts, 0, &b, &e);
  fn(b, e);
  if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; }, kSpin)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  std::lock_guard<std::mutex> lock(mu_);
  fn_ = nullptr;
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t)>* fn;
    int64_t n, chunk;
    int parts;
    spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; }, kSpin);
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_relaxed);
      fn = fn_;
      n = n_;
      parts = parts_;
      chunk = chunk_;
      if (fn == nullptr || index >= parts) continue;  // a chunked loop already over, or not ours
      if (chunk > 0) ++inside_;
    }
    if (chunk > 0) {
      take_chunks(n, chunk, *fn);
      std::lock_guard<std::mutex> lock(mu_);
      if (--inside_ == 0) done_cv_.notify_all();
      continue;
    }
    int64_t b, e;
    range_of(n, parts, index, &b, &e);
    (*fn)(b, e);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

}  // namespace gb::engine

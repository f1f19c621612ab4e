// A fixed pool of worker threads for data-parallel loops: parallel_for splits
// [0, n) into one contiguous range per thread and runs them, the caller taking a
// share, then waits; parallel_chunks hands out fixed-size chunks of [0, n) to
// whichever thread is free (an atomic counter), so that a thread the OS preempts
// or slows does not hold the others up at the loop's end. No task queue, no
// futures: the CPU backend's ops are all of this shape, and a pool that does one
// thing is easy to trust.
//
// A decode step is ~150 short parallel loops, so waking sleeping threads each time
// (two futex calls, tens of microseconds on a VM) would cost a good part of it:
// workers and the caller spin for a short while (kSpin) on atomics before they
// sleep on the condition variables.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace gb::engine {

class ThreadPool {
 public:
  // threads <= 0: one per hardware thread.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint ranges covering [0, n), at least `grain`
  // items each (fewer ranges when n is small), and returns when all are done.
  // Not reentrant: fn must not call parallel_for on the same pool.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  // Calls fn(begin, end) once for each chunk [c * chunk, min(n, (c + 1) * chunk))
  // of [0, n), on whichever thread takes it next, and returns when all are done.
  // Not reentrant either.
  void parallel_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop(int index);
  // parallel_for on `parts` threads, the caller one of them.
  void run_static(int64_t n, int parts, const std::function<void(int64_t, int64_t)>& fn);
  // parallel_chunks' loop of one thread: chunks taken until none is left.
  void take_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int parts_ = 0;
  int64_t chunk_ = 0;  // 0: one range per thread (parallel_for)
  std::atomic<int64_t> next_chunk_{0}, done_chunks_{0};
  int inside_ = 0;  // workers inside a chunked loop (under mu_)
  // How long a thread spins for the next loop (a worker) or the others' end (the
  // caller) before it sleeps.
  static constexpr std::chrono::microseconds kSpin{200};

  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
};

}  // namespace gb::engine

// The thread pool (engine/backend/thread_pool.h): parallel_for covers [0, n) with
// disjoint ranges of at least `grain` items, on as many threads as asked, and stays
// correct over many back-to-back loops (the spinning hand-over) and after its
// threads have gone to sleep (the condition-variable hand-over); parallel_chunks
// runs every chunk exactly once, and a thread held up in one chunk leaves the rest
// to the others.
#include "engine/backend/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace gb::engine {
namespace {

TEST(ThreadPool, CoversTheRangeWithDisjointRangesOfAtLeastGrain) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3);
  for (int64_t n : {1, 2, 7, 48, 1000}) {
    std::mutex mu;
    std::vector<std::pair<int64_t, int64_t>> ranges;
    std::set<std::thread::id> threads;
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(mu);
      ranges.emplace_back(b, e);
      threads.insert(std::this_thread::get_id());
    }, 16);
    std::vector<int> hits(static_cast<size_t>(n));
    for (auto [b, e] : ranges) {
      if (ranges.size() > 1) EXPECT_GE(e - b, 16) << n;
      for (int64_t i = b; i < e; ++i) ++hits[static_cast<size_t>(i)];
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << "n=" << n << " i=" << i;
    EXPECT_EQ(ranges.size(), static_cast<size_t>(std::min<int64_t>(3, std::max<int64_t>(1, n / 16)))) << n;
    EXPECT_EQ(threads.size(), ranges.size()) << n;
  }
}

TEST(ThreadPool, ManyLoopsBackToBackAndAfterSleeping) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 2000; ++i)
      pool.parallel_for(64, [&](int64_t b, int64_t e) { sum.fetch_add(e - b, std::memory_order_relaxed); }, 1);
    // Longer than the spin: the workers sleep, and the next loop must wake them.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(sum.load(), int64_t{3} * 2000 * 64);
}

TEST(ThreadPool, ChunksRunOnceEachOnWhicheverThreadIsFree) {
  ThreadPool pool(2);
  for (int64_t n : {1, 15, 16, 17, 1000}) {
    std::mutex mu;
    std::vector<std::pair<int64_t, int64_t>> ranges;
    pool.parallel_chunks(n, 16, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(mu);
      ranges.emplace_back(b, e);
    });
    std::vector<int> hits(static_cast<size_t>(n));
    for (auto [b, e] : ranges) {
      EXPECT_EQ(b % 16, 0) << n;
      EXPECT_EQ(e, std::min<int64_t>(n, b + 16)) << n;
      for (int64_t i = b; i < e; ++i) ++hits[static_cast<size_t>(i)];
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << "n=" << n << " i=" << i;
  }
  // One chunk stalls (as a preempted thread would): the other thread runs all the
  // rest meanwhile.
  std::mutex mu;
  std::vector<std::thread::id> by_chunk(8);
  pool.parallel_chunks(8, 1, [&](int64_t b, int64_t) {
    if (b == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::lock_guard<std::mutex> lock(mu);
    by_chunk[static_cast<size_t>(b)] = std::this_thread::get_id();
  });
  int staller_chunks = 0;
  for (const auto& id : by_chunk) staller_chunks += id == by_chunk[0] ? 1 : 0;
  EXPECT_EQ(staller_chunks, 1) << "the stalled thread ran more than its own chunk";
  // Back to back and after sleeping, mixed with the static loops.
  std::atomic<int64_t> sum{0};
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 300; ++i) {
      pool.parallel_chunks(64, 4, [&](int64_t b, int64_t e) { sum.fetch_add(e - b, std::memory_order_relaxed); });
      pool.parallel_for(64, [&](int64_t b, int64_t e) { sum.fetch_add(e - b, std::memory_order_relaxed); }, 1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(sum.load(), int64_t{2} * 300 * 128);
}

}  // namespace
}  // namespace gb::engine

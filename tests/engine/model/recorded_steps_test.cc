// Decode steps recorded once and launched again (engine/model/recorded_steps.h,
// Backend::RecordedStep), checked on the CPU: a backend that records as a device
// backend's graphs do (each op kept with its arguments, the host arrays by address,
// and run again at every launch) must give the logits of the plain CPU backend, bit
// for bit, through page growth, batches, prefills between decode steps and a failed
// recording. What the CUDA backend adds (stream capture, the pinned arena) runs only
// on a GPU (tests/cuda/backend/model_logits_test.cc).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/measure/backends/forwarding_backend.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/weights/synthetic.h"
#include "tests/engine/test_models.h"

namespace gb::engine {
namespace {

// Records like a graph: while recording, every op of a step is kept as a closure over
// its arguments (pointers and views by value, host arrays by address) instead of
// running; launch() runs them in order. A memory call while recording (a download,
// a synchronize) fails the recording, as it does a stream capture. stale() makes
// the next launch refuse (a moved workspace); fail_recordings() every recording.
class RecordingBackend final : public ForwardingBackend {
 public:
  explicit RecordingBackend(Backend& inner) : ForwardingBackend(inner) {}

  struct Step final : RecordedStep {
    std::vector<std::function<void()>> ops;
    uint64_t generation = 0;
  };

  bool can_record() const override { return true; }
  void begin_recording() override {
    ASSERT_EQ(recording_, nullptr);
    recording_ = std::make_unique<Step>();
    recording_->generation = generation_;
    unsafe_ = false;
  }
  Result<std::unique_ptr<RecordedStep>> end_recording() override {
    std::unique_ptr<Step> s = std::move(recording_);
    if (fail_ || unsafe_) return Error{"recording refused"};
    if (s->ops.empty()) return Error{"nothing recorded"};
    ++recordings;
    return std::unique_ptr<RecordedStep>(std::move(s));
  }
  bool launch(RecordedStep& step) override {
    auto& s = static_cast<Step&>(step);
    if (s.generation != generation_) return false;
    for (const auto& op : s.ops) op();
    ++launches;
    return true;
  }
  void stale() { ++generation_; }
  void fail_recordings() { fail_ = true; }
  int64_t recordings = 0, launches = 0;

  // Memory: not recordable.
  void upload(Buffer& dst, size_t offset, const void* src, size_t bytes) override {
    unsafe_ = unsafe_ || recording_ != nullptr;
    inner_.upload(dst, offset, src, bytes);
  }
  void download(const Buffer& src, size_t offset, void* dst, size_t bytes) override {
    unsafe_ = unsafe_ || recording_ != nullptr;
    inner_.download(src, offset, dst, bytes);
  }
  void synchronize() override {
    unsafe_ = unsafe_ || recording_ != nullptr;
    inner_.synchronize();
  }
  // A device-to-device copy is recordable (a graph's memcpy node).
  void copy(Buffer& dst, size_t dst_offset, const Buffer& src, size_t src_offset, size_t bytes) override {
    Buffer* d = &dst;
    const Buffer* s = &src;
    run([=, this] { inner_.copy(*d, dst_offset, *s, src_offset, bytes); });
  }

  // The ops of a step.
  void embedding(const int32_t* ids, int64_t n, const PackedMatrix& table, float* out) override {
    run([=, this] { inner_.embedding(ids, n, table, out); });
  }
  void add_rows(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) override {
    run([=, this] { inner_.add_rows(positions, n, table, dim, x); });
  }
  void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out) override {
    run([=, this] { inner_.rms_norm(x, rows, dim, w, eps, out); });
  }
  void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                  float* out) override {
    run([=, this] { inner_.layer_norm(x, rows, dim, w, b, eps, out); });
  }
  void add_rms_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, float eps,
                    float* out) override {
    run([=, this] { inner_.add_rms_norm(x, y, rows, dim, w, eps, out); });
  }
  void add_layer_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                      float* out) override {
    run([=, this] { inner_.add_layer_norm(x, y, rows, dim, w, b, eps, out); });
  }
  void linear(const float* x, int64_t rows, const LinearWeights& w, float* y) override {
    const LinearWeights* pw = &w;
    run([=, this] { inner_.linear(x, rows, *pw, y); });
  }
  void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int64_t* positions,
            const RopeParams& rope) override {
    run([=, this] { inner_.rope(x, rows, row_stride, heads, head_dim, positions, rope); });
  }
  void kv_store(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                const KvLayerView& cache, const int64_t* visible) override {
    run([=, this] { inner_.kv_store(k, v, n, row_stride, kv_width, cache, visible); });
  }
  void attention(const float* q, int64_t n, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                 const KvLayerView& cache, const int64_t* visible, const RopeParams& rope, float scale,
                 float* out) override {
    run([=, this] { inner_.attention(q, n, q_stride, heads, kv_heads, head_dim, cache, visible, rope, scale, out); });
  }
  void add(float* x, const float* y, int64_t n) override {
    run([=, this] { inner_.add(x, y, n); });
  }
  void silu_mul(const float* gu, int64_t rows, int64_t inner, float* out) override {
    run([=, this] { inner_.silu_mul(gu, rows, inner, out); });
  }
  void gelu(float* x, int64_t n, bool tanh_approximation) override {
    run([=, this] { inner_.gelu(x, n, tanh_approximation); });
  }

 private:
  void run(std::function<void()> op) {
    if (recording_ != nullptr) recording_->ops.push_back(std::move(op));
    else op();
  }
  std::unique_ptr<Step> recording_;
  uint64_t generation_ = 0;
  bool fail_ = false, unsafe_ = false;
};

using test_models::tiny;

struct Decoded {
  std::vector<std::vector<float>> logits;  // every step's last logits, [sequences x vocab]
  int64_t launches = 0, recordings = 0;    // the model's RecordedSteps
  std::string failure;
};

// Each prompt prefilled alone (sequence i), then `steps` greedy decode steps of
// every sequence as one batch; after `prefill_at` decode steps, sequence 0 is fed
// a piece of `piece` tokens (a prefill between decode steps: more rows than a decode).
Decoded decode(Backend& b, const ModelConfig& c, const std::vector<std::vector<int32_t>>& prompts, int steps,
               const KvCacheOptions& kv, bool record, int prefill_at = -1, int piece = 5) {
  auto w = open_synthetic_weights(c, 3);
  EXPECT_TRUE(w.ok());
  LoadOptions o;
  o.record_decode_steps = record;
  auto m = Model::load(**w, b, o);
  EXPECT_TRUE(m.ok()) << m.error().message;
  Model& model = **m;
  auto cache = model.make_cache(kv, static_cast<int>(prompts.size()));
  EXPECT_TRUE(cache.ok()) << cache.error().message;
  Decoded d;
  std::vector<int32_t> next(prompts.size());
  std::vector<float> logits;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const SequenceStep s{static_cast<int>(i), prompts[i]};
    EXPECT_TRUE(model.forward({&s, 1}, **cache, LogitsMode::kLast, &logits).ok());
    next[i] = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  std::vector<int32_t> tokens;
  for (int i = 0; i < piece; ++i) tokens.push_back(5 + i);
  for (int step = 0; step < steps; ++step) {
    if (step == prefill_at) {
      const SequenceStep s{0, tokens};
      EXPECT_TRUE(model.forward({&s, 1}, **cache, LogitsMode::kLast, &logits).ok());
    }
    std::vector<SequenceStep> batch;
    for (size_t i = 0; i < prompts.size(); ++i) batch.push_back({static_cast<int>(i), {&next[i], 1}});
    const Status st = model.forward(batch, **cache, LogitsMode::kLast, &logits);
    EXPECT_TRUE(st.ok()) << st.message();
    d.logits.push_back(logits);
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto row = logits.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(c.vocab_size));
      next[i] = static_cast<int32_t>(std::max_element(row, row + c.vocab_size) - row);
    }
  }
  d.launches = model.recorded_steps().launches();
  d.recordings = model.recorded_steps().recordings();
  d.failure = model.recorded_steps().last_failure();
  return d;
}

std::vector<std::vector<int32_t>> prompts(int n) {
  std::vector<std::vector<int32_t>> p;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> t;
    for (int k = 0; k < 3 + 4 * i; ++k) t.push_back(static_cast<int32_t>((11 * k + 7 * i + 1) % 97));
    p.push_back(t);
  }
  return p;
}

class RecordedDecode : public ::testing::TestWithParam<Family> {};

// Pages of 8 slots: the layout changes every 8 tokens, so the step is recorded
// again after each new page (a step run op by op and recorded, launches until the
// next page); the rest of the steps are launches. Batches of 1 and 3.
TEST_P(RecordedDecode, PagedDecodeEqualsTheEagerStepsBitForBit) {
  const ModelConfig c = tiny(GetParam());
  KvCacheOptions kv;
  kv.page_tokens = 8;
  for (int seqs : {1, 3}) {
    SCOPED_TRACE(std::to_string(seqs) + " sequences");
    std::unique_ptr<Backend> cpu = make_cpu_backend(2);
    RecordingBackend rec(*cpu);
    const Decoded want = decode(*cpu, c, prompts(seqs), 30, kv, false);
    const Decoded got = decode(rec, c, prompts(seqs), 30, kv, true);
    EXPECT_EQ(want.launches, 0);
    ASSERT_EQ(got.logits.size(), want.logits.size());
    for (size_t i = 0; i < want.logits.size(); ++i) ASSERT_EQ(got.logits[i], want.logits[i]) << "step " << i;
    EXPECT_TRUE(got.failure.empty()) << got.failure;
    EXPECT_EQ(got.recordings, rec.recordings);
    EXPECT_EQ(got.launches, rec.launches);
    EXPECT_GE(got.recordings, 3);   // a new page at least every 8 steps
    EXPECT_GE(got.launches, 15);    // most of the 30 steps
    EXPECT_LT(got.recordings, got.launches);
  }
}

// A static cache never changes its layout: one recording, made at the first decode
// step, for all of them. A prefill between decode steps runs op by op; where it fits
// the scratch the decode steps after it launch the same recording, where it grows
// the scratch (and the step's host arrays) they are recorded again.
TEST_P(RecordedDecode, StaticCacheRecordsOnceAndAgainAfterTheScratchGrows) {
  const ModelConfig c = tiny(GetParam());
  KvCacheOptions kv;
  kv.capacity = 64;
  std::unique_ptr<Backend> cpu = make_cpu_backend(2);
  {
    RecordingBackend rec(*cpu);
    const Decoded want = decode(*cpu, c, prompts(2), 12, kv, false);
    const Decoded got = decode(rec, c, prompts(2), 12, kv, true);
    EXPECT_EQ(got.logits, want.logits);
    EXPECT_EQ(got.recordings, 1);
    EXPECT_EQ(got.launches, 11);  // every decode step but the first, which is recorded
  }
  {
    // Prompts of 3 and 7 tokens grow the scratch to 7 rows before decoding; the
    // 5-token piece fits in it, so the decode steps after it launch the same recording.
    RecordingBackend rec(*cpu);
    const Decoded want = decode(*cpu, c, prompts(2), 12, kv, false, 6);
    const Decoded got = decode(rec, c, prompts(2), 12, kv, true, 6);
    EXPECT_EQ(got.logits, want.logits);
    EXPECT_EQ(got.recordings, 1);
    EXPECT_EQ(got.launches, 11);
  }
  {
    // A 12-token piece grows the scratch: decode step 6 is recorded again.
    RecordingBackend rec(*cpu);
    const Decoded want = decode(*cpu, c, prompts(2), 12, kv, false, 6, 12);
    const Decoded got = decode(rec, c, prompts(2), 12, kv, true, 6, 12);
    EXPECT_EQ(got.logits, want.logits);
    EXPECT_EQ(got.recordings, 2);
    EXPECT_EQ(got.launches, 10);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, RecordedDecode, ::testing::Values(Family::kLlama, Family::kQwen3, Family::kGpt2),
                         [](const auto& info) { return std::string(family_name(info.param)); });

// A recording that fails turns recording off: every step runs as usual, and the
// model says why; a launch the backend refuses (a workspace moved) is recorded again.
TEST(RecordedDecodeFailures, AFailedRecordingFallsBackAndAStaleOneIsRecordedAgain) {
  const ModelConfig c = tiny(Family::kLlama);
  KvCacheOptions kv;
  kv.capacity = 64;
  std::unique_ptr<Backend> cpu = make_cpu_backend(2);
  const Decoded want = decode(*cpu, c, prompts(1), 10, kv, false);
  {
    RecordingBackend rec(*cpu);
    rec.fail_recordings();
    const Decoded got = decode(rec, c, prompts(1), 10, kv, true);
    EXPECT_EQ(got.logits, want.logits);
    EXPECT_EQ(got.launches, 0);
    EXPECT_EQ(got.failure, "recording refused");
  }
  {
    RecordingBackend rec(*cpu);
    auto w = open_synthetic_weights(c, 3);
    auto m = Model::load(**w, rec);
    ASSERT_TRUE(m.ok());
    auto cache = (*m)->make_cache(kv, 1);
    ASSERT_TRUE(cache.ok());
    std::vector<float> logits;
    std::vector<std::vector<float>> all;
    std::vector<int32_t> t = prompts(1)[0];
    SequenceStep s{0, t};
    ASSERT_TRUE((*m)->forward({&s, 1}, **cache, LogitsMode::kLast, &logits).ok());
    int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    for (int step = 0; step < 10; ++step) {
      if (step == 5) rec.stale();  // the recording made at step 0 is refused from now on
      SequenceStep d{0, {&next, 1}};
      ASSERT_TRUE((*m)->forward({&d, 1}, **cache, LogitsMode::kLast, &logits).ok());
      all.push_back(logits);
      next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    EXPECT_EQ(all, want.logits);
    // Step 0 runs op by op and is recorded, steps 1-4 are launched; at step 5 the
    // launch is refused, so the step runs op by op and is recorded again, and
    // steps 6-9 are launched.
    EXPECT_EQ((*m)->recorded_steps().recordings(), 2);
    EXPECT_EQ((*m)->recorded_steps().launches(), 8);
  }
}

}  // namespace
}  // namespace gb::engine

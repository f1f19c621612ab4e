// The CUDA backend: every Backend op (engine/backend/backend.h) enqueued on one
// non-blocking stream of one device, with the kernels of kernels/cuda/.
//
// Memory: each Buffer is one cudaMalloc of the request rounded up to 256 bytes,
// counted while it lives under the category the model set (weights, KV cache,
// workspace), with each category's peak and the total's; an allocation the device
// cannot give is an Error naming the bytes asked, the device's free and total bytes
// and what this backend holds (kDeviceOutOfMemory), and the context stays usable.
// Buffers keep the account alive (shared), so a buffer freed after its backend is
// still counted right.
//
// Host index arrays (token ids, positions, visible lengths, RoPE inverse
// frequencies) go through a staging ring: copied into pinned host memory, then
// cudaMemcpyAsync'd to the same offset of a device ring on the stream, so later
// kernels on the stream see them and the host may reuse its array at once. A region
// of the ring is reused only after the ring wraps, and a wrap first waits for the
// stream, so no copy still in flight is overwritten. The last few staged arrays are
// remembered by content (the model passes the same positions to every layer's rope,
// the same inverse frequencies to every call), so a decode step copies each once.
//
// Errors: ops return nothing (the interface's convention), so the first failed
// launch or copy is kept and returned by take_error(), which the model checks after
// every step; later ops still run (a sticky device fault fails them too).
//
// Logits reductions (argmax, sampling, target log-probabilities) download only
// their ids or scalars.
//
// Not here yet: CUDA graphs of the decode step (docs/CUDA.md "Not yet": the staged
// arrays would need fixed addresses for a graph's lifetime, and the model a hook).
#include "engine/backend/cuda_backend.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/attention/attention.h"
#include "kernels/cuda/attention/kv_store.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/elementwise/activation.h"
#include "kernels/cuda/elementwise/add.h"
#include "kernels/cuda/elementwise/embedding.h"
#include "kernels/cuda/logits/logits.h"
#include "kernels/cuda/matmul/linear.h"
#include "kernels/cuda/norm/norm.h"
#include "kernels/cuda/rope/rope.h"
#include "kernels/cuda/synthetic/synthetic_fill.h"
#include "kernels/cuda/synthetic/synthetic_quantize.h"

namespace gb::engine {
namespace {

namespace kcu = kernels::cuda;

constexpr size_t kGranule = 256;

size_t round_up(size_t n, size_t to) { return (std::max<size_t>(n, 1) + to - 1) / to * to; }

const char* use_name(MemoryUse u) {
  switch (u) {
    case MemoryUse::kWeights: return "weights";
    case MemoryUse::kKvCache: return "KV cache";
    case MemoryUse::kWorkspace: return "workspace";
  }
  return "?";
}

// The live and peak bytes by category; shared by the backend and its buffers.
struct Account {
  std::mutex mu;
  std::array<uint64_t, 3> live{}, peak{};
  uint64_t total = 0, peak_total = 0;

  void add(MemoryUse u, uint64_t n) {
    std::lock_guard<std::mutex> l(mu);
    const size_t i = static_cast<size_t>(u);
    live[i] += n;
    peak[i] = std::max(peak[i], live[i]);
    total += n;
    peak_total = std::max(peak_total, total);
  }
  void remove(MemoryUse u, uint64_t n) {
    std::lock_guard<std::mutex> l(mu);
    live[static_cast<size_t>(u)] -= n;
    total -= n;
  }
};

class DeviceBuffer final : public Buffer {
 public:
  DeviceBuffer(std::shared_ptr<Account> account, int device, void* p, size_t bytes, size_t granted, MemoryUse use)
      : account_(std::move(account)), device_(device), p_(p), bytes_(bytes), granted_(granted), use_(use) {}
  ~DeviceBuffer() override {
    // cudaFree waits for the device, so no enqueued kernel still reads this memory.
    cudaSetDevice(device_);
    cudaFree(p_);
    account_->remove(use_, granted_);
  }
  void* data() override { return p_; }
  size_t size() const override { return bytes_; }

 private:
  std::shared_ptr<Account> account_;
  int device_;
  void* p_;
  size_t bytes_, granted_;
  MemoryUse use_;
};

std::string bytes_text(uint64_t b) {
  char s[64];
  std::snprintf(s, sizeof s, "%llu bytes (%.2f GiB)", static_cast<unsigned long long>(b),
                static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0));
  return s;
}

// A step recorded as a CUDA graph (Backend::RecordedStep). The host arrays its ops
// were given are staged through its own pinned and device arena (fixed addresses for
// the graph's copy nodes): launch copies their current contents into the pinned
// arena, once the previous launch is done with it, then launches the graph.
class CudaRecordedStep final : public Backend::RecordedStep {
 public:
  struct Staged {
    const void* host;  // the caller's array, read again at every launch
    size_t bytes;
    size_t at;  // offset in the arenas
  };
  explicit CudaRecordedStep(int device) : device(device) {}
  ~CudaRecordedStep() override {
    cudaSetDevice(device);
    if (done != nullptr) {
      cudaEventSynchronize(done);
      cudaEventDestroy(done);
    }
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (pinned != nullptr) cudaFreeHost(pinned);
  }

  int device;
  cudaGraphExec_t exec = nullptr;
  cudaEvent_t done = nullptr;  // recorded after each launch
  void* pinned = nullptr;
  std::unique_ptr<Buffer> arena;  // device
  size_t bytes = 0, used = 0;
  std::vector<Staged> staged;
  uint64_t generation = 0;  // the backend's workspace generation it was recorded at
};

class CudaBackendImpl final : public CudaBackend {
 public:
  explicit CudaBackendImpl(int device) : device_(device), name_("cuda:" + std::to_string(device)) {}

  ~CudaBackendImpl() override {
    cudaSetDevice(device_);
    if (recording_ != nullptr) {
      cudaGraph_t g = nullptr;
      if (cudaStreamEndCapture(stream_, &g) == cudaSuccess && g != nullptr) cudaGraphDestroy(g);
      cudaGetLastError();
      recording_.reset();
    }
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    workspace_.reset();
    scratch_.reset();
    reduce_.reset();
    ring_dev_.reset();
    if (ring_host_ != nullptr) cudaFreeHost(ring_host_);
    free_retired();
    if (lt_ != nullptr) cublasLtDestroy(lt_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status init() {
    GB_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
    GB_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    if (cublasStatus_t st = cublasLtCreate(&lt_); st != CUBLAS_STATUS_SUCCESS)
      return Error{"cublasLtCreate failed (status " + std::to_string(static_cast<int>(st)) + ")"};
    return Status::Ok();
  }

  std::string_view name() const override { return name_; }
  int device() const override { return device_; }
  void set_memory_use(MemoryUse use) override { use_ = use; }
  MemoryUse memory_use() const override { return use_; }

  DeviceMemoryAccount memory_account() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    DeviceMemoryAccount a;
    {
      std::lock_guard<std::mutex> l(account_->mu);
      for (size_t i = 0; i < 3; ++i) {
        a.live[i] = account_->live[i];
        a.peak[i] = account_->peak[i];
      }
      a.live_total = account_->total;
      a.peak_total = account_->peak_total;
    }
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) == cudaSuccess) {
      a.device_free = free;
      a.device_total = total;
    } else {
      cudaGetLastError();
    }
    return a;
  }

  void reset_peak() override {
    std::lock_guard<std::mutex> l(account_->mu);
    account_->peak = account_->live;
    account_->peak_total = account_->total;
  }

  // ---- memory ----
  Result<std::unique_ptr<Buffer>> alloc(size_t bytes) override { return alloc_as(bytes, use_); }

  void upload(Buffer& dst, size_t off, const void* src, size_t n) override {
    if (n == 0) return;
    cudaSetDevice(device_);
    note(cudaMemcpyAsync(static_cast<uint8_t*>(dst.data()) + off, src, n, cudaMemcpyHostToDevice, stream_),
         "upload");
  }

  void download(const Buffer& src, size_t off, void* dst, size_t n) override {
    if (n == 0) return;
    cudaSetDevice(device_);
    note(cudaMemcpyAsync(dst, static_cast<const uint8_t*>(const_cast<Buffer&>(src).data()) + off, n,
                         cudaMemcpyDeviceToHost, stream_),
         "download");
    // The host reads dst as soon as download returns (as on the CPU backend).
    note(cudaStreamSynchronize(stream_), "download");
  }

  void copy(Buffer& dst, size_t doff, const Buffer& src, size_t soff, size_t n) override {
    if (n == 0) return;
    cudaSetDevice(device_);
    uint8_t* d = static_cast<uint8_t*>(dst.data()) + doff;
    const uint8_t* s = static_cast<const uint8_t*>(const_cast<Buffer&>(src).data()) + soff;
    if (d == s) return;
    const bool overlap = d < s + n && s < d + n;
    if (!overlap) {
      note(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice, stream_), "copy");
      return;
    }
    // Overlapping ranges (a streaming cache sliding its window): through a scratch
    // buffer, or, where none can be had, in pieces no longer than the shift, in the
    // order that never overwrites a byte before it is read.
    if (ensure(scratch_, n, "copy scratch").ok()) {
      note(cudaMemcpyAsync(scratch_->data(), s, n, cudaMemcpyDeviceToDevice, stream_), "copy");
      note(cudaMemcpyAsync(d, scratch_->data(), n, cudaMemcpyDeviceToDevice, stream_), "copy");
      return;
    }
    const size_t shift = static_cast<size_t>(d > s ? d - s : s - d);
    if (d < s) {
      for (size_t at = 0; at < n; at += shift)
        note(cudaMemcpyAsync(d + at, s + at, std::min(shift, n - at), cudaMemcpyDeviceToDevice, stream_), "copy");
    } else {
      for (size_t end = n; end > 0;) {
        const size_t len = std::min(shift, end);
        end -= len;
        note(cudaMemcpyAsync(d + end, s + end, len, cudaMemcpyDeviceToDevice, stream_), "copy");
      }
    }
  }

  void synchronize() override {
    cudaSetDevice(device_);
    note(cudaStreamSynchronize(stream_), "synchronize");
    free_retired();
  }

  Status take_error() override {
    return std::exchange(error_, Status());
  }

  // ---- recorded steps: CUDA graphs by stream capture ----
  bool can_record() const override { return true; }

  void begin_recording() override {
    GB_CHECK(recording_ == nullptr);
    cudaSetDevice(device_);
    (void)std::exchange(record_error_, Status());
    auto r = std::make_unique<CudaRecordedStep>(device_);
    r->bytes = size_t{256} << 10;  // a decode step stages ids, positions, visible lengths, RoPE: a few KB
    r->generation = generation_;
    Result<std::unique_ptr<Buffer>> arena = alloc_as(r->bytes, MemoryUse::kWorkspace);
    if (!arena) fail_recording(Error{"recorded step arena: " + arena.message()});
    else r->arena = std::move(*arena);
    if (record_error_.ok() && cudaMallocHost(&r->pinned, r->bytes) != cudaSuccess) {
      cudaGetLastError();
      r->pinned = nullptr;
      fail_recording(Error{"recorded step arena: cannot allocate pinned host memory"});
    }
    // Thread-local mode: this thread may not call an unsafe API (a synchronizing
    // copy, an allocation) while capturing; another thread's calls are its own.
    if (record_error_.ok()) {
      const cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
      if (e != cudaSuccess) {
        cudaGetLastError();
        fail_recording(Error{std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e)});
      }
    }
    // Ops still come while recording_ is set. After a failed start the stream is not
    // capturing: an op that stages nothing runs at once, on scratch buffers only
    // (kv_store, the one op that writes the KV cache, stages the visible lengths and
    // so returns without running), and the caller then runs the whole step op by op
    // after end_recording()'s error.
    recording_ = std::move(r);
    capturing_ = record_error_.ok();
  }

  Result<std::unique_ptr<RecordedStep>> end_recording() override {
    GB_CHECK(recording_ != nullptr);
    cudaSetDevice(device_);
    std::unique_ptr<CudaRecordedStep> r = std::move(recording_);
    cudaGraph_t graph = nullptr;
    if (capturing_) {
      const cudaError_t e = cudaStreamEndCapture(stream_, &graph);
      capturing_ = false;
      if (e != cudaSuccess) {
        cudaGetLastError();
        fail_recording(Error{std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e)});
      }
    }
    if (record_error_.ok() && graph == nullptr) fail_recording(Error{"the recording captured nothing"});
    if (record_error_.ok()) {
      const cudaError_t e = cudaGraphInstantiate(&r->exec, graph, 0);
      if (e != cudaSuccess) {
        cudaGetLastError();
        r->exec = nullptr;
        fail_recording(Error{std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e)});
      }
    }
    if (graph != nullptr) cudaGraphDestroy(graph);
    if (record_error_.ok() && cudaEventCreateWithFlags(&r->done, cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();
      r->done = nullptr;
      fail_recording(Error{"cudaEventCreate failed"});
    }
    const Status failed = std::exchange(record_error_, Status());
    if (!failed.ok()) return Error{name_ + ": recording a step: " + failed.message()};
    return std::unique_ptr<RecordedStep>(std::move(r));
  }

  bool launch(RecordedStep& step) override {
    auto& r = static_cast<CudaRecordedStep&>(step);
    if (r.generation != generation_ || r.exec == nullptr) return false;
    cudaSetDevice(device_);
    // The previous launch has read the pinned arena when its event has passed.
    if (!note(cudaEventSynchronize(r.done), "recorded step")) return true;
    for (const CudaRecordedStep::Staged& st : r.staged)
      std::memcpy(static_cast<uint8_t*>(r.pinned) + st.at, st.host, st.bytes);
    note(cudaGraphLaunch(r.exec, stream_), "recorded step launch");
    note(cudaEventRecord(r.done, stream_), "recorded step");
    return true;
  }

  // ---- ops ----
  void embedding(const int32_t* ids, int64_t n, const PackedMatrix& table, float* out) override {
    if (n <= 0) return;
    for (int64_t r = 0; r < n; ++r)
      GB_CHECK(ids[r] >= 0 && ids[r] < table.rows);  // the interface's precondition
    cudaSetDevice(device_);
    const int32_t* d = static_cast<const int32_t*>(stage(ids, static_cast<size_t>(n) * sizeof(int32_t)));
    if (d != nullptr) note(kcu::embedding(stream_, d, n, table, out));
  }

  void add_rows(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) override {
    if (n <= 0) return;
    cudaSetDevice(device_);
    const int64_t* d = static_cast<const int64_t*>(stage(positions, static_cast<size_t>(n) * sizeof(int64_t)));
    if (d != nullptr) note(kcu::add_rows(stream_, d, n, table, dim, x));
  }

  void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out) override {
    cudaSetDevice(device_);
    note(kcu::rms_norm(stream_, x, rows, dim, w, eps, out));
  }

  void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                  float* out) override {
    cudaSetDevice(device_);
    note(kcu::layer_norm(stream_, x, rows, dim, w, b, eps, out));
  }

  void add_rms_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, float eps,
                    float* out) override {
    cudaSetDevice(device_);
    note(kcu::add_rms_norm(stream_, x, y, rows, dim, w, eps, out));
  }

  void add_layer_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                      float* out) override {
    cudaSetDevice(device_);
    note(kcu::add_layer_norm(stream_, x, y, rows, dim, w, b, eps, out));
  }

  void linear(const float* x, int64_t rows, const LinearWeights& w, float* y) override {
    if (rows <= 0) return;
    cudaSetDevice(device_);
    size_t ws = 0;
    for (const PackedMatrix& p : w.parts) ws = std::max(ws, kcu::linear_workspace_bytes(p, rows));
    if (!note(ensure(workspace_, ws, "linear workspace"))) return;
    const kcu::MatmulContext ctx{stream_, lt_, ws > 0 ? workspace_->data() : nullptr, ws > 0 ? workspace_->size() : 0};
    const int64_t out = w.out();
    int64_t offset = 0;
    for (const PackedMatrix& p : w.parts) {
      note(kcu::linear(ctx, x, rows, p, w.b ? w.b + offset : nullptr, y + offset, out));
      offset += p.rows;
    }
  }

  std::string linear_kernel(const PackedMatrix& w) const override { return kcu::linear_kernel_name(w, 1); }

  void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int64_t* positions,
            const RopeParams& rope) override {
    if (rope.rot_dim == 0 || rows <= 0) return;
    cudaSetDevice(device_);
    const int64_t* pos = static_cast<const int64_t*>(stage(positions, static_cast<size_t>(rows) * sizeof(int64_t)));
    const float* inv = staged_inv_freq(rope);
    if (pos == nullptr || inv == nullptr) return;
    note(kcu::rope(stream_, x, rows, row_stride, heads, head_dim, pos, rope.rot_dim, inv));
  }

  bool fill_synthetic(Buffer& dst, size_t offset, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n,
                      kernels::WeightCodec codec) override {
    using kernels::WeightCodec;
    if (codec != WeightCodec::kF32 && codec != WeightCodec::kF16 && codec != WeightCodec::kBF16) return false;
    cudaSetDevice(device_);
    note(kcu::synthetic_fill_as(stream_, key, mean, stddev, begin, n, codec, static_cast<uint8_t*>(dst.data()) + offset));
    return true;
  }

  bool quantizes_synthetic(const kernels::QuantSpec& spec, int64_t cols) const override {
    return kernels::synthetic_quantizable(spec.codec, spec.layout, spec.group, cols);
  }
  void quantize_synthetic(uint64_t key, float mean, float stddev, const kernels::QuantSpec& spec, int64_t rows,
                          int64_t cols, const kernels::QuantizedArraysOut& out) override {
    cudaSetDevice(device_);
    note(kcu::synthetic_quantize(stream_, key, mean, stddev, spec, rows, cols, out));
  }

  void kv_store(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                const KvLayerView& cache, const int64_t* visible) override {
    if (n <= 0) return;
    for (int64_t r = 0; r < n; ++r) GB_CHECK(visible[r] >= 1);  // the interface's precondition
    cudaSetDevice(device_);
    // The same array attention() stages next: staged once (the recent-array check).
    const int64_t* vis = static_cast<const int64_t*>(stage(visible, static_cast<size_t>(n) * sizeof(int64_t)));
    if (vis != nullptr) note(kcu::kv_store_at(stream_, k, v, n, row_stride, kv_width, cache, vis));
  }

  void attention(const float* q, int64_t n, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                 const KvLayerView& cache, const int64_t* visible, const RopeParams& rope, float scale,
                 float* out) override {
    if (n <= 0) return;
    cudaSetDevice(device_);
    const int64_t* vis = static_cast<const int64_t*>(stage(visible, static_cast<size_t>(n) * sizeof(int64_t)));
    if (vis == nullptr) return;
    const float* inv = nullptr;
    if (rope.rot_dim > 0) {
      inv = staged_inv_freq(rope);
      if (inv == nullptr) return;
    }
    const size_t ws = kcu::attention_workspace_bytes(n, heads, head_dim, cache.len);
    if (!note(ensure(workspace_, ws, "attention workspace"))) return;
    note(kcu::attention(stream_, q, n, q_stride, heads, kv_heads, head_dim, cache, vis,
                        kcu::RopeTable{rope.rot_dim, inv}, scale, out, ws > 0 ? workspace_->data() : nullptr,
                        ws > 0 ? workspace_->size() : 0));
  }

  void add(float* x, const float* y, int64_t n) override {
    cudaSetDevice(device_);
    note(kcu::add(stream_, x, y, n));
  }

  void silu_mul(const float* gu, int64_t rows, int64_t inner, float* out) override {
    cudaSetDevice(device_);
    note(kcu::silu_mul(stream_, gu, rows, inner, out));
  }

  void gelu(float* x, int64_t n, bool tanh_approximation) override {
    cudaSetDevice(device_);
    note(kcu::gelu(stream_, x, n, tanh_approximation));
  }

  // ---- logits reductions: the results land in reduce_ and only they are downloaded ----
  void argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids) override {
    if (rows <= 0) return;
    std::fill(ids, ids + rows, 0);
    cudaSetDevice(device_);
    if (!note(ensure(reduce_, static_cast<size_t>(rows) * sizeof(int32_t), "logits reduction"))) return;
    if (note(kcu::argmax_rows(stream_, logits, rows, vocab, static_cast<int32_t*>(reduce_->data()))))
      fetch(ids, static_cast<size_t>(rows) * sizeof(int32_t));
  }

  void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SamplingCut& cut, const double* u,
                   int32_t* ids) override {
    if (rows <= 0) return;
    std::fill(ids, ids + rows, 0);
    cudaSetDevice(device_);
    const double* du = static_cast<const double*>(stage(u, static_cast<size_t>(rows) * sizeof(double)));
    if (du == nullptr) return;
    if (!note(ensure(reduce_, static_cast<size_t>(rows) * sizeof(int32_t), "logits reduction"))) return;
    if (note(kcu::sample_rows(stream_, logits, rows, vocab, cut.temperature, cut.top_k, cut.top_p, du,
                              static_cast<int32_t*>(reduce_->data()))))
      fetch(ids, static_cast<size_t>(rows) * sizeof(int32_t));
  }

  void target_log_probs(const float* logits, int64_t rows, int64_t vocab, const int32_t* targets,
                        double* lp) override {
    if (rows <= 0) return;
    for (int64_t r = 0; r < rows; ++r) GB_CHECK(targets[r] < vocab);  // the interface's precondition
    std::fill(lp, lp + rows, 0.0);
    cudaSetDevice(device_);
    const int32_t* dt = static_cast<const int32_t*>(stage(targets, static_cast<size_t>(rows) * sizeof(int32_t)));
    if (dt == nullptr) return;
    if (!note(ensure(reduce_, static_cast<size_t>(rows) * sizeof(double), "logits reduction"))) return;
    if (note(kcu::target_log_probs(stream_, logits, rows, vocab, dt, static_cast<double*>(reduce_->data()))))
      fetch(lp, static_cast<size_t>(rows) * sizeof(double));
  }

 private:
  // The first `bytes` of reduce_ into host memory, after the kernel that wrote them.
  void fetch(void* host, size_t bytes) {
    if (note(cudaMemcpyAsync(host, reduce_->data(), bytes, cudaMemcpyDeviceToHost, stream_), "logits reduction"))
      note(cudaStreamSynchronize(stream_), "logits reduction");
  }

  Result<std::unique_ptr<Buffer>> alloc_as(size_t bytes, MemoryUse use) {
    cudaSetDevice(device_);
    const size_t granted = round_up(bytes, kGranule);
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, granted);
    if (e != cudaSuccess) {
      cudaGetLastError();  // an allocation failure is not sticky: clear it, the context stays usable
      size_t free = 0, total = 0;
      const bool info = cudaMemGetInfo(&free, &total) == cudaSuccess;
      if (!info) cudaGetLastError();
      uint64_t held[3], held_total;
      {
        std::lock_guard<std::mutex> l(account_->mu);
        for (size_t i = 0; i < 3; ++i) held[i] = account_->live[i];
        held_total = account_->total;
      }
      std::string msg = std::string(kDeviceOutOfMemory) + " on " + name_ + ": allocating " + bytes_text(bytes) +
                        " (" + use_name(use) + ")";
      msg += info ? ", " + bytes_text(free) + " free of " + bytes_text(total) : std::string(", free memory unknown");
      msg += "; this backend holds " + bytes_text(held_total) + " (weights " + std::to_string(held[0]) +
             ", KV cache " + std::to_string(held[1]) + ", workspace " + std::to_string(held[2]) + " bytes)";
      if (e != cudaErrorMemoryAllocation) msg += " [" + std::string(cudaGetErrorString(e)) + "]";
      return Error{msg};
    }
    account_->add(use, granted);
    return std::unique_ptr<Buffer>(new DeviceBuffer(account_, device_, p, bytes, granted, use));
  }

  // Grows a backend-owned buffer to at least `bytes` (workspace). The old one is
  // freed first: cudaFree waits for the kernels that read it.
  Status ensure(std::unique_ptr<Buffer>& b, size_t bytes, const char* what) {
    if (bytes == 0 || (b && b->size() >= bytes)) return Status::Ok();
    if (recording_ != nullptr)
      return Error{std::string(what) + " would grow to " + std::to_string(bytes) + " bytes while a step is recorded"};
    // The ops a step records read the kernels' workspace; the logits reductions'
    // buffer and the copy scratch are used outside recorded steps only.
    if (&b == &workspace_) ++generation_;  // a recorded step's pointer into the old one is stale now
    b.reset();
    Result<std::unique_ptr<Buffer>> n = alloc_as(round_up(bytes, kGranule), MemoryUse::kWorkspace);
    if (!n) return Error{std::string(what) + ": " + n.message()};
    b = std::move(*n);
    return Status::Ok();
  }

  // The first failure of the step being recorded (end_recording() returns it).
  void fail_recording(Status s) {
    if (record_error_.ok()) std::swap(record_error_, s);
  }

  // Keeps the first error; true when s is ok.
  bool note(const Status& s) {
    if (s.ok()) return true;
    Status& first = recording_ != nullptr ? record_error_ : error_;  // a recording's failure is end_recording()'s
    if (first.ok()) first = s;
    return false;
  }
  bool note(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return true;
    return note(Status(Error{name_ + ": " + what + ": " + cudaGetErrorString(e)}));
  }

  // A device copy of a host array, valid for the kernels enqueued after it until the
  // ring wraps; null on failure (recorded).
  const void* stage(const void* host, size_t bytes) {
    if (recording_ != nullptr) return stage_recorded(host, bytes);
    for (const Staged& s : recent_)
      if (s.bytes == bytes && s.device != nullptr && std::memcmp(s.host_copy.data(), host, bytes) == 0)
        return s.device;
    const size_t need = round_up(bytes, kGranule);
    if (ring_dev_ == nullptr || need > ring_bytes_) {
      // (Re)make the rings, at least twice this array and never below 1 MiB. The old
      // ones are retired, not freed: an array staged earlier in the same op may still
      // be read from them by the kernel about to be enqueued (freed at synchronize()).
      note(cudaStreamSynchronize(stream_), "staging");
      if (ring_dev_ != nullptr) retired_.push_back(std::move(ring_dev_));
      if (ring_host_ != nullptr) retired_host_.push_back(ring_host_);
      ring_host_ = nullptr;
      ring_bytes_ = std::max<size_t>(2 * need, size_t{1} << 20);
      Result<std::unique_ptr<Buffer>> d = alloc_as(ring_bytes_, MemoryUse::kWorkspace);
      if (!d) {
        note(Status(Error{"staging ring: " + d.message()}));
        return nullptr;
      }
      if (!note(cudaMallocHost(&ring_host_, ring_bytes_), "staging ring (pinned host memory)")) {
        ring_host_ = nullptr;
        return nullptr;
      }
      ring_dev_ = std::move(*d);
      ring_at_ = 0;
      recent_.fill(Staged{});
    }
    if (ring_at_ + need > ring_bytes_) {
      // Wrap: wait until every copy out of the ring (and every kernel reading the
      // device ring) is done before overwriting either.
      note(cudaStreamSynchronize(stream_), "staging");
      ring_at_ = 0;
      recent_.fill(Staged{});
    }
    uint8_t* h = static_cast<uint8_t*>(ring_host_) + ring_at_;
    uint8_t* d = static_cast<uint8_t*>(ring_dev_->data()) + ring_at_;
    std::memcpy(h, host, bytes);
    if (!note(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, stream_), "staging")) return nullptr;
    ring_at_ += need;
    Staged& slot = recent_[next_recent_++ % recent_.size()];
    slot.device = d;
    slot.bytes = bytes;
    slot.host_copy.assign(static_cast<const uint8_t*>(host), static_cast<const uint8_t*>(host) + bytes);
    return d;
  }

  // stage() while a step is recorded: the array's place in the recording's arenas
  // (once per array: kv_store and attention stage the same visible lengths), a
  // pinned-to-device copy recorded before the ops that read it.
  const void* stage_recorded(const void* host, size_t bytes) {
    CudaRecordedStep& r = *recording_;
    if (r.arena == nullptr || r.pinned == nullptr) return nullptr;  // the recording failed to start
    for (const CudaRecordedStep::Staged& st : r.staged)
      if (st.host == host && st.bytes == bytes) return static_cast<uint8_t*>(r.arena->data()) + st.at;
    const size_t need = round_up(bytes, kGranule);
    if (r.used + need > r.bytes) {
      note(Status(Error{"a recorded step stages more than " + std::to_string(r.bytes) + " bytes of host arrays"}));
      return nullptr;
    }
    const size_t at = r.used;
    r.used += need;
    uint8_t* h = static_cast<uint8_t*>(r.pinned) + at;
    uint8_t* d = static_cast<uint8_t*>(r.arena->data()) + at;
    std::memcpy(h, host, bytes);
    if (!note(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, stream_), "staging (recorded)")) return nullptr;
    r.staged.push_back({host, bytes, at});
    return d;
  }

  // The staging rings replaced by larger ones; the stream is idle when this runs.
  void free_retired() {
    retired_.clear();
    for (void* h : retired_host_) cudaFreeHost(h);
    retired_host_.clear();
  }

  const float* staged_inv_freq(const RopeParams& rope) {
    return static_cast<const float*>(stage(rope.inv_freq, static_cast<size_t>(rope.rot_dim / 2) * sizeof(float)));
  }

  struct Staged {
    const void* device = nullptr;
    size_t bytes = 0;
    std::vector<uint8_t> host_copy;
  };

  int device_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  MemoryUse use_ = MemoryUse::kWorkspace;
  std::shared_ptr<Account> account_ = std::make_shared<Account>();
  Status error_;
  std::unique_ptr<Buffer> workspace_, scratch_, reduce_, ring_dev_;
  void* ring_host_ = nullptr;
  size_t ring_bytes_ = 0, ring_at_ = 0;
  std::vector<std::unique_ptr<Buffer>> retired_;
  std::vector<void*> retired_host_;
  std::array<Staged, 8> recent_;
  size_t next_recent_ = 0;
  // Recorded steps: the one being recorded, its first failure, and the generation of
  // the kernels' workspace (bumped whenever ensure() reallocates it).
  std::unique_ptr<CudaRecordedStep> recording_;
  bool capturing_ = false;  // the stream is capturing (begin_recording succeeded)
  Status record_error_;
  uint64_t generation_ = 0;
};

}  // namespace

bool cuda_backend_built() { return true; }

Result<std::unique_ptr<CudaBackend>> make_cuda_backend(int device) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return Error{"backend cuda:" + std::to_string(device) + ": no CUDA device (" + cudaGetErrorString(e) + ")"};
  }
  if (device < 0 || device >= count)
    return Error{"backend cuda:" + std::to_string(device) + ": no such CUDA device (the runtime sees " +
                 std::to_string(count) + ")"};
  auto b = std::make_unique<CudaBackendImpl>(device);
  if (Status s = b->init(); !s.ok()) return Error{"backend cuda:" + std::to_string(device) + ": " + s.message()};
  return std::unique_ptr<CudaBackend>(std::move(b));
}

Result<DeviceFreeMemory> cuda_device_free_memory(int device) {
  int count = 0;
  if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess) {
    cudaGetLastError();
    return Error{"cuda:" + std::to_string(device) + ": no CUDA device (" + cudaGetErrorString(e) + ")"};
  }
  if (device < 0 || device >= count)
    return Error{"cuda:" + std::to_string(device) + ": no such CUDA device (the runtime sees " +
                 std::to_string(count) + ")"};
  GB_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  size_t free = 0, total = 0;
  GB_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free, &total));
  return DeviceFreeMemory{free, total};
}

}  // namespace gb::engine

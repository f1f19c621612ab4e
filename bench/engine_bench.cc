// engine_bench: the CPU reference engine's speed, as ratios measured in one run.
//
//   decode     tokens/s of greedy single-sequence decode, and its ratio to the
//              issue's target (15 tokens/s for synthetic gpt2 on 2 cores);
//   bandwidth  the weights streamed per decode step over the step time, and its
//              ratio to this machine's measured memcpy bandwidth (the roofline a
//              memory-bound decode can reach);
//   prefill    tokens/s and the FLOP rate of a prompt's forward pass;
//   batch      decode tokens/s at batch 4 and its ratio to batch 1.
//
// With --kv-compare it prints only decode and prefill tokens/s with the KV cache
// allocated statically (prompt + steps slots up front), in pages of 256 slots (the
// default) and grown by doubling, medians of --repeats interleaved rounds, each
// over static: what paging costs the attention kernels (every slot found through the
// page table) at --prompt-tokens of context, with --kv-format's element.
//
// With --load-compare it prints only Model::load's seconds and the resident memory
// it peaked at above what was resident before it, for a synthetic model drawn on
// the host (each tensor in f32, then quantized or converted, and copied) and made in
// the backend's memory (Backend::fill_synthetic, Backend::quantize_synthetic: the
// draw and the quantizer on the backend's threads), medians of --repeats
// interleaved rounds, and their ratios.
//
// With --brief it prints only "DECODE PREFILL" (batch-1 decode and prefill
// tokens/s, the best of --repeats runs) and the kernels its linear layers ran, for
// bench/engine_vs_llamacpp.sh. --activations q8 quantizes the activations of the
// GGUF codecs that have q8 kernels to 8 bits, as llama.cpp does.
//
// Not a test: run by hand, e.g. build/bin/engine_bench --model synthetic:gpt2.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "engine/measure/engine_session.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/model/sampler.h"
#include "engine/weights/weight_source.h"
#include "kernels/device_info.h"
#include "engine/backend/cpu_backend.h"

namespace {

using Clock = std::chrono::steady_clock;
using gb::engine::SequenceStep;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Decodes `steps` tokens for `batch` sequences after a `prompt`-token prefill;
// returns {prefill seconds, decode seconds per step}.
std::pair<double, double> run(gb::engine::Model& m, int batch, int prompt, int steps,
                              const gb::engine::KvCacheOptions& kv = {}) {
  auto cache = m.make_cache(kv, batch);
  if (!cache.ok()) {
    std::fprintf(stderr, "%s\n", cache.message().c_str());
    std::exit(1);
  }
  std::mt19937 g(1);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
  std::vector<SequenceStep> s;
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < prompt; ++i)
      prompts[static_cast<size_t>(b)].push_back(static_cast<int32_t>(g() % m.config().vocab_size));
    s.push_back({b, prompts[static_cast<size_t>(b)]});
  }
  std::vector<float> logits;
  auto t0 = Clock::now();
  if (!m.forward(s, **cache, gb::engine::LogitsMode::kLast, &logits).ok()) std::exit(1);
  const double prefill = seconds_since(t0);
  std::vector<int32_t> next(static_cast<size_t>(batch));
  t0 = Clock::now();
  for (int i = 0; i < steps; ++i) {
    s.clear();
    for (int b = 0; b < batch; ++b) {
      next[static_cast<size_t>(b)] = gb::engine::argmax(
          std::span<const float>(logits).subspan(static_cast<size_t>(b) * m.config().vocab_size, m.config().vocab_size));
      s.push_back({b, std::span<const int32_t>(&next[static_cast<size_t>(b)], 1)});
    }
    if (!m.forward(s, **cache, gb::engine::LogitsMode::kLast, &logits).ok()) std::exit(1);
  }
  return {prefill, seconds_since(t0) / steps};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The CPU engine's decode and prefill speed, as ratios against targets"};
  std::string model = "synthetic:gpt2";
  int threads = 0, prompt = 128, steps = 64;
  double target = 15.0;
  app.add_option("--model", model, "hf:DIR, gguf:FILE or synthetic:PRESET")->capture_default_str();
  std::string weight_format;
  app.add_option("--weight-format", weight_format, "weight format (see `gridbench formats`); default: as stored");
  app.add_option("--threads", threads, "CPU threads (0: all)")->capture_default_str();
  app.add_option("--prompt-tokens", prompt, "prefill length")->capture_default_str();
  app.add_option("--steps", steps, "decode steps measured")->capture_default_str();
  app.add_option("--target", target, "decode tokens/s target")->capture_default_str();
  std::string activations = "f32";
  app.add_option("--activations", activations, "linear layers' activations: f32, or q8 (8-bit blocks for the GGUF codecs)")
      ->check(CLI::IsMember({"f32", "q8"}))
      ->capture_default_str();
  bool brief = false;
  int repeats = 3;
  std::string kv_format = "f32";
  bool kv_compare = false;
  app.add_flag("--kv-compare", kv_compare, "print only: static, paged and doubling KV caches' speed, over static");
  app.add_option("--kv-format", kv_format, "--kv-compare: the KV format (f32, f16, int8, ...)")->capture_default_str();
  bool load_compare = false;
  app.add_flag("--load-compare", load_compare,
               "print only: a synthetic model's load time and peak memory, drawn on the host and on the backend");
  app.add_flag("--brief", brief, "print only: decode_tokens/s prefill_tokens/s, then the kernels used");
  app.add_option("--repeats", repeats, "--brief: runs, the best reported; --kv-compare: rounds, the median reported")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto w = gb::engine::open_weights(model);
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", w.message().c_str());
    return 1;
  }
  auto backend = gb::engine::make_cpu_backend(
      threads, activations == "q8" ? gb::engine::ActivationMode::kQ8 : gb::engine::ActivationMode::kF32);
  auto load = gb::engine::load_options(weight_format);
  if (!load.ok()) {
    std::fprintf(stderr, "engine_bench: --weight-format: %s\n", load.message().c_str());
    return 2;
  }
  if (load_compare) {
    // Each load in a child process of its own (fork before any backend thread
    // exists there), so that one load's freed memory, which the allocator keeps,
    // does not hide the next one's peak.
    std::vector<double> secs[2], peak[2];
    for (int r = 0; r < repeats; ++r)
      for (int on_backend = 0; on_backend < 2; ++on_backend) {
        int fds[2];
        if (pipe(fds) != 0) return 1;
        const pid_t pid = fork();
        if (pid == 0) {
          close(fds[0]);
          auto src = gb::engine::open_weights(model);
          if (!src.ok()) _exit(1);
          auto b = gb::engine::make_cpu_backend(threads);
          gb::engine::LoadOptions o = *load;
          o.draw_on_backend = on_backend == 1;
          const double before = gb::engine::current_rss_bytes();
          gb::engine::reset_run_peak_rss();
          const auto t0 = Clock::now();
          auto lm = gb::engine::Model::load(**src, *b, o);
          double out[2] = {lm.ok() ? seconds_since(t0) : -1.0, gb::engine::run_peak_rss_bytes() - before};
          if (!lm.ok()) std::fprintf(stderr, "%s\n", lm.message().c_str());
          (void)!write(fds[1], out, sizeof(out));
          _exit(lm.ok() ? 0 : 1);
        }
        close(fds[1]);
        double got[2] = {-1, 0};
        const bool read_all = read(fds[0], got, sizeof(got)) == static_cast<ssize_t>(sizeof(got));
        close(fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!read_all || got[0] < 0 || status != 0) return 1;
        secs[on_backend].push_back(got[0]);
        peak[on_backend].push_back(got[1]);
      }
    std::printf("%s, weight format %s, medians of %d rounds\n", model.c_str(),
                weight_format.empty() ? "as stored" : weight_format.c_str(), repeats);
    std::printf("%-8s %10s %16s\n", "drawn", "load s", "peak RSS MB");
    const char* names[2] = {"host", "backend"};
    for (int i = 0; i < 2; ++i) std::printf("%-8s %10.3f %16.1f\n", names[i], median(secs[i]), median(peak[i]) / 1e6);
    std::printf("backend / host: load %.3f, peak %.3f\n", median(secs[1]) / median(secs[0]),
                median(peak[1]) / median(peak[0]));
    return 0;
  }
  auto m = gb::engine::Model::load(**w, *backend, *load);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.message().c_str());
    return 1;
  }
  if (kv_compare) {
    auto base = gb::engine::kv_cache_options(kv_format);
    if (!base.ok()) {
      std::fprintf(stderr, "engine_bench: --kv-format: %s\n", base.message().c_str());
      return 2;
    }
    const char* names[3] = {"static", "paged-256", "doubling"};
    gb::engine::KvCacheOptions opts[3] = {*base, *base, *base};
    opts[0].capacity = prompt + steps;
    opts[2].growth = gb::engine::KvGrowth::kDoubling;
    std::vector<double> decode[3], prefill[3];
    run(**m, 1, 8, 4);  // warm-up
    for (int r = 0; r < repeats; ++r)
      for (int i = 0; i < 3; ++i) {
        const auto [pre, step] = run(**m, 1, prompt, steps, opts[i]);
        decode[i].push_back(1.0 / step);
        prefill[i].push_back(prompt / pre);
      }
    std::printf("kv %s, context %d + %d steps, medians of %d rounds\n", kv_format.c_str(), prompt, steps, repeats);
    std::printf("%-10s %12s %8s %13s %8s\n", "allocation", "decode tok/s", "/static", "prefill tok/s", "/static");
    for (int i = 0; i < 3; ++i)
      std::printf("%-10s %12.2f %8.3f %13.1f %8.3f\n", names[i], median(decode[i]), median(decode[i]) / median(decode[0]),
                  median(prefill[i]), median(prefill[i]) / median(prefill[0]));
    return 0;
  }
  if (brief) {
    run(**m, 1, 8, 4);  // warm-up
    double best_decode = 0, best_prefill = 0;
    for (int i = 0; i < repeats; ++i) {
      const auto [prefill, step] = run(**m, 1, prompt, steps);
      best_decode = std::max(best_decode, 1.0 / step);
      best_prefill = std::max(best_prefill, prompt / prefill);
    }
    std::printf("%.2f %.2f\n", best_decode, best_prefill);
    std::printf("%s\n", (*m)->linear_kernels().c_str());
    return 0;
  }
  const double weight_bytes = static_cast<double>((*m)->weight_bytes());
  const double copy_bw = gb::kernels::measure_host_copy_bandwidth(256u << 20, 5);
  const gb::kernels::DeviceInfo cpu = gb::kernels::host_cpu();
  std::printf("machine: %s, %d cores, %d threads used; model %s, %.1f MB of f32 weights\n", cpu.name.c_str(),
              cpu.cores, threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()),
              (*w)->describe().c_str(), weight_bytes / 1e6);

  run(**m, 1, 8, 4);  // warm-up: page in the weights and the scratch buffers
  const auto [prefill1, step1] = run(**m, 1, prompt, steps);
  const auto [prefill4, step4] = run(**m, 4, prompt, steps / 4 > 0 ? steps / 4 : 1);
  const double tps1 = 1.0 / step1, tps4 = 4.0 / step4;
  const double stream_bw = weight_bytes / step1;
  // 2 FLOPs per weight per token (the matrices; attention is small at this length).
  const double prefill_flops = 2.0 * weight_bytes / 4.0 * prompt / prefill1;

  std::printf("decode (batch 1):  %7.2f ms/token = %6.1f tokens/s   (ratio to the %.0f tokens/s target: %.2f)\n",
              step1 * 1e3, tps1, target, tps1 / target);
  std::printf("weight stream:     %7.2f GB/s; memcpy bandwidth %.2f GB/s   (ratio: %.2f)\n", stream_bw / 1e9,
              copy_bw / 1e9, stream_bw / copy_bw);
  std::printf("prefill %d tokens: %7.1f ms = %6.0f tokens/s, %.1f GFLOP/s\n", prompt, prefill1 * 1e3,
              prompt / prefill1, prefill_flops / 1e9);
  std::printf("decode (batch 4):  %7.2f ms/step = %6.1f tokens/s   (ratio to batch 1: %.2f)\n", step4 * 1e3, tps4,
              tps4 / tps1);
  (void)prefill4;
  return 0;
}

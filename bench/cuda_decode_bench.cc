// cuda_decode_bench: whole-model decode on the CUDA backend. For each synthetic
// model, weight format and batch size: a prompt prefilled per sequence, warm-up
// steps, then timed decode steps of the whole batch; prints decode tokens/s and the
// bytes each step moves (every weight once, plus each sequence's KV cache read)
// per second over the device-to-device copy bandwidth measured in the same run;
// each batch twice, its decode steps launched from CUDA graphs (Model's recorded
// steps) and enqueued op by op, and the ratio of the two (--graphs on or off: one).
// Without a CUDA device it prints "no CUDA device: nothing measured" and exits 0.
//
//   cuda_decode_bench [--models llama-3-8b,qwen2.5-1.5b,qwen3-1.7b,pythia-2.8b]
//                     [--formats bf16] [--batches 1,8,32] [--kv f16] [--prompt 32]
//                     [--steps 32] [--graphs both|on|off] [--json FILE]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backend/cuda_backend.h"
#include "engine/model/model.h"
#include "engine/weights/weight_source.h"
#include "kernels/device_info.h"

namespace {

using namespace gb;
using namespace gb::engine;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

struct Flags {
  std::vector<std::string> models = {"llama-3-8b", "qwen2.5-1.5b", "qwen3-1.7b", "pythia-2.8b"};
  std::vector<std::string> formats = {"bf16"};
  std::vector<int> batches = {1, 8, 32};
  std::string kv = "f16";
  int prompt = 32;
  int steps = 32;
  std::string graphs = "both";
  std::string json;
};

int usage(const char* why) {
  std::fprintf(stderr,
               "cuda_decode_bench: %s\nusage: cuda_decode_bench [--models A,B] [--formats F,G] [--batches 1,8,32] "
               "[--kv f16] [--prompt N] [--steps N] [--graphs both|on|off] [--json FILE]\n",
               why);
  return 2;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage("whole-model decode tokens/s and bytes/s over copy bandwidth on cuda:0");
      return 0;
    }
    if (i + 1 >= argc) return usage(("missing value after " + a).c_str());
    const std::string v = argv[++i];
    if (a == "--models") f.models = split(v);
    else if (a == "--formats") f.formats = split(v);
    else if (a == "--batches") {
      f.batches.clear();
      for (const std::string& b : split(v)) f.batches.push_back(std::atoi(b.c_str()));
    } else if (a == "--kv") f.kv = v;
    else if (a == "--prompt") f.prompt = std::atoi(v.c_str());
    else if (a == "--steps") f.steps = std::atoi(v.c_str());
    else if (a == "--graphs") f.graphs = v;
    else if (a == "--json") f.json = v;
    else return usage(("unknown flag " + a).c_str());
  }
  for (int b : f.batches)
    if (b < 1) return usage("--batches: every batch size must be >= 1");
  if (f.prompt < 1 || f.steps < 1) return usage("--prompt and --steps must be >= 1");
  if (f.graphs != "both" && f.graphs != "on" && f.graphs != "off") return usage("--graphs: both, on or off");
  std::vector<bool> graph_modes;
  if (f.graphs != "off") graph_modes.push_back(true);
  if (f.graphs != "on") graph_modes.push_back(false);

  if (kernels::cuda_devices().empty()) {
    std::printf("no CUDA device: nothing measured\n");
    return 0;
  }
  Result<double> bw = kernels::measure_cuda_copy_bandwidth(0, size_t{1} << 30, 10);
  if (!bw) {
    std::fprintf(stderr, "cuda_decode_bench: measuring copy bandwidth: %s\n", bw.message().c_str());
    return 1;
  }
  const kernels::DeviceInfo dev = kernels::cuda_devices().front();
  std::printf("device: %s, copy bandwidth %.1f GB/s (measured)\n", dev.name.c_str(), *bw / 1e9);
  std::printf("%-14s %-14s %5s %6s %10s %12s %10s %8s %s\n", "model", "format", "batch", "graphs", "load_s",
              "tokens/s", "GB/s", "of_copy", "kernels");
  nlohmann::json rows = nlohmann::json::array();
  int failures = 0;
  for (const std::string& model : f.models)
    for (const std::string& format : f.formats) {
      Result<std::unique_ptr<CudaBackend>> backend = make_cuda_backend(0);
      if (!backend) {
        std::fprintf(stderr, "%s\n", backend.message().c_str());
        return 1;
      }
      const auto t0 = std::chrono::steady_clock::now();
      Result<std::unique_ptr<WeightSource>> w = open_weights("synthetic:" + model);
      Result<LoadOptions> load = load_options(format);
      if (!w || !load) {
        std::fprintf(stderr, "%s %s: %s\n", model.c_str(), format.c_str(),
                     (!w ? w.message() : load.message()).c_str());
        ++failures;
        continue;
      }
      Result<std::unique_ptr<Model>> m = Model::load(**w, **backend, *load);
      if (!m) {
        std::fprintf(stderr, "%s %s: %s\n", model.c_str(), format.c_str(), m.message().c_str());
        ++failures;
        continue;
      }
      const double load_s = seconds_since(t0);
      const ModelConfig& c = (*m)->config();
      for (int batch : f.batches) {
        double graphs_tokens_s = 0;
        for (const bool graphs : graph_modes) {
          (*m)->set_record_decode_steps(graphs);
          Result<KvCacheOptions> kv = kv_cache_options(f.kv);
          if (!kv) {
            std::fprintf(stderr, "--kv %s: %s\n", f.kv.c_str(), kv.message().c_str());
            return 2;
          }
          const int warm = 2;
          kv->capacity = f.prompt + warm + f.steps;
          Result<std::unique_ptr<KvCache>> cache = (*m)->make_cache(*kv, batch);
          if (!cache) {
            std::fprintf(stderr, "%s %s batch %d: %s\n", model.c_str(), format.c_str(), batch, cache.message().c_str());
            ++failures;
            continue;
          }
          std::vector<float> logits;
          std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
          std::vector<SequenceStep> steps;
          for (int s = 0; s < batch; ++s) {
            for (int i = 0; i < f.prompt; ++i)
              prompts[static_cast<size_t>(s)].push_back(static_cast<int32_t>((s * 7919 + i * 31 + 1) % c.vocab_size));
            steps.push_back({s, prompts[static_cast<size_t>(s)]});
          }
          Status st = (*m)->forward(steps, **cache, LogitsMode::kLast, &logits);
          std::vector<int32_t> next(static_cast<size_t>(batch), 1);
          auto decode = [&]() -> Status {
            std::vector<SequenceStep> d;
            for (int s = 0; s < batch; ++s) d.push_back({s, std::span<const int32_t>(&next[static_cast<size_t>(s)], 1)});
            return (*m)->forward(d, **cache, LogitsMode::kLast, &logits);
          };
          for (int i = 0; i < warm && st.ok(); ++i) st = decode();
          const int64_t launches0 = (*m)->recorded_steps().launches();
          const auto t1 = std::chrono::steady_clock::now();
          for (int i = 0; i < f.steps && st.ok(); ++i) st = decode();  // forward() synchronizes (logits reach the host)
          const double secs = seconds_since(t1);
          if (!st.ok()) {
            std::fprintf(stderr, "%s %s batch %d: %s\n", model.c_str(), format.c_str(), batch, st.message().c_str());
            ++failures;
            continue;
          }
          const double tokens_s = static_cast<double>(batch) * f.steps / secs;
          // Bytes one step moves at least: every weight once, each sequence's KV cache
          // (at its mean length over the timed steps) once.
          const double mean_len = f.prompt + warm + (f.steps - 1) / 2.0;
          const double kv_bytes = static_cast<double>(KvCache::bytes_per_token(c, kv->element)) * mean_len * batch;
          const double step_bytes = static_cast<double>((*m)->weight_bytes()) + kv_bytes;
          const double bytes_s = step_bytes * f.steps / secs;
          std::printf("%-14s %-14s %5d %6s %10.1f %12.1f %10.1f %7.1f%% %s\n", model.c_str(), format.c_str(), batch,
                      graphs ? "on" : "off", load_s, tokens_s, bytes_s / 1e9, 100.0 * bytes_s / *bw,
                      (*m)->linear_kernels().c_str());
          const std::string failure = (*m)->recorded_steps().last_failure();
          if (graphs && !failure.empty()) std::printf("  graphs: recording failed, steps ran op by op: %s\n", failure.c_str());
          if (graphs) graphs_tokens_s = tokens_s;
          else if (graphs_tokens_s > 0) std::printf("  graphs / op by op: %.3f\n", graphs_tokens_s / tokens_s);
          std::fflush(stdout);
          rows.push_back({{"model", model}, {"weight_format", format}, {"kv_format", f.kv}, {"batch", batch},
                          {"graphs", graphs}, {"recorded_launches", (*m)->recorded_steps().launches() - launches0},
                          {"recording_failure", failure},
                          {"load_s", load_s}, {"decode_tokens_per_s", tokens_s}, {"bytes_per_s", bytes_s},
                          {"copy_bandwidth_bytes_per_s", *bw}, {"fraction_of_copy", bytes_s / *bw},
                          {"weight_bytes", (*m)->weight_bytes()}, {"kernels", (*m)->linear_kernels()}});
        }
      }
    }
  if (!f.json.empty()) {
    std::ofstream out(f.json);
    out << nlohmann::json{{"device", dev.name}, {"copy_bandwidth_bytes_per_s", *bw}, {"rows", rows}}.dump(2) << "\n";
  }
  return failures == 0 ? 0 : 1;
}

// The engine kinds' shared setup (engine/measure/engine_session.h).
#include "engine/measure/engine_session.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include <algorithm>
#include <optional>
#include <random>
#include <thread>

#include "engine/jobs/dataset.h"
#include "engine/jobs/job_inputs.h"
#include "engine/measure/backends/smooth_calibration.h"
#include "engine/spec/model_tensors.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/weights/quantized_cache.h"
#include "kernels/device_info.h"
#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda_backend.h"

namespace gb::engine {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int64_t int_param(const Json& p, const char* name, int64_t fallback) {
  auto it = p.find(name);
  return it == p.end() ? fallback : it->get<int64_t>();
}
std::string str_param(const Json& p, const char* name, const std::string& fallback) {
  auto it = p.find(name);
  return it == p.end() ? fallback : it->get<std::string>();
}

namespace {

std::string fmt_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// SmoothQuant's calibration for a +smooth format into `load`; says what it ran on.
Result<std::string> smooth_calibration(const Json& params, WeightSource& weights, LoadOptions* load) {
  const ModelConfig& c = weights.config();
  const int64_t samples = int_param(params, "smooth_samples", 8);
  const int64_t len = std::max<int64_t>(1, std::min<int64_t>(512, c.max_position_embeddings));
  const std::string dataset = str_param(params, "smooth_dataset", str_param(params, "dataset", ""));
  std::vector<std::vector<int32_t>> seqs;
  std::string what;
  const Tokenizer* tok = weights.tokenizer();
  std::optional<Tokenizer> own;
  if (auto it = params.find("tokenizer"); it != params.end()) {
    Result<Tokenizer> t = Tokenizer::from_file(it->get<std::string>());
    if (!t) return t.error();
    own = std::move(*t);
    tok = &*own;
  }
  if (!dataset.empty() && tok != nullptr) {
    Result<std::string> text = load_text_dataset(dataset);
    if (!text) return Error{"smooth_dataset: " + text.message()};
    const std::vector<int32_t> ids = tok->encode(*text, false);
    for (int64_t i = 0; i < samples && (i + 1) * len <= static_cast<int64_t>(ids.size()); ++i)
      seqs.emplace_back(ids.begin() + i * len, ids.begin() + (i + 1) * len);
    if (seqs.empty() && !ids.empty()) seqs.emplace_back(ids.begin(), ids.begin() + std::min<int64_t>(len, ids.size()));
    if (seqs.empty()) return Error{"smooth_dataset " + dataset + ": no tokens to calibrate on"};
    what = std::to_string(seqs.size()) + " sequences of " + std::to_string(seqs.front().size()) + " tokens of " + dataset;
  } else {
    for (int64_t i = 0; i < samples; ++i)
      seqs.push_back(random_tokens(len, c.vocab_size, 1000 + static_cast<uint64_t>(i)));
    what = std::to_string(samples) + " sequences of " + std::to_string(len) + " seeded random tokens";
  }
  std::unique_ptr<Backend> cpu = make_cpu_backend(static_cast<int>(int_param(params, "threads", 0)));
  Result<ActivationAbsmax> a = calibrate_activation_absmax(weights, *cpu, seqs);
  if (!a) return a.error();
  load->smooth_absmax = std::move(*a);
  return what;
}

}  // namespace

Result<EngineSession> open_engine_session(const Json& params, const BackendWrapper& wrap) {
  EngineSession e;
  e.backend_name = str_param(params, "backend", "cpu");
  if (e.backend_name != "cpu" && e.backend_name != "cuda")
    return Error{"backend '" + e.backend_name + "': expected cpu or cuda"};
  e.threads = static_cast<int>(int_param(params, "threads", 0));
  e.weight_format = str_param(params, "weight_format", std::string(kAsStored));
  Result<LoadOptions> load = load_options(e.weight_format);
  if (!load) return load.error();
  load->record_decode_steps = params.value("cuda_graphs", true);
  e.kv_format = str_param(params, "kv_format", "f32");
  Result<KvCacheOptions> kv = kv_cache_options(e.kv_format, str_param(params, "kv_calibration", ""));
  if (!kv) return kv.error();
  e.kv = *kv;
  const auto t0 = Clock::now();
  std::string model_ref = params.at("model").get<std::string>();
  Result<QuantCacheOptions> cache = quant_cache_options_from_env();
  if (!cache) return cache.error();
  if (!cache->dir.empty() && load->format && quant_cacheable(model_ref, *load->format)) {
    // A cache failure (a family that cannot be saved, a full disk) only costs the
    // cache: the job quantizes at load as without one.
    Result<std::string> digest = input_digest("model", model_ref);
    Result<CachedModel> c = digest ? cached_quantized_model(*cache, model_ref, *digest, *load->format)
                                   : Result<CachedModel>(digest.error());
    if (c) {
      e.quant_cache = c->hit ? "hit" : "written";
      std::fprintf(stderr, "%s %s model=%s weight_format=%s dir=%s\n",
                   c->hit ? "quantized_from_cache" : "quantized_to_cache", c->key.c_str(), model_ref.c_str(),
                   load->format->name.c_str(), c->model_ref.c_str() + 3);
      model_ref = c->model_ref;
    } else {
      std::fprintf(stderr, "quantized_cache_unused model=%s weight_format=%s: %s\n", model_ref.c_str(),
                   load->format->name.c_str(), c.message().c_str());
    }
  }
  Result<std::unique_ptr<WeightSource>> w = open_weights(model_ref);
  if (!w) return w.error();
  e.weights = std::move(*w);
  if (e.backend_name == "cuda") {
    // The job's device is cuda:0: a worker gives its child exactly its own device
    // (CUDA_VISIBLE_DEVICES), and `gridbench run --backend cuda` uses the first.
    Result<std::unique_ptr<CudaBackend>> b = make_cuda_backend(kSessionCudaDevice);
    if (!b) return b.error();
    e.backend = std::move(*b);
  } else {
    e.backend = make_cpu_backend(e.threads);
  }
  if (load->format && load->format->activations != "f32") {
    // The CUDA backend's kernels read the weights with f32 activations and no
    // SmoothQuant act_mul (kernels/cuda is another issue's): refuse rather than run
    // something else under this format's name.
    if (e.backend_name != "cpu" && (!load->format->fake || load->format->smooth))
      return Error{"weight format '" + e.weight_format + "': activation quantization (" + load->format->activations +
                   ") runs on the cpu backend only"};
    if (auto it = params.find("llm_int8_threshold"); it != params.end())
      load->llm_int8_threshold = static_cast<float>(it->get<double>());
    e.activations = load->format->fake ? "f32 (fake quantization: weights only)"
                    : load->format->activations == "llm.int8"
                        ? "llm.int8 threshold " + fmt_number(load->llm_int8_threshold)
                        : load->format->activations + " per token";
    if (load->format->smooth) {
      if (auto it = params.find("smooth_alpha"); it != params.end()) load->smooth_alpha = it->get<double>();
      Result<std::string> what = smooth_calibration(params, *e.weights, &*load);
      if (!what) return what.error();
      e.activations += ", smoothquant alpha " + fmt_number(load->smooth_alpha) + ", calibrated on " + *what;
    }
  }
  if (auto it = params.find("compute"); it != params.end()) {
    Result<ComputeDtype> d = parse_compute_dtype(it->get<std::string>());
    if (!d) return Error{"compute: " + d.message()};
    load->compute = *d;
    if (*d != ComputeDtype::kF32)
      e.activations = std::string(kernels::compute_dtype_name(*d)) +
                      " compute (the linear layers' inputs, weights and outputs rounded; f32 sums)";
  }
  if (wrap) e.wrapper = wrap(*e.backend);
  Result<std::unique_ptr<Model>> m = Model::load(*e.weights, e.wrapper ? *e.wrapper : *e.backend, *load);
  if (!m) return m.error();
  e.model = std::move(*m);
  e.load_ms = ms_since(t0);
  return e;
}

Json session_device_json(const EngineSession& e) {
  if (e.backend_name == "cuda") {
    for (const kernels::DeviceInfo& d : kernels::cuda_devices())
      if (d.index == kSessionCudaDevice)
        return Json{{"backend", e.backend_name},
                    {"kind", "cuda"},
                    {"name", d.name},
                    {"memory_bytes", d.memory_bytes},
                    {"compute_capability", d.compute_capability},
                    {"cores", d.cores},
                    {"activations", e.activations}};
  }
  const kernels::DeviceInfo cpu = kernels::host_cpu();
  return Json{{"backend", e.backend_name},
              {"kind", "cpu"},
              {"name", cpu.name},
              {"memory_bytes", cpu.memory_bytes},
              {"cores", cpu.cores},
              {"threads", e.threads > 0 ? e.threads : static_cast<int>(std::thread::hardware_concurrency())},
              {"activations", e.activations}};
}

double measured_copy_bandwidth(const EngineSession& e) {
  if (e.backend_name == "cuda") {
    Result<double> bw = kernels::measure_cuda_copy_bandwidth(kSessionCudaDevice, size_t{256} << 20, 10);
    if (bw) return *bw;
  }
  return kernels::measure_host_copy_bandwidth(size_t{64} << 20, 4);
}

double peak_rss_bytes() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;  // Linux reports KiB
}

double current_rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) : 0;
}

namespace {
bool g_run_peak_reset = false;
}  // namespace

void reset_run_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return;
  g_run_peak_reset = std::fputs("5", f) >= 0;
  g_run_peak_reset = (std::fclose(f) == 0) && g_run_peak_reset;
}

double run_peak_rss_bytes() {
  if (!g_run_peak_reset) return peak_rss_bytes();
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return peak_rss_bytes();
  char line[256];
  double kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "VmHWM: %lf kB", &kib) == 1) break;
  std::fclose(f);
  return kib >= 0 ? kib * 1024.0 : peak_rss_bytes();
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(g() % static_cast<uint64_t>(vocab));
  return t;
}

double format_weight_bytes(const ModelConfig& c, double bits) {
  return static_cast<double>(parameter_count(c)) * bits / 8.0;
}

void log_recording_failure(const EngineSession& e) {
  if (const std::string& why = e.model->recorded_steps().last_failure(); !why.empty())
    std::fprintf(stderr, "cuda_graphs_off: decode steps ran op by op: %s\n", why.c_str());
}

}  // namespace gb::engine

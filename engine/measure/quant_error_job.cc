// The `quant_error` kind: the matmul error of a weight format (reference 004's 4.4),
// on seeded N(0,1) matrices of `shape` ("RxC": X [R, C], W [C, C]) or on one of a
// model's weight matrices (`model` and `tensor`: W [N, C] as stored, X [R, C] seeded;
// `shape` defaults to 16xC; a `model` alone is not read). The arithmetic is engine/measure/quant_error.cc.
#include <algorithm>
#include <string>
#include <thread>

#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"
#include "engine/measure/quant_error.h"
#include "engine/weights/tensor_view.h"
#include "engine/weights/weight_source.h"
#include "kernels/device_info.h"

namespace gb::engine {

Result<JobOutput> run_quant_error_job(const Json& params, const ProgressFn& progress) {
  Result<WeightFormat> format = parse_weight_format(params.at("weight_format").get<std::string>());
  if (!format) return format.error();
  const uint64_t seed = static_cast<uint64_t>(int_param(params, "seed", 0));
  int threads = static_cast<int>(int_param(params, "threads", 0));
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // A `model` without a `tensor` is not read (W is seeded), so that a grid which
  // names a model for its other kinds measures the seeded error beside them.
  const bool on_model = params.contains("tensor");
  if (on_model && !params.contains("model"))
    return Error{"quant_error: a `tensor` is one of a model's weight matrices: give the `model` too"};
  if (!on_model && !params.contains("shape"))
    return Error{"quant_error: needs `shape` (RxC), or `model` and `tensor`"};

  std::vector<float> w;
  int64_t n = 0;
  QuantShape shape;
  std::string what;
  if (on_model) {
    Result<std::unique_ptr<WeightSource>> src = open_weights(params.at("model").get<std::string>());
    if (!src) return src.error();
    const std::string name = params.at("tensor").get<std::string>();
    Result<TensorView> t = (*src)->tensor(name);
    if (!t) return t.error();
    if (t->shape.size() != 2)
      return Error{(*src)->describe() + ": tensor " + name + " is not a matrix (" + std::to_string(t->shape.size()) +
                   " dimensions)"};
    n = t->shape[0];
    const int64_t cols = t->shape[1];
    w = to_f32(*t);
    what = (*src)->describe() + ": " + name;
    shape = {16, cols};
    if (auto it = params.find("shape"); it != params.end()) {
      Result<QuantShape> s = parse_quant_shape(it->get<std::string>());
      if (!s) return s.error();
      if (s->cols != cols)
        return Error{"shape " + s->str() + ": X must have the in features of " + name + " as columns (" +
                     std::to_string(n) + " x " + std::to_string(cols) + "), e.g. 16x" + std::to_string(cols)};
      shape = *s;
    }
  } else {
    Result<QuantShape> s = parse_quant_shape(params.at("shape").get<std::string>());
    if (!s) return s.error();
    shape = *s;
    n = shape.cols;
    // W from the seed, X from the next one: the same W for every row count.
    w = seeded_normal(static_cast<size_t>(n * shape.cols), seed);
    what = "W " + std::to_string(n) + "x" + std::to_string(shape.cols);
  }
  const std::vector<float> x = seeded_normal(static_cast<size_t>(shape.rows * shape.cols), seed + 1);
  Result<QuantErrorFigures> f = quant_error(*format, w, n, x, shape.rows, shape.cols, what, threads,
                                             static_cast<float>(params.value("llm_int8_threshold", 6.0)),
                                             params.value("smooth_alpha", 0.5));
  if (!f) return f.error();
  if (progress) progress(1.0, "done");
  JobOutput out;
  out.metrics.push_back(value_metric("rel_error", f->rel_error, ""));
  out.metrics.push_back(value_metric("weight_rel_error", f->weight_rel_error, ""));
  // Arithmetic, the same on any machine; the record says where it ran.
  out.device = Json{{"backend", "cpu"}, {"kind", "cpu"}, {"name", kernels::host_cpu().name}, {"threads", threads}};
  return out;
}

}  // namespace gb::engine

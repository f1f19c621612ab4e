// `gridbench quantize` (cli/quantize_command.h).
#include "cli/quantize_command.h"

#include <cstdio>

#include "cli/exit_status.h"
#include "engine/jobs/job_inputs.h"
#include "engine/spec/model_config.h"
#include "engine/weights/hf/quantized_checkpoint.h"
#include "engine/weights/weight_source.h"

namespace gb::cli {
CLI::App* add_quantize_command(CLI::App& app, QuantizeFlags& f) {
  CLI::App* c = app.add_subcommand(
      "quantize",
      "Quantize a model once and save it packed (safetensors, docs/QUANTIZED_LAYOUT.md): each linear matrix in "
      "the format with its scales and zero points, the format and the source model's digest in the metadata, "
      "config.json and the tokenizer beside it. `hf:OUT` then loads it as stored (weight_format left out); "
      "another weight_format needs requantize: true");
  c->add_option("--model", f.model, "the model to quantize: hf:DIR (Llama-layout families)")->required();
  c->add_option("--weight-format", f.weight_format, "the weight format (gridbench formats; not fake: ones)")
      ->required();
  c->add_option("--out", f.out, "the directory to write (new or empty)")->required();
  return c;
}

int run_quantize_command(const QuantizeFlags& f) {
  Result<engine::ModelRef> ref = engine::parse_model_ref(f.model);
  if (!ref) return fail("--model: " + ref.message(), kExitInvalid);
  if (ref->kind != engine::ModelRef::Kind::kHf)
    return fail("--model: '" + f.model +
                    "': quantize reads hf:DIR models (config.json and the tokenizer are copied beside the weights)",
                kExitInvalid);
  Result<engine::WeightFormat> format = engine::parse_weight_format(f.weight_format);
  if (!format) return fail("--weight-format: " + format.message(), kExitInvalid);
  Result<std::string> digest = engine::input_digest("model", f.model);
  if (!digest) return fail(digest.message(), kExitError);
  Result<std::unique_ptr<engine::WeightSource>> w = engine::open_weights(f.model);
  if (!w) return fail(w.message(), kExitError);
  const Status s = engine::write_quantized_checkpoint(**w, ref->hf_dir, *format, {f.model, *digest}, f.out);
  if (!s.ok()) return fail(s.message(), kExitError);
  std::printf("wrote %s: %s in %s (source digest %s); load it as hf:%s\n", f.out.c_str(), f.model.c_str(),
              format->name.c_str(), digest->c_str(), f.out.c_str());
  return 0;
}

}  // namespace gb::cli

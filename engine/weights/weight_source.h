// WeightSource: where a model's parameters come from. Every loader (hf:DIR,
// gguf:FILE, synthetic:PRESET[@SEED]) hands out the same thing: a ModelConfig and
// each parameter as a host TensorView under its canonical name, which is the
// Hugging Face name of the family (expected_hf_tensors(config), GPT-2 with the
// "transformer." prefix). The forward pass only ever asks for canonical names, so
// a new loader is one class, and a new weight format converts in one place.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/spec/model_config.h"
#include "engine/weights/tensor_view.h"
#include "engine/tokenizer/tokenizer.h"

namespace gb::engine {

// How a synthetic parameter is drawn (engine/weights/synthetic.h): element i of
// the tensor is mean + stddev * z(key, i). What a backend needs to draw it in its
// own memory (Backend::fill_synthetic, quantize_synthetic) instead of reading it
// from tensor().
struct SyntheticDraw {
  uint64_t key = 0;
  float mean = 0.0f;
  float stddev = 0.0f;
  std::vector<int64_t> shape;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;

  virtual const ModelConfig& config() const = 0;
  // "hf:/models/x", "gguf:/m.gguf", "synthetic:gpt2@7": for messages and reports.
  virtual std::string describe() const = 0;

  // A parameter by canonical name. The view stays valid as long as the source.
  // Lazily built sources (synthetic) create the tensor on first use, so this is
  // not const and not thread-safe: load from one thread. An error names the tensor
  // and the file.
  virtual Result<TensorView> tensor(std::string_view name) = 0;

  // Frees what tensor() built (synthetic weights, rearranged tensors) and drops
  // mapped file pages from resident memory, once the caller has copied them:
  // views of built tensors become invalid (views into mapped files stay valid).
  // Model::load calls it after each tensor, so loading never holds two copies
  // and the peak resident memory is that of the loaded model.
  virtual void release_tensors() {}

  // A synthetic source's recipe for a parameter (the same values tensor() would
  // return, as f32); nullopt for a parameter read from a file, or an unknown name.
  virtual std::optional<SyntheticDraw> synthetic_draw(std::string_view name) const {
    (void)name;
    return std::nullopt;
  }

  // Bytes the parameters take as stored (a tied head counted once).
  virtual uint64_t parameter_bytes() const = 0;

  // The tokenizer that comes with the model, when there is one (tokenizer.json
  // beside an HF checkpoint, the GGUF's embedded vocabulary, a byte-level one for
  // synthetic models). Null when the model brings none.
  virtual const Tokenizer* tokenizer() const { return nullptr; }
};

// Opens a model reference: "hf:DIR", "gguf:FILE", "synthetic:PRESET[@SEED]". A bare
// preset name is refused here (presets without weights are for the roofline).
Result<std::unique_ptr<WeightSource>> open_weights(const std::string& model_ref);

}  // namespace gb::engine

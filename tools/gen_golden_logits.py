#!/usr/bin/env python3
"""Writes the forward-pass golden data in tests/data/golden/ with Hugging Face
`transformers` + PyTorch (CPU, float32, eager attention), the reference
implementation, so the C++ engine can be checked against it without Python.

For each case below, a tiny randomly initialised model (vocab 128-256, hidden 64,
2 layers, intermediate 128, max_position_embeddings 64) is built from a fixed seed,
its weights re-drawn at a scale that gives sharp, non-degenerate logits (see
`reinit`), and written to tests/data/golden/<case>/:

  config.json, model.safetensors   the model, exactly as `save_pretrained` writes it
                                   (generation_config.json is removed)
  golden.safetensors               input_ids I64 [2, 12] and logits F32 [2, 12, vocab]:
                                   one forward pass over both full-length sequences
                                   (no padding, no attention mask)
  golden_generate.json             {"prompt": first 5 ids of sequence 0,
                                    "generated": the 8 new ids of greedy decoding}

The script checks that each saved directory reloads with AutoModelForCausalLM and
reproduces the logits bit for bit, that greedy `generate` agrees with a plain
argmax loop, and prints max |logits| per case.

transformers 4.x is used on purpose: it writes config.json in the layout found in
nearly every checkpoint on the Hub (`rope_theta`, `rope_scaling`); transformers 5
writes `rope_parameters` instead.

Usage:  python3 -m venv /tmp/goldvenv
        /tmp/goldvenv/bin/pip install torch "transformers<5" safetensors numpy
        /tmp/goldvenv/bin/python tools/gen_golden_logits.py
"""

import json
import os
import shutil
import sys

import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (AutoModelForCausalLM, GenerationConfig, GPT2Config,
                          GPTNeoXConfig, LlamaConfig, MistralConfig, Qwen2Config,
                          Qwen3Config)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "golden")

SEED = 1234              # case i uses SEED + i for its weights and SEED + 1000 + i for its ids
BATCH, SEQ = 2, 12
PROMPT_LEN, NEW_TOKENS = 5, 8

# Scales of the re-initialisation (HF's default std 0.02 gives near-flat logits).
LINEAR_STD = 0.15        # every weight matrix (Linear, GPT-2's Conv1D, lm_head)
EMBED_STD = 0.5          # token and position embeddings
NORM_STD = 0.1           # norm weights are 1 + NORM_STD * randn
BIAS_STD = 0.1           # every bias (linear and norm)

COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              max_position_embeddings=64, bos_token_id=1, eos_token_id=2)


MODEL_TYPES = {"llama_gqa": "llama", "llama_mqa_headdim": "llama", "llama3_rope": "llama",
               "llama_linear_rope": "llama", "mistral": "mistral", "qwen2": "qwen2",
               "qwen3": "qwen3", "gpt_neox": "gpt_neox", "gpt_neox_serial": "gpt_neox",
               "gpt2": "gpt2"}


def cases():
    """(name, config) in a fixed order; the order fixes each case's seed."""
    return [
        ("llama_gqa", LlamaConfig(
            vocab_size=128, num_attention_heads=4, num_key_value_heads=2,
            rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, **COMMON)),
        ("llama_mqa_headdim", LlamaConfig(
            vocab_size=192, num_attention_heads=4, num_key_value_heads=1, head_dim=32,
            attention_bias=True, mlp_bias=True, rope_theta=10000.0, rms_norm_eps=1e-5,
            tie_word_embeddings=False, **COMMON)),
        ("llama3_rope", LlamaConfig(
            vocab_size=160, num_attention_heads=4, num_key_value_heads=2,
            rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
            **COMMON)),
        ("llama_linear_rope", LlamaConfig(
            vocab_size=128, num_attention_heads=4, num_key_value_heads=2,
            rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
            rope_scaling={"rope_type": "linear", "factor": 2.0}, **COMMON)),
        ("mistral", MistralConfig(
            vocab_size=128, num_attention_heads=4, num_key_value_heads=2,
            rope_theta=10000.0, rms_norm_eps=1e-5, sliding_window=None,
            tie_word_embeddings=False, **COMMON)),
        ("qwen2", Qwen2Config(
            vocab_size=160, num_attention_heads=4, num_key_value_heads=2,
            rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
            use_sliding_window=False, **COMMON)),
        ("qwen3", Qwen3Config(
            vocab_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
            rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
            use_sliding_window=False, **COMMON)),
        ("gpt_neox", GPTNeoXConfig(
            vocab_size=128, num_attention_heads=4, rotary_pct=0.25, rotary_emb_base=10000,
            use_parallel_residual=True, layer_norm_eps=1e-5, tie_word_embeddings=False,
            **COMMON)),
        ("gpt_neox_serial", GPTNeoXConfig(
            vocab_size=128, num_attention_heads=4, rotary_pct=0.5, rotary_emb_base=10000,
            use_parallel_residual=False, layer_norm_eps=1e-5, tie_word_embeddings=False,
            **COMMON)),
        ("gpt2", GPT2Config(
            vocab_size=256, n_embd=64, n_head=4, n_layer=2, n_positions=64,
            bos_token_id=1, eos_token_id=2)),
    ]


@torch.no_grad()
def reinit(model, gen):
    """Redraws every parameter (tied ones once) from `gen`, in named_parameters order."""
    norm_params = set()
    embed_params = set()
    for module in model.modules():
        cls = type(module).__name__
        if "Norm" in cls and getattr(module, "weight", None) is not None:
            norm_params.add(id(module.weight))
        if isinstance(module, torch.nn.Embedding):
            embed_params.add(id(module.weight))
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        if name.endswith("bias"):
            p.copy_(BIAS_STD * noise)
        elif id(p) in norm_params:
            p.copy_(1.0 + NORM_STD * noise)
        elif id(p) in embed_params:
            p.copy_(EMBED_STD * noise)
        else:
            p.copy_(LINEAR_STD * noise)


@torch.no_grad()
def greedy_reference(model, prompt, n):
    """Greedy decoding by full recomputation, to cross-check model.generate."""
    ids = prompt.clone()
    for _ in range(n):
        nxt = model(input_ids=ids).logits[:, -1, :].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
    return ids[0, prompt.shape[1]:].tolist()


def run_case(index, name, config):
    out_dir = os.path.join(OUT, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)

    torch.manual_seed(SEED + index)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager",
                                             dtype=torch.float32)
    model.eval()
    reinit(model, torch.Generator().manual_seed(SEED + index))

    model.save_pretrained(out_dir, safe_serialization=True)
    gen_cfg = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)

    vocab = config.vocab_size
    ids_gen = torch.Generator().manual_seed(SEED + 1000 + index)
    input_ids = torch.randint(0, vocab, (BATCH, SEQ), generator=ids_gen, dtype=torch.int64)

    with torch.no_grad():
        logits = model(input_ids=input_ids).logits.float().contiguous()
    assert logits.shape == (BATCH, SEQ, vocab), logits.shape

    # The saved directory must reproduce the logits exactly.
    reloaded = AutoModelForCausalLM.from_pretrained(out_dir, attn_implementation="eager",
                                                    dtype=torch.float32).eval()
    with torch.no_grad():
        logits2 = reloaded(input_ids=input_ids).logits.float()
    if not torch.equal(logits, logits2):
        sys.exit(f"{name}: reloaded model differs, max diff "
                 f"{(logits - logits2).abs().max().item()}")

    save_file({"input_ids": input_ids.contiguous(), "logits": logits},
              os.path.join(out_dir, "golden.safetensors"))

    # Greedy generation from the first sequence's first ids, no EOS stopping.
    prompt = input_ids[:1, :PROMPT_LEN]
    gcfg = GenerationConfig(do_sample=False, max_new_tokens=NEW_TOKENS,
                            eos_token_id=None,
                            bos_token_id=None, pad_token_id=0, num_beams=1)
    reloaded.generation_config.eos_token_id = None   # else generate() fills it back in
    reloaded.generation_config.bos_token_id = None
    with torch.no_grad():
        out = reloaded.generate(prompt, attention_mask=torch.ones_like(prompt),
                                generation_config=gcfg)
    generated = out[0, PROMPT_LEN:].tolist()
    reference = greedy_reference(reloaded, prompt, NEW_TOKENS)
    if generated != reference or len(generated) != NEW_TOKENS:
        sys.exit(f"{name}: generate {generated} != argmax loop {reference}")
    with open(os.path.join(out_dir, "golden_generate.json"), "w") as f:
        json.dump({"prompt": prompt[0].tolist(), "generated": generated}, f)
        f.write("\n")

    with open(os.path.join(out_dir, "config.json")) as f:
        model_type = json.load(f)["model_type"]
    if model_type != MODEL_TYPES[name]:
        sys.exit(f"{name}: model_type {model_type}, expected {MODEL_TYPES[name]}")
    with safe_open(os.path.join(out_dir, "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    print(f"{name:20s} model_type={model_type:9s} vocab={vocab:3d} "
          f"max|logits|={logits.abs().max().item():7.3f} std={logits.std().item():6.3f} "
          f"tensors={len(keys)} generated={generated}")
    return model_type


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    for index, (name, config) in enumerate(cases()):
        run_case(index, name, config)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Hugging Face transformers' decode speed on this GPU, for the side-by-side row of
scripts/gpu-check.sh: the same architecture as gridbench's preset (the config values
below are the presets' of engine/spec/model_presets.cc), random weights, eager
attention, bf16, batch B: a prompt prefilled, warm-up steps, then timed decode steps
with the KV cache (greedy; the tokens do not matter for speed). Prints one line and
writes --json. Needs torch with CUDA and transformers; no network (config built here,
no download).
"""
import argparse
import json
import sys
import time

PRESETS = {
    "llama-3-8b": dict(kind="llama", vocab_size=128256, hidden_size=4096, num_hidden_layers=32,
                       intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                       max_position_embeddings=8192, rope_theta=500000.0, rms_norm_eps=1e-5),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="llama-3-8b", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    import torch
    import transformers
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured")
        return 0
    p = dict(PRESETS[a.model])
    p.pop("kind")
    cfg = transformers.LlamaConfig(**p, attn_implementation="eager", tie_word_embeddings=False)
    torch.manual_seed(0)
    t0 = time.time()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = transformers.LlamaForCausalLM(cfg)
    model.eval()
    load_s = time.time() - t0
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.prompt), device="cuda")
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        past = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
        for _ in range(2):  # warm-up
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        torch.cuda.synchronize()
        t1 = time.time()
        for _ in range(a.steps):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        torch.cuda.synchronize()
        secs = time.time() - t1
    tps = a.batch * a.steps / secs
    row = {"model": a.model, "batch": a.batch, "dtype": "bf16", "attention": "eager", "load_s": load_s,
           "decode_tokens_per_s": tps, "torch": torch.__version__, "transformers": transformers.__version__,
           "device": torch.cuda.get_device_name(0)}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(row, f, indent=2)
    print(f"transformers {transformers.__version__} eager bf16 {a.model} batch {a.batch}: {tps:.1f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

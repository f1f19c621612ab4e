#!/usr/bin/env python3
"""Hugging Face transformers' batch-1 decode and prefill speed in f32 on the CPU, on the weights of a GGUF file.

The third column of bench/engine_vs_llamacpp.sh (the issue's "decode >= 3x transformers
f32 on the same weights"): the f16 GGUF file that tools/make_bench_gguf.py writes is
read here (a small reader for its f16/f32 tensors, no gguf package), its weights
widened to f32 into a LlamaForCausalLM of the same shape (q and k rows un-permuted
from llama.cpp's rope layout), and timed as bench/llamacpp_speed.py times llama.cpp:
a PROMPT-token prefill from an empty cache, then STEPS single-token decode steps with
the KV cache, eager attention, torch.set_num_threads(THREADS); the best of REPEATS
runs. Prints one line:
    decode_tokens_per_s prefill_tokens_per_s
Exits 3, saying so, when torch or transformers is not importable. No network.
"""
import argparse
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))


def read_gguf(path):
    """{name: numpy array in row-major [ne[-1], ..., ne[0]]} for the f32/f16 tensors of a GGUF file."""
    import numpy as np
    from make_bench_gguf import skip_value

    with open(path, "rb") as f:
        buf = f.read()
    if buf[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    _, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    pos, align = 24, 32
    for _ in range(n_kv):
        (n,) = struct.unpack_from("<Q", buf, pos)
        key = buf[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        if key == "general.alignment":
            (align,) = struct.unpack_from("<I", buf, pos)
        pos = skip_value(buf, pos, vtype)
    infos = []
    for _ in range(n_tensors):
        (n,) = struct.unpack_from("<Q", buf, pos)
        name = buf[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        (nd,) = struct.unpack_from("<I", buf, pos)
        ne = struct.unpack_from(f"<{nd}Q", buf, pos + 4)
        t, off = struct.unpack_from("<IQ", buf, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        infos.append((name, ne, t, off))
    data = (pos + align - 1) // align * align
    out = {}
    for name, ne, t, off in infos:
        if t not in (0, 1):
            raise ValueError(f"{path}: tensor {name} has GGML type {t}; this reader takes f32 and f16 only")
        count = 1
        for d in ne:
            count *= d
        arr = np.frombuffer(buf, dtype=np.float32 if t == 0 else np.float16, count=count, offset=data + off)
        out[name] = arr.reshape(tuple(reversed(ne)))
    return out


def unpermute(w, heads):
    """llama.cpp's q/k row order (rope pairs interleaved) back to Hugging Face's (halves)."""
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="an f16 GGUF file from tools/make_bench_gguf.py")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    try:
        import numpy as np
        import torch
        import transformers
    except ImportError as e:
        print(f"transformers or torch is not installed: {e}", file=sys.stderr)
        return 3
    from make_bench_gguf import FFN, HEAD_DIM, HEADS, HIDDEN, KV_HEADS, LAYERS

    import warnings
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    t = read_gguf(a.model)
    vocab = t["token_embd.weight"].shape[0]
    cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=FFN,
                                   num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                   head_dim=HEAD_DIM, rms_norm_eps=1e-5, rope_theta=10000.0,
                                   max_position_embeddings=2048, tie_word_embeddings=False,
                                   attn_implementation="eager")
    model = transformers.LlamaForCausalLM(cfg).to(torch.float32).eval()
    sd = {"model.embed_tokens.weight": t["token_embd.weight"], "model.norm.weight": t["output_norm.weight"],
          "lm_head.weight": t["output.weight"]}
    for i in range(LAYERS):
        g, h = f"blk.{i}.", f"model.layers.{i}."
        sd[h + "input_layernorm.weight"] = t[g + "attn_norm.weight"]
        sd[h + "post_attention_layernorm.weight"] = t[g + "ffn_norm.weight"]
        sd[h + "self_attn.q_proj.weight"] = unpermute(t[g + "attn_q.weight"], HEADS)
        sd[h + "self_attn.k_proj.weight"] = unpermute(t[g + "attn_k.weight"], KV_HEADS)
        sd[h + "self_attn.v_proj.weight"] = t[g + "attn_v.weight"]
        sd[h + "self_attn.o_proj.weight"] = t[g + "attn_output.weight"]
        sd[h + "mlp.gate_proj.weight"] = t[g + "ffn_gate.weight"]
        sd[h + "mlp.up_proj.weight"] = t[g + "ffn_up.weight"]
        sd[h + "mlp.down_proj.weight"] = t[g + "ffn_down.weight"]
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()}, strict=False)
    if unexpected or [k for k in missing if "rotary" not in k]:
        print(f"weights do not fit the model: missing {missing}, unexpected {unexpected}", file=sys.stderr)
        return 1
    prompt = torch.tensor([[(i * 7919 + 13) % vocab for i in range(a.prompt_tokens)]])
    best_prefill, best_decode = 0.0, 0.0
    with torch.inference_mode():
        model(prompt[:, :8], use_cache=True)  # warm-up
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            out = model(prompt, use_cache=True)
            best_prefill = max(best_prefill, a.prompt_tokens / (time.perf_counter() - t0))
            past = out.past_key_values
            tok = int(prompt[0, -1])
            t0 = time.perf_counter()
            for _ in range(a.steps):
                out = model(torch.tensor([[tok]]), past_key_values=past, use_cache=True)
                past = out.past_key_values
                tok = (tok * 31 + 7) % vocab  # not sampled: the bench times the forward pass only
            best_decode = max(best_decode, a.steps / (time.perf_counter() - t0))
    print(f"{best_decode:.2f} {best_prefill:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes tests/data/peer_gguf/peer_llama_quant_ppl.json: two perplexities of every
llama.cpp peer file in ../shared/peers/llama-gguf/ (f16 and the llama-quantize
outputs q8_0, q4_0, q4_1, q5_0, q5_1, q6_k, q4_k_m) on the text of
peer_llama_f16_ppl.json (the first 6000 bytes of tests/data/corpus/opticks-book1-part1.txt,
tokenized with the peer tokenizer.json, no BOS), with llama-perplexity's arithmetic:
chunks of 128 tokens, positions 64..126 of each predicting the next token.

  f64        an exact recomputation: every tensor dequantized by the `gguf` package
             (gguf.quants.dequantize), then gen_peer_gguf_logits.py's numpy float64
             forward pass with llama.cpp's semantics (interleaved rope, GQA), log-softmax
             in float64;
  llama_cpp  llama.cpp's own figure through llama-cpp-python: Llama(model_path,
             n_ctx=128, logits_all=True, n_threads=2), each chunk evaluated from an
             empty KV cache (reset() then eval(), which drops the cache from position
             0), scored as llama-perplexity does (float logits, the log-sum-exp summed
             in double). llama.cpp's CPU kernels round the activations of a matrix
             product to the weight's vec-dot type (f16 for f16 weights, q8_0 / q8_K
             blocks for the quantized types) and keep the KV cache in f16.

Each figure has its chunks' mean NLLs beside it (a test may score the first
chunks only). Each entry also lists the file's tensor types (llama-quantize keeps some tensors at
other types). The script stops if a figure is not finite or if the f16 file's f64
figure is not within 1e-4 of peer_llama_f16_ppl.json's (transformers, float32).

Usage (numpy, gguf, tokenizers, torch and transformers for the sibling script's
import, llama-cpp-python):
    python3 -m venv /tmp/pplvenv
    /tmp/pplvenv/bin/pip install numpy gguf tokenizers torch "transformers<5" safetensors llama-cpp-python
    /tmp/pplvenv/bin/python tools/gen_peer_gguf_ppl.py
"""

import json
import math
import os
import sys
from collections import Counter
from importlib.metadata import version

import gguf
import numpy as np
import tokenizers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_peer_gguf_logits as peer  # noqa: E402  (the f64 forward pass and the GGUF reader)

TYPES = ["f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q6_k", "q4_k_m"]
OUT = os.path.join(peer.OUT, "peer_llama_quant_ppl.json")


def nll_f64(logits, target):
    """-log softmax(logits)[target], all in float64."""
    z = logits.astype(np.float64)
    m = z.max()
    return -(z[target] - m - math.log(np.exp(z - m).sum()))


def nll_llama_perplexity(logits, target):
    """llama-perplexity's log_softmax: float max, expf terms summed in double."""
    z = np.asarray(logits, dtype=np.float32)
    m = z.max()
    s = np.exp(z - m).astype(np.float64).sum()
    return -(float(z[target] - m) - math.log(s))


def chunks(ids, ctx):
    return [ids[s:s + ctx] for s in range(0, len(ids) - ctx + 1, ctx)]


def q8_blocks(x, k_type):
    """x as llama.cpp's CPU kernels read it for a product with a weight of a GGUF
    q-type: quantize_row_q8_0 / q8_1 (AVX2: blocks of 32, id = 127 / amax, round to
    nearest even, d stored in f16) for the simple types, quantize_row_q8_K (blocks of
    256, iscale = -127 / the value of largest magnitude, nearest_int, q <= 127, d f32)
    for the K types; all in float32."""
    shape = x.shape
    if k_type:
        b = x.astype(np.float32).reshape(-1, 256)
        idx = np.abs(b).argmax(axis=1)
        mx = b[np.arange(b.shape[0]), idx][:, None]
        with np.errstate(divide="ignore"):
            iscale = np.where(mx != 0, np.float32(-127) / mx, np.float32(0)).astype(np.float32)
        q = np.minimum(np.rint(iscale * b), 127)
        d = np.where(iscale != 0, np.float32(1) / np.where(iscale != 0, iscale, 1), 0).astype(np.float32)
        return (q * d).astype(np.float64).reshape(shape)
    b = x.astype(np.float32).reshape(-1, 32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.where(amax != 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.rint(b * inv)
    d = (amax / np.float32(127)).astype(np.float16).astype(np.float64)
    return (q * d).reshape(shape)


def llama_cpp_rounding(types):
    """act(name, x) and kv(x) for gen_peer_gguf_logits.reference_forward: what
    llama.cpp's CPU matrix products read of their inputs (f16 for an f16 weight, q8_0
    or q8_K blocks for a q-type) and the f16 KV cache."""
    def act(name, x):
        t = types[name]
        if t == "f16":
            return x.astype(np.float16).astype(np.float64)
        if t == "f32":
            return x
        return q8_blocks(x, t.endswith("_k"))
    return act, lambda x: x.astype(np.float16).astype(np.float64)


def f64_ppl(path, ids, ctx, emulate_llama_cpp=False):
    meta, tensors = peer.read_gguf(path, dequantize=True)
    types = {t.name: t.tensor_type.name.lower() for t in gguf.GGUFReader(path).tensors}
    act, kv = llama_cpp_rounding(types) if emulate_llama_cpp else (None, None)
    nlls = []
    for chunk in chunks(ids, ctx):
        logits = peer.reference_forward(meta, tensors, np.array(chunk), act, kv)
        nlls += [nll_f64(logits[j], chunk[j + 1]) for j in range(ctx // 2, ctx - 1)]
    return nlls


def llama_cpp_ppl(path, ids, ctx):
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=ctx, n_batch=ctx, logits_all=True, n_threads=2, verbose=False, seed=0)
    nlls = []
    for chunk in chunks(ids, ctx):
        llm.reset()
        llm.eval(chunk)
        scores = np.array(llm.scores[:ctx], dtype=np.float32)
        nlls += [nll_llama_perplexity(scores[j], chunk[j + 1]) for j in range(ctx // 2, ctx - 1)]
    del llm
    return nlls


def summary(nlls, per_chunk):
    """The mean NLL and perplexity, and each chunk's mean NLL (a test may score the
    first chunks only)."""
    mean = sum(nlls) / len(nlls)
    if not math.isfinite(mean):
        sys.exit("a perplexity is not finite")
    chunk_means = [sum(nlls[i:i + per_chunk]) / per_chunk for i in range(0, len(nlls), per_chunk)]
    return {"nll_mean": mean, "ppl": math.exp(mean), "chunk_nll_means": chunk_means}


def main():
    import llama_cpp
    with open(os.path.join(peer.OUT, "peer_llama_f16_ppl.json")) as f:
        base = json.load(f)
    ctx = base["context"]
    with open(os.path.join(peer.ROOT, "tests", "data", "corpus", "opticks-book1-part1.txt"), "rb") as f:
        text = f.read(base["text_bytes"]).decode("utf-8")
    tok = tokenizers.Tokenizer.from_file(peer.TOKENIZER_PATH)
    ids = tok.encode(text, add_special_tokens=False).ids
    if len(ids) != base["tokens"] or ids[:32] != base["first_ids"]:
        sys.exit("the text does not tokenize as peer_llama_f16_ppl.json says")

    out = {"text_bytes": base["text_bytes"], "context": ctx, "tokens": len(ids),
           "tokens_scored": len(chunks(ids, ctx)) * (ctx - 1 - ctx // 2),
           "versions": {"gguf": version("gguf"), "numpy": np.__version__,
                        "llama_cpp_python": llama_cpp.__version__, "tokenizers": tokenizers.__version__},
           "files": {}}
    for t in TYPES:
        path = os.path.join(peer.PEER, f"peer-llama-{t}.gguf")
        reader = gguf.GGUFReader(path)
        types = dict(sorted(Counter(x.tensor_type.name.lower() for x in reader.tensors).items()))
        f64 = f64_ppl(path, ids, ctx)
        emu = f64_ppl(path, ids, ctx, emulate_llama_cpp=True)
        cpp = llama_cpp_ppl(path, ids, ctx)
        if len(f64) != out["tokens_scored"] or len(cpp) != out["tokens_scored"]:
            sys.exit(f"{t}: scored {len(f64)} / {len(cpp)} tokens")
        per = ctx - 1 - ctx // 2
        entry = {"tensor_types": types, "f64": summary(f64, per), "f64_llama_cpp_rounding": summary(emu, per),
                 "llama_cpp": summary(cpp, per)}
        out["files"][t] = entry
        rel = entry["llama_cpp"]["ppl"] / entry["f64"]["ppl"] - 1
        rel_emu = entry["llama_cpp"]["ppl"] / entry["f64_llama_cpp_rounding"]["ppl"] - 1
        print(f"{t:7s} f64 ppl {entry['f64']['ppl']:.4f}  llama.cpp {entry['llama_cpp']['ppl']:.4f} "
              f"({100 * rel:+.3f}%; {100 * rel_emu:+.3f}% from f64 with its rounding "
              f"{entry['f64_llama_cpp_rounding']['ppl']:.4f})  {types}", flush=True)
    f16 = out["files"]["f16"]["f64"]["ppl"]
    if abs(f16 / base["ppl"] - 1) > 1e-4:
        sys.exit(f"f16 f64 ppl {f16} vs transformers' {base['ppl']}")
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

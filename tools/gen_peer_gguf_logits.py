#!/usr/bin/env python3
"""Writes tests/data/peer_gguf/peer_llama_f16_logits.safetensors: reference logits
for ../shared/peers/llama-gguf/peer-llama-f16.gguf (a tiny llama-architecture model
written by llama.cpp; see the README beside it), computed by Hugging Face
`transformers` (LlamaForCausalLM, float32, eager attention) on the GGUF's weights.

  input_ids  I64 [1, 16]         the first 16 ids of SENTENCE tokenized with
                                 ../shared/peers/llama-gguf/tokenizer.json, no BOS
  logits     F32 [1, 16, 8257]   one forward pass, no attention mask

How the model is built:
  * config from the GGUF metadata (llama.block_count, embedding_length,
    feed_forward_length, attention.head_count, attention.head_count_kv,
    attention.layer_norm_rms_epsilon, rope.freq_base, context_length; vocabulary
    size from tokenizer.ggml.tokens), untied output;
  * tensors read with the `gguf` package's GGUFReader (f16 / f32; GGUF lists dims
    innermost first, the reader's numpy arrays are already row-major [out, in]),
    converted to float32 and renamed to Hugging Face's names;
  * attn_q / attn_k un-permuted. llama.cpp's convert_hf_to_gguf.py stores q and k
    rows in the order of its "normal" (interleaved, pairs (2i, 2i+1)) rope:
        permute(w, n_head):   w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2)
    (k uses n_head_kv). Hugging Face's rotate-half rope pairs (i, i + head_dim/2), so
    the inverse is applied:
        unpermute(w, n_head): w.reshape(n_head, rows/n_head/2, 2, cols).swapaxes(1, 2)

Checks made before writing (the script stops if one fails):
  * unpermute(permute(w)) == w;
  * an independent numpy (float64) forward pass written from llama.cpp's semantics
    (interleaved rope on the raw GGUF q/k weights, GQA head h -> kv head
    h // (n_head / n_head_kv)) agrees with the HF float32 logits (max |diff| about
    1e-4, within float32 rounding; the threshold is 1e-3), while HF on the weights
    left permuted does not (max |diff| about 8);
  * the tokenizer.json vocabulary equals the GGUF's token list.
It also prints the perplexity of a short English text with the right and the wrong
q/k layout (random weights, so this one is informative only).

Usage:  python3 -m venv /tmp/goldvenv
        /tmp/goldvenv/bin/pip install torch "transformers<5" safetensors numpy gguf tokenizers
        /tmp/goldvenv/bin/python tools/gen_peer_gguf_logits.py
"""

import json
import math
import os
import sys
from importlib.metadata import version

import gguf
import numpy as np
import tokenizers
import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "peer_gguf")
PEER = os.path.normpath(os.path.join(ROOT, "..", "shared", "peers", "llama-gguf"))
GGUF_PATH = os.path.join(PEER, "peer-llama-f16.gguf")
TOKENIZER_PATH = os.path.join(PEER, "tokenizer.json")

SEQ = 16
SENTENCE = ("The quick brown fox jumps over the lazy dog, and then it runs back "
            "into the forest to sleep.")
PPL_TEXT = ("It was a bright cold day in April, and the clocks were striking thirteen. "
            "The house stood at the end of a quiet street, and every morning the old man "
            "walked to the market to buy bread, milk and a newspaper. He liked to talk "
            "with the people he met on the way about the weather and the news of the day.")


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py's LlamaModel.permute (HF -> GGUF rows)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head):
    """Inverse of permute (GGUF -> HF rows)."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def field(reader, key):
    return reader.fields[key].contents()


def read_gguf(path=GGUF_PATH, dequantize=False):
    """The metadata and every tensor as float32 [out, in]; quantized tensors only with
    `dequantize` (gguf.quants.dequantize, the gguf package's reading of each block)."""
    reader = gguf.GGUFReader(path)
    if field(reader, "general.architecture") != "llama":
        sys.exit("not a llama GGUF")
    meta = {k: field(reader, "llama." + k) for k in (
        "block_count", "embedding_length", "feed_forward_length", "attention.head_count",
        "attention.head_count_kv", "attention.layer_norm_rms_epsilon", "rope.freq_base",
        "context_length", "rope.dimension_count")}
    meta["tokens"] = field(reader, "tokenizer.ggml.tokens")
    tensors = {}
    for t in reader.tensors:
        if t.tensor_type in (gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32):
            arr = np.array(t.data, dtype=np.float32)
        elif dequantize:
            arr = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        else:
            sys.exit(f"{t.name}: type {t.tensor_type.name}, expected F16/F32")
        # GGUF shape lists ne[0] (innermost) first; the numpy array is reversed.
        expected = tuple(int(d) for d in reversed(list(t.shape)))
        if arr.shape != expected:
            sys.exit(f"{t.name}: array {arr.shape} vs GGUF dims {expected}")
        tensors[t.name] = arr
    return meta, tensors


def hf_state_dict(tensors, n_layer, n_head, n_kv, fix_qk=True):
    sd = {"model.embed_tokens.weight": tensors["token_embd.weight"],
          "model.norm.weight": tensors["output_norm.weight"],
          "lm_head.weight": tensors["output.weight"]}
    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    for i in range(n_layer):
        for src, dst in names.items():
            w = tensors[f"blk.{i}.{src}.weight"]
            if fix_qk and src == "attn_q":
                w = unpermute(w, n_head)
            elif fix_qk and src == "attn_k":
                w = unpermute(w, n_kv)
            sd[f"model.layers.{i}.{dst}.weight"] = w
    used = 3 + n_layer * len(names)
    if used != len(tensors):
        sys.exit(f"{len(tensors)} tensors in the GGUF, {used} mapped")
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}


def build_model(meta, tensors, fix_qk=True):
    n_embd = int(meta["embedding_length"])
    n_head = int(meta["attention.head_count"])
    n_kv = int(meta["attention.head_count_kv"])
    n_layer = int(meta["block_count"])
    head_dim = n_embd // n_head
    if int(meta["rope.dimension_count"]) != head_dim:
        sys.exit("partial rope not handled")
    config = LlamaConfig(
        vocab_size=len(meta["tokens"]), hidden_size=n_embd,
        intermediate_size=int(meta["feed_forward_length"]), num_hidden_layers=n_layer,
        num_attention_heads=n_head, num_key_value_heads=n_kv, head_dim=head_dim,
        rms_norm_eps=float(meta["attention.layer_norm_rms_epsilon"]),
        rope_theta=float(meta["rope.freq_base"]),
        max_position_embeddings=int(meta["context_length"]),
        tie_word_embeddings=False, attention_bias=False, mlp_bias=False)
    model = LlamaForCausalLM(config)
    model.config._attn_implementation = "eager"
    sd = hf_state_dict(tensors, n_layer, n_head, n_kv, fix_qk)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if "rotary_emb" not in m]
    if missing or unexpected:
        sys.exit(f"missing {missing} unexpected {unexpected}")
    return model.float().eval()


def reference_forward(meta, tensors, ids, act=None, kv_round=None):
    """llama.cpp's llama graph in numpy float64 on the raw (permuted) GGUF weights.
    act(name, x), where given, is what a matrix product with tensor `name` reads of
    its input x (an emulation of llama.cpp's activation rounding); kv_round(x) likewise
    for the keys and values a KV cache holds."""
    t = {k: v.astype(np.float64) for k, v in tensors.items()}
    act = act or (lambda name, x: x)
    kv_round = kv_round or (lambda x: x)
    n_embd = int(meta["embedding_length"])
    n_head = int(meta["attention.head_count"])
    n_kv = int(meta["attention.head_count_kv"])
    eps = float(meta["attention.layer_norm_rms_epsilon"])
    base = float(meta["rope.freq_base"])
    d = n_embd // n_head
    n = len(ids)
    pos = np.arange(n, dtype=np.float64)
    theta = pos[:, None] * base ** (-np.arange(0, d, 2, dtype=np.float64) / d)  # [n, d/2]
    cos, sin = np.cos(theta), np.sin(theta)

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def rope_normal(x):  # x [n, heads, d]; rotates pairs (2i, 2i+1)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        c, s = cos[:, None, :], sin[:, None, :]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * c - x1 * s
        out[..., 1::2] = x0 * s + x1 * c
        return out

    x = t["token_embd.weight"][ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(int(meta["block_count"])):
        b = f"blk.{i}."
        h = rms(x, t[b + "attn_norm.weight"])
        q = rope_normal((act(b + "attn_q.weight", h) @ t[b + "attn_q.weight"].T).reshape(n, n_head, d))
        k = kv_round(rope_normal((act(b + "attn_k.weight", h) @ t[b + "attn_k.weight"].T).reshape(n, n_kv, d)))
        v = kv_round((act(b + "attn_v.weight", h) @ t[b + "attn_v.weight"].T).reshape(n, n_kv, d))
        att = np.empty((n, n_head, d))
        for hh in range(n_head):
            kv = hh // (n_head // n_kv)
            s = q[:, hh, :] @ k[:, kv, :].T / np.sqrt(d) + mask
            p = np.exp(s - s.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            att[:, hh, :] = p @ v[:, kv, :]
        x = x + act(b + "attn_output.weight", att.reshape(n, n_embd)) @ t[b + "attn_output.weight"].T
        h = rms(x, t[b + "ffn_norm.weight"])
        g = act(b + "ffn_gate.weight", h) @ t[b + "ffn_gate.weight"].T
        u = act(b + "ffn_up.weight", h) @ t[b + "ffn_up.weight"].T
        x = x + act(b + "ffn_down.weight", (g / (1 + np.exp(-g))) * u) @ t[b + "ffn_down.weight"].T
    return act("output.weight", rms(x, t["output_norm.weight"])) @ t["output.weight"].T


@torch.no_grad()
def perplexity(model, ids):
    logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].double()
    nll = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]))
    return float(torch.exp(nll))


PPL_BYTES, PPL_CTX = 6000, 128
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    torch.set_num_threads(1)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"gguf {version('gguf')}, tokenizers {tokenizers.__version__}")
    meta, tensors = read_gguf()
    print({k: v for k, v in meta.items() if k != "tokens"}, "vocab", len(meta["tokens"]))

    tok = tokenizers.Tokenizer.from_file(TOKENIZER_PATH)
    vocab = tok.get_vocab(with_added_tokens=True)
    by_id = [None] * len(vocab)
    for s, i in vocab.items():
        by_id[i] = s
    if by_id != list(meta["tokens"]):
        sys.exit("tokenizer.json vocabulary differs from the GGUF token list")

    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 8))
    for nh in (4, 2):
        if not np.array_equal(unpermute(permute(w, nh), nh), w):
            sys.exit("unpermute is not the inverse of permute")

    enc = tok.encode(SENTENCE, add_special_tokens=False).ids
    if len(enc) < SEQ:
        sys.exit(f"sentence gives {len(enc)} tokens, need {SEQ}")
    ids = enc[:SEQ]
    print(f"sentence: {len(enc)} tokens, using the first {SEQ}: {ids}")
    print("           " + repr(tok.decode(ids)))

    model = build_model(meta, tensors, fix_qk=True)
    wrong = build_model(meta, tensors, fix_qk=False)
    input_ids = torch.tensor([ids], dtype=torch.int64)
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits.float().contiguous()
        logits_wrong = wrong(input_ids=input_ids).logits.float()

    ref = reference_forward(meta, tensors, np.array(ids))
    diff = np.abs(logits[0].double().numpy() - ref).max()
    diff_wrong = np.abs(logits_wrong[0].double().numpy() - ref).max()
    scale = np.abs(ref).max()
    print(f"numpy llama.cpp-style reference vs HF: max|diff| {diff:.3e} "
          f"(un-permuted q/k), {diff_wrong:.3e} (left permuted); max|ref| {scale:.3f}")
    if not diff < 1e-3 or not diff_wrong > 100 * diff:
        sys.exit("reference check failed")

    ppl_ids = tok.encode(PPL_TEXT, add_special_tokens=False).ids
    print(f"perplexity on {len(ppl_ids)} tokens of English: "
          f"{perplexity(model, ppl_ids):.2f} (un-permuted), "
          f"{perplexity(wrong, ppl_ids):.2f} (left permuted) -- random weights, informative only")

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "peer_llama_f16_logits.safetensors")
    save_file({"input_ids": input_ids.contiguous(), "logits": logits}, path)
    print(f"wrote {path}: logits {list(logits.shape)}, max|logits| "
          f"{logits.abs().max().item():.3f}, argmax {logits[0].argmax(-1).tolist()}")

    # llama-perplexity's arithmetic (the peers README's setting: context 128, the
    # second half of each chunk scored, no BOS since this tokenizer adds none) over
    # the first PPL_BYTES bytes of the project's corpus.
    with open(os.path.join(ROOT, "tests", "data", "corpus", "opticks-book1-part1.txt"), "rb") as f:
        raw = f.read(PPL_BYTES)
    corpus_ids = tok.encode(raw.decode("utf-8"), add_special_tokens=False).ids
    nlls = []
    with torch.no_grad():
        for start in range(0, len(corpus_ids) - PPL_CTX + 1, PPL_CTX):
            chunk = corpus_ids[start:start + PPL_CTX]
            lp = torch.log_softmax(model(input_ids=torch.tensor([chunk])).logits[0].double(), dim=-1)
            for j in range(PPL_CTX // 2, PPL_CTX - 1):
                nlls.append(-lp[j, chunk[j + 1]].item())
    mean = sum(nlls) / len(nlls)
    expected = {"text_bytes": PPL_BYTES, "tokens": len(corpus_ids), "context": PPL_CTX,
                "tokens_scored": len(nlls), "nll_mean": mean, "ppl": math.exp(mean),
                "first_ids": corpus_ids[:32]}
    path = os.path.join(OUT, "peer_llama_f16_ppl.json")
    with open(path, "w") as f:
        json.dump(expected, f, indent=1)
    print(f"wrote {path}: {expected}")


if __name__ == "__main__":
    main()

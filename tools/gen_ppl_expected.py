#!/usr/bin/env python3
"""Writes tests/data/ppl/: perplexity reference values computed with Hugging Face
transformers + PyTorch (the reference implementation) for the engine's `ppl` job.

  byte_tokenizer.json  a byte-level BPE tokenizer with the 256 byte tokens and no
                       merges (one token per byte), made with `tokenizers`
  expected.json        for the first 3000 bytes of the corpus excerpt
                       (tests/data/corpus/opticks-book1-part1.txt) and the golden
                       tiny GPT-2 (tests/data/golden/gpt2, vocab 256, 64 positions):
                       - llama.cpp mode: chunks of `ctx` tokens, positions
                         [ctx/2, ctx-1) predict the next token and are scored
                       - sliding mode (HF "perplexity of fixed-length models"):
                         windows of `ctx` every `stride` tokens, each scoring the
                         labels the previous window did not
                       with the token-level mean NLL, ppl, tokens scored and
                       llama.cpp's standard error ppl * sqrt(var(nll) / (n - 1)).

Usage:  python3 -m venv /tmp/goldvenv && /tmp/goldvenv/bin/pip install 'transformers<5' torch tokenizers
        /tmp/goldvenv/bin/python tools/gen_ppl_expected.py
"""

import json
import math
import os

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "ppl")
CTX, STRIDE, NBYTES = 32, 20, 3000


def byte_tokenizer():
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    # The GPT-2 byte-to-unicode order: id i is byte i.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_to_char = dict(zip(bs, (chr(c) for c in cs)))
    vocab = {byte_to_char[b]: b for b in range(256)}
    assert set(vocab) == set(alphabet)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def nlls(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    return torch.log_softmax(logits, dim=-1)


def stats(values):
    n = len(values)
    mean = sum(values) / n
    var = sum(v * v for v in values) / n - mean * mean
    ppl = math.exp(mean)
    return {"tokens_scored": n, "nll_mean": mean, "ppl": ppl,
            "ppl_stderr": ppl * math.sqrt(var / (n - 1)) if var > 0 else 0.0}


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    tok = byte_tokenizer()
    path = os.path.join(OUT, "byte_tokenizer.json")
    tok.save(path)
    with open(os.path.join(ROOT, "tests", "data", "corpus", "opticks-book1-part1.txt"), "rb") as f:
        raw = f.read(NBYTES)
    text = raw.decode("utf-8", errors="ignore")
    ids = tok.encode(text).ids
    assert len(ids) == len(text.encode("utf-8"))
    model = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, "tests", "data", "golden", "gpt2"),
                                                 attn_implementation="eager").eval()

    # llama.cpp: no BOS (this tokenizer adds none).
    vals = []
    for start in range(0, len(ids) - CTX + 1, CTX):
        chunk = ids[start:start + CTX]
        lp = nlls(model, chunk)
        for j in range(CTX // 2, CTX - 1):
            vals.append(-lp[j, chunk[j + 1]].item())
    llama = dict(stats(vals), mode="llama.cpp", context=CTX)

    vals = []
    prev_end = 0
    for begin in range(0, len(ids), STRIDE):
        end = min(begin + CTX, len(ids))
        trg = end - prev_end
        window = ids[begin:end]
        lp = nlls(model, window)
        for t in range(max(len(window) - trg, 1), len(window)):
            vals.append(-lp[t - 1, window[t]].item())
        prev_end = end
        if end == len(ids):
            break
    sliding = dict(stats(vals), mode="sliding", context=CTX, stride=STRIDE)

    expected = {"text_bytes": len(text.encode("utf-8")), "tokens": len(ids), "model": "tests/data/golden/gpt2",
                "tokenizer": "tests/data/ppl/byte_tokenizer.json", "results": [llama, sliding]}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()

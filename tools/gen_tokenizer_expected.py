#!/usr/bin/env python3
"""Writes the tokenizer test data in tests/data/tokenizer/ with Hugging Face's
`tokenizers` (PyPI), the reference implementation:

  tiny_bytelevel.json        a small byte-level BPE trained here: NFC normalizer,
                             Split (Llama 3 regex) + ByteLevel pre-tokenizers,
                             merges in the "a b" string format, special and
                             normalized added tokens (one with lstrip)
  tiny_metaspace.json        a small SentencePiece-style BPE trained here with
                             byte fallback (<0xNN>), unk, Metaspace pre-tokenizer
                             (prepend_scheme "first") and decoder, merges as arrays
  tiny_metaspace_norm.json   the same vocabulary with Mistral's pipeline: Prepend
                             and Replace normalizers, Replace/ByteFallback/Fuse/Strip
                             decoder, TemplateProcessing "<s> $A"
  expected_ids.json          the texts below, and for each tokenizer (these three and
                             the real ones in ../shared/peers when present) the ids
                             without and with special tokens, and the decoded text

Usage:  python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tokenizers
        /tmp/tokvenv/bin/python tools/gen_tokenizer_expected.py
"""

import json
import os
import sys

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))

TEXTS = [
    "Hello, world! This is a test.",
    "I'm sure they'll say it's fine, don't you think? THEY'RE HERE and WE'VE gone.",
    "你好，世界！今天天气很好。日本語のテキストです。한국어 문장입니다.",
    "Family: 👨‍👩‍👧‍👦, flags 🇫🇷🇯🇵, skin 👍🏽, heart ❤️ and 🧑‍💻 coding 🏳️‍🌈.",
    "Numbers: 1 12 123 1234 12345 123456789012345678901234567890 3.14159 -42 1,000,000 0x1F",
    "  leading spaces\ttabs\t\there\n\nnew lines\r\n  \n   trailing   ",
    "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>",
    "text<|endoftext|>more text <|endoftext|> end",
    "<s>Hello</s> <s> [INST] What is 2+2? [/INST]",
    "<|begin_of_text|>Hi<|eot_id|><|start_header_id|>user<|end_header_id|>",
    "café naïve résumé Ångström",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301 A\u030angstro\u0308m",
    "Привет мир! Γειά σου κόσμε. مرحبا بالعالم. שלום עולם. नमस्ते दुनिया",
    "def f(x):\n    return x**2  # square\n\nprint(f(3))\n",
    "",
    " ",
    "\n",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa !!!!!!????....",
    "https://example.com/path?q=1&r=2#frag and user@example.org",
    "nbsp\u00a0here, ideographic\u3000space, zero\u200bwidth, soft\u00adhyphen",
    "A [MASK] token, a  [MASK] with spaces, and café au lait.",
]

# Llama 3's split regex, so that the tiny tokenizer exercises the Split pre-tokenizer.
SPLIT_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
            r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.",
    "It was the best of times, it was the worst of times, it was the age of wisdom,",
    "it was the age of foolishness, it was the epoch of belief, it was the epoch of",
    "incredulity, it was the season of Light, it was the season of Darkness.",
    "Call me Ishmael. Some years ago, never mind how long precisely, having little",
    "or no money in my purse, and nothing particular to interest me on shore,",
    "I thought I would sail about a little and see the watery part of the world.",
    "Numbers like 2024, 3.14 and 1,000 appear in text; so do tabs\tand\nnew lines.",
    "def main():\n    print('hello world')\n    return 0\n",
    "café naïve résumé — “quotes” and ‘single’ quotes… Ångström",
    "你好世界 日本語 한국어 Привет мир Γειά σου",
]


def corpus_iter():
    for _ in range(20):
        for line in CORPUS + TEXTS:
            yield line


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def make_tiny_bytelevel():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.train_from_iterator(corpus_iter(), trainer=trainer)
    tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, rstrip=False, normalized=False,
                                       special=True)])
    tok.add_tokens([AddedToken("café", normalized=True, special=False)])
    eot = tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(
        single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", eot)])
    d = json.loads(tok.to_str())
    # The "a b" string merge format (the arrays are tested by the metaspace fixture).
    d["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in d["model"]["merges"]]
    path = os.path.join(OUT, "tiny_bytelevel.json")
    write_json(path, d)
    return path


def make_tiny_metaspace():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=500, min_frequency=2, show_progress=False,
                                  limit_alphabet=70, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(corpus_iter(), trainer=trainer)
    d = json.loads(tok.to_str())
    # SentencePiece layout: <unk> <s> </s>, the 256 byte tokens, then the rest.
    old = sorted(d["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t, _ in old:
        if t not in vocab:
            vocab[t] = len(vocab)
    d["model"]["vocab"] = vocab
    d["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in d["model"]["merges"]]
    for a in d["added_tokens"]:
        a["id"] = vocab[a["content"]]
    d["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"},
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}]}
    d["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    path = os.path.join(OUT, "tiny_metaspace.json")
    write_json(path, d)
    Tokenizer.from_file(path)  # the reference accepts it

    # Mistral's pipeline on the same vocabulary.
    d["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    d["pre_tokenizer"] = None
    d["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    path2 = os.path.join(OUT, "tiny_metaspace_norm.json")
    write_json(path2, d)
    return path, path2


def expected_for(path):
    tok = Tokenizer.from_file(path)
    ids, ids_special, decoded = [], [], []
    for t in TEXTS:
        a = tok.encode(t, add_special_tokens=False).ids
        ids.append(a)
        ids_special.append(tok.encode(t, add_special_tokens=True).ids)
        decoded.append(tok.decode(a, skip_special_tokens=False))
    return {"vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "ids": ids, "ids_special": ids_special, "decoded": decoded}


def main():
    import tokenizers
    os.makedirs(OUT, exist_ok=True)
    files = {}
    files["tiny_bytelevel"] = ("data:tiny_bytelevel.json", make_tiny_bytelevel())
    p1, p2 = make_tiny_metaspace()
    files["tiny_metaspace"] = ("data:tiny_metaspace.json", p1)
    files["tiny_metaspace_norm"] = ("data:tiny_metaspace_norm.json", p2)
    for name, rel in [("qwen3", "peers/tokenizers/qwen3/tokenizer.json"),
                      ("llama3", "peers/tokenizers/llama3/tokenizer.json"),
                      ("mistral", "peers/tokenizers/mistral/tokenizer.json"),
                      ("llama_gguf", "peers/llama-gguf/tokenizer.json")]:
        full = os.path.join(SHARED, rel)
        if not os.path.exists(full):
            sys.exit(f"{full} is missing: the expected ids of the real tokenizers need ../shared")
        files[name] = ("shared:" + rel, full)
    out = {"generator": f"tools/gen_tokenizer_expected.py with tokenizers {tokenizers.__version__}",
           "texts": TEXTS, "tokenizers": {}}
    for name, (ref, full) in files.items():
        e = expected_for(full)
        e["file"] = ref
        out["tokenizers"][name] = e
    write_json(os.path.join(OUT, "expected_ids.json"), out)
    print("wrote", OUT)


if __name__ == "__main__":
    main()

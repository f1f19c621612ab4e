#!/usr/bin/env python3
"""Writes the SentencePiece GGUF test data in tests/data/spm_gguf/ with the
`sentencepiece` library (the reference SPM implementation) and gguf-py:

  tiny-spm.gguf       a SentencePiece BPE vocabulary trained here (1000 pieces, byte
                      fallback, identity normalization, no whitespace collapsing) on
                      tests/data/corpus/opticks-book1-part1.txt, written the way
                      llama.cpp's converter writes one (tokenizer.ggml.model "llama",
                      tokens, scores, token_type: normal 1 / unknown 2 / control 3 /
                      byte 6, bos/eos/unk ids, add_bos_token true, add_eos_token
                      false, add_space_prefix true), with a tiny random llama
                      (1 layer, hidden 16, F32) so that gguf:FILE opens
  expected_ids.json   texts and sp.encode's ids without and with BOS, sp.decode's
                      text; random texts made of vocabulary pieces; and the count and
                      FNV-1a-64 hash of the ids of the whole corpus file and of each
                      of its lines (so the test checks ~40k ids without storing them)

Usage:  python3 -m venv /tmp/spmvenv && /tmp/spmvenv/bin/pip install sentencepiece gguf numpy
        /tmp/spmvenv/bin/python tools/gen_spm_gguf.py
"""

import io
import json
import os
import random
import struct

import gguf
import numpy as np
import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "spm_gguf")
CORPUS_REL = "tests/data/corpus/opticks-book1-part1.txt"
CORPUS = os.path.join(ROOT, CORPUS_REL)

# Characters outside the corpus (CJK, emoji, most accented letters) are not in the
# vocabulary and come out as <0xNN> byte tokens.
TEXTS = [
    "Hello, world! This is a test.",
    "The light of the Sun is refracted by the Prism into Colours.",
    "Of the Reflexions, Refractions, Inflexions and Colours of Light.",
    "multiple   spaces    between     words",
    "  two leading spaces",
    " one leading space",
    "trailing spaces   ",
    "   ",
    " ",
    "",
    "a",
    "\n",
    "first line\nsecond line\n\nafter an empty line\r\nwindows line\tand\ttabs",
    "Numbers: 1 12 123 1234 12345 3.14159 -42 1,000,000 MDCCXXX 1730",
    "你好，世界！日本語のテキスト。한국어",
    "Emoji: 🙂🚀 and a family 👨‍👩‍👧 and a flag 🇫🇷",
    "café naïve résumé Ångström über façade",
    "cafe\u0301 with a combining accent, and nbsp\u00a0here",
    "Привет мир! Γειά σου κόσμε.",
    "ALL CAPITALS, Mixed Case, lowercase",
    "symbols: <>{}[]()|\\/~`^@#$%&*_+=",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa eeeeeeeeeeeeee tttttttt",
    "the the the thethe thethethe",
    "\u2581 the meta symbol itself \u2581\u2581x",
]


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for b in struct.pack("<%di" % len(ids), *ids):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def train():
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=CORPUS, model_writer=model, model_type="bpe", vocab_size=1000,
        byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True,
        allow_whitespace_only_pieces=True, character_coverage=0.9995,
        max_sentence_length=100000, num_threads=1, minloglevel=2,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def vocab_of(sp):
    # As llama.cpp's converter (_create_vocab_sentencepiece) types the pieces.
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            t = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            t = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            t = gguf.TokenType.BYTE
        else:
            t = gguf.TokenType.NORMAL
        types.append(int(t))
    return tokens, scores, types


def write_gguf(path, sp):
    tokens, scores, types = vocab_of(sp)
    n_vocab, hidden, ffn, heads = len(tokens), 16, 32, 2
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-spm")
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_block_count(1)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(hidden // heads)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    rng = np.random.default_rng(0)

    def rand(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    ones = lambda n: np.ones(n, dtype=np.float32)  # noqa: E731
    w.add_tensor("token_embd.weight", rand(n_vocab, hidden))
    w.add_tensor("output_norm.weight", ones(hidden))
    w.add_tensor("blk.0.attn_norm.weight", ones(hidden))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor("blk.0.%s.weight" % name, rand(hidden, hidden))
    w.add_tensor("blk.0.ffn_norm.weight", ones(hidden))
    w.add_tensor("blk.0.ffn_gate.weight", rand(ffn, hidden))
    w.add_tensor("blk.0.ffn_up.weight", rand(ffn, hidden))
    w.add_tensor("blk.0.ffn_down.weight", rand(hidden, ffn))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def random_texts(sp, n, seed):
    # Concatenations of vocabulary pieces (spaces for U+2581) and a few characters,
    # so that pieces meet in many orders and splits.
    rng = random.Random(seed)
    pieces = [sp.id_to_piece(i).replace("\u2581", " ") for i in range(sp.get_piece_size())
              if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i))]
    extra = [" ", "  ", "\n", "é", "東", "🙂", "e", "t", "0"]
    return ["".join(rng.choice(pieces + extra) for _ in range(rng.randint(1, 10))) for _ in range(n)]


def main():
    os.makedirs(OUT, exist_ok=True)
    sp = train()
    gguf_path = os.path.join(OUT, "tiny-spm.gguf")
    write_gguf(gguf_path, sp)
    size = os.path.getsize(gguf_path)
    assert size < 200 * 1024, size

    cases = []
    for t in TEXTS:
        ids = sp.encode(t)
        with_bos = sp.encode(t, add_bos=True)
        assert with_bos == [sp.bos_id()] + ids
        cases.append({"text": t, "ids": ids, "ids_with_bos": with_bos,
                      "pieces": [sp.id_to_piece(i) for i in ids], "decoded": sp.decode(ids)})
    byte_tokens = sum(1 for c in cases for i in c["ids"] if sp.is_byte(i))
    assert byte_tokens > 0
    rand = [{"text": t, "ids": sp.encode(t)} for t in random_texts(sp, 200, 1)]

    with open(CORPUS, encoding="utf-8") as f:
        corpus = f.read()
    whole = sp.encode(corpus)
    line_ids = []
    lines = corpus.split("\n")
    for line in lines:
        line_ids += sp.encode(line)

    doc = {
        "comment": "written by tools/gen_spm_gguf.py with sentencepiece " + spm.__version__ +
                   " and gguf " + getattr(gguf, "__version__", "?"),
        "gguf": "tiny-spm.gguf",
        "vocab_size": sp.get_piece_size(),
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "unk_id": sp.unk_id(),
        "cases": cases,
        "random": rand,
        "corpus": {
            "file": CORPUS_REL,
            "hash": "FNV-1a 64 of the ids as little-endian int32, no BOS",
            "whole": {"n_ids": len(whole), "fnv1a64": fnv1a64(whole)},
            "lines": {"split": "\\n", "n_lines": len(lines), "n_ids": len(line_ids),
                      "fnv1a64": fnv1a64(line_ids)},
        },
    }
    with open(os.path.join(OUT, "expected_ids.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("tiny-spm.gguf: %d bytes; %d cases (%d byte tokens), %d random texts, corpus %d ids"
          % (size, len(cases), byte_tokens, len(rand), len(whole)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the benchmark model of bench/engine_vs_llamacpp.sh and quantizes it with llama.cpp.

A llama-architecture model of about 195M parameters (hidden 1024, 16 layers, 16 query
heads and 4 KV heads of 64, FFN 2816 with SiLU gating, untied output) with seeded
N(0, 0.02) weights, written as an f16 GGUF (norms f32) by this script's own small
GGUF writer (numpy only), with the tokenizer of ../shared/peers/llama-gguf's files
(vocabulary 8,257) copied into its metadata so that llama.cpp loads it. Then
llama.cpp itself (llama-cpp-python's llama_model_quantize, not gridbench's
quantizers) makes q8_0, q4_0 and the K-quant q4_K_M, q5_K_M, q3_K_M and q2_K files
from it.

Not a test fixture: the files are large (0.4 GB f16) and go to OUT_DIR (default
build/bench-models). Existing files are kept unless --force.

    /work/venv-ref/bin/python tools/make_bench_gguf.py [--out DIR] [--force]
"""
import argparse
import os
import struct
import sys

import numpy as np

HIDDEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, FFN = 1024, 16, 16, 4, 64, 2816
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peers", "llama-gguf",
                    "peer-llama-f16.gguf")
GGML_F32, GGML_F16 = 0, 1
QUANTS = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
          "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M", "q3_k_m": "LLAMA_FTYPE_MOSTLY_Q3_K_M", "q2_k": "LLAMA_FTYPE_MOSTLY_Q2_K"}

# GGUF metadata value types and the sizes of the scalar ones.
SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9


def skip_value(buf, pos, vtype):
    if vtype in SCALAR:
        return pos + SCALAR[vtype]
    if vtype == STRING:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return pos + 8 + n
    if vtype == ARRAY:
        etype, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if etype in SCALAR:
            return pos + n * SCALAR[etype]
        for _ in range(n):
            pos = skip_value(buf, pos, etype)
        return pos
    raise ValueError(f"{PEER}: unknown GGUF value type {vtype} at byte {pos}")


def tokenizer_kvs(path):
    """The raw bytes of every tokenizer.* key/value pair of a GGUF file, and the vocabulary size."""
    with open(path, "rb") as f:
        buf = f.read(8 << 20)
    if buf[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    _, _, n_kv = struct.unpack_from("<IQQ", buf, 4)
    pos, out, vocab = 24, [], None
    for _ in range(n_kv):
        start = pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        key = buf[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        (vtype,) = struct.unpack_from("<I", buf, pos)
        end = skip_value(buf, pos + 4, vtype)
        if key.startswith("tokenizer."):
            out.append(buf[start:end])
            if key == "tokenizer.ggml.tokens":
                vocab = struct.unpack_from("<Q", buf, pos + 8)[0]
        pos = end
    if vocab is None:
        raise ValueError(f"{path}: no tokenizer.ggml.tokens")
    return out, vocab


def kv(key, vtype, value):
    k = key.encode()
    head = struct.pack("<Q", len(k)) + k + struct.pack("<I", vtype)
    if vtype == STRING:
        v = value.encode()
        return head + struct.pack("<Q", len(v)) + v
    fmt = {4: "<I", 6: "<f"}[vtype]
    return head + struct.pack(fmt, value)


def write_f16_model(path, rng):
    tok_kvs, vocab = tokenizer_kvs(PEER)
    meta = [
        kv("general.architecture", STRING, "llama"),
        kv("general.name", STRING, "gridbench-bench-195m"),
        kv("general.file_type", 4, 1),
        kv("llama.context_length", 4, 2048),
        kv("llama.embedding_length", 4, HIDDEN),
        kv("llama.block_count", 4, LAYERS),
        kv("llama.feed_forward_length", 4, FFN),
        kv("llama.attention.head_count", 4, HEADS),
        kv("llama.attention.head_count_kv", 4, KV_HEADS),
        kv("llama.rope.dimension_count", 4, HEAD_DIM),
        kv("llama.rope.freq_base", 6, 10000.0),
        kv("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
        kv("general.alignment", 4, 32),
    ] + tok_kvs
    # (name, ne in GGUF order: ne[0] = input features, type)
    tensors = [("token_embd.weight", (HIDDEN, vocab), GGML_F16)]
    for i in range(LAYERS):
        p = f"blk.{i}."
        tensors += [
            (p + "attn_norm.weight", (HIDDEN,), GGML_F32),
            (p + "attn_q.weight", (HIDDEN, HEADS * HEAD_DIM), GGML_F16),
            (p + "attn_k.weight", (HIDDEN, KV_HEADS * HEAD_DIM), GGML_F16),
            (p + "attn_v.weight", (HIDDEN, KV_HEADS * HEAD_DIM), GGML_F16),
            (p + "attn_output.weight", (HEADS * HEAD_DIM, HIDDEN), GGML_F16),
            (p + "ffn_norm.weight", (HIDDEN,), GGML_F32),
            (p + "ffn_gate.weight", (HIDDEN, FFN), GGML_F16),
            (p + "ffn_up.weight", (HIDDEN, FFN), GGML_F16),
            (p + "ffn_down.weight", (FFN, HIDDEN), GGML_F16),
        ]
    tensors += [("output_norm.weight", (HIDDEN,), GGML_F32), ("output.weight", (HIDDEN, vocab), GGML_F16)]

    def nbytes(ne, t):
        return int(np.prod(ne)) * (4 if t == GGML_F32 else 2)

    def pad(n):
        return (n + 31) // 32 * 32

    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta)
    offset, infos = 0, []
    for name, ne, t in tensors:
        nb = name.encode()
        infos.append(struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(ne)) +
                     b"".join(struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", t, offset))
        offset = pad(offset + nbytes(ne, t))
    head = header + b"".join(infos)
    params = 0
    with open(path + ".tmp", "wb") as f:
        f.write(head + b"\0" * (pad(len(head)) - len(head)))
        for name, ne, t in tensors:
            n = int(np.prod(ne))
            params += n
            if t == GGML_F32:
                data = np.ones(n, dtype=np.float32)
            else:
                data = (rng.standard_normal(n, dtype=np.float32) * 0.02).astype(np.float16)
            b = data.tobytes()
            f.write(b + b"\0" * (pad(len(b)) - len(b)))
    os.replace(path + ".tmp", path)
    return params


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("build", "bench-models"), help="output folder")
    ap.add_argument("--force", action="store_true", help="write the files again even if they exist")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    f16 = os.path.join(a.out, "bench-llama-f16.gguf")
    if a.force or not os.path.exists(f16):
        params = write_f16_model(f16, np.random.default_rng(1234))
        print(f"wrote {f16}: {params / 1e6:.1f}M parameters, f16 (norms f32)")
    try:
        import llama_cpp
    except ImportError:
        print("llama-cpp-python is not installed: the q8_0/q4_0/K-quant files need llama.cpp's quantizer "
              "(pip install llama-cpp-python); only the f16 file was written", file=sys.stderr)
        return 3
    for q, ftype in QUANTS.items():
        out = os.path.join(a.out, f"bench-llama-{q}.gguf")
        if os.path.exists(out) and not a.force:
            continue
        p = llama_cpp.llama_model_quantize_default_params()
        p.ftype = getattr(llama_cpp, ftype)
        p.nthread = 2
        rc = llama_cpp.llama_model_quantize(f16.encode(), out.encode(), p)
        if rc != 0:
            print(f"llama_model_quantize {q} failed ({rc})", file=sys.stderr)
            return 1
        print(f"wrote {out} (llama.cpp {ftype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

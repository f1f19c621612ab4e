#!/usr/bin/env python3
"""Known-answer vectors for AWQ and GPTQ checkpoints (tests/data/quantized_ckpt/).

Writes three tiny Llama checkpoints in Hugging Face layout whose linear layers are
packed the way AutoAWQ and AutoGPTQ store them, worked out in numpy from the
published layouts (no AutoAWQ/AutoGPTQ here: neither runs without CUDA), and beside
each the dequantized f32 weights the loader must reproduce exactly:

  awq/          quant_method awq, version gemm, 4 bits, group G = 128, zero_point:
                NAME.qweight int32 [in, out/8]: 8 output columns per int32 in AWQ's
                order [0, 2, 4, 6, 1, 3, 5, 7] (nibble i holds column 8c + order[i]);
                NAME.qzeros int32 [in/G, out/8] the same way; NAME.scales f16
                [in/G, out]. W[i, o] = scales[g, o] * (q[i, o] - z[g, o]), g = i // G.
  gptq/         quant_method gptq (v1 checkpoint_format "gptq"), 4 bits, group G = 64,
                desc_act false: NAME.qweight int32 [in/8, out]: 8 input rows per int32,
                row 8r + k in nibble k; NAME.qzeros int32 [groups, out/8], column
                8c + k in nibble k, stored as z - 1 (v1's offset: a zero point is
                nibble + 1, 1 to 16, as AutoGPTQ's kernels read it); NAME.scales f16
                [groups, out]; NAME.g_idx int32 [in] = i // G.
                W[i, o] = scales[g_idx[i], o] * (q[i, o] - (qz[g_idx[i], o] + 1)).
  gptq_act/     the same, G = 32, desc_act true: g_idx[i] = perm_inv[i] // G for a
                random permutation (act-order: groups are not contiguous rows).

expected.safetensors holds, for each linear NAME.weight, the dequantized [out, in]
f32 matrix (torch.nn.Linear layout). Run from the repository root:
  /work/venv-ref/bin/python tools/gen_awq_gptq_vectors.py
"""
import json
import os

import numpy as np
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "quantized_ckpt")
GROUPS = {"awq": 128, "gptq": 64, "gptq_act": 32}  # several groups a row where the rows allow
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 32,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
}
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def linears(c):
    h, i = c["hidden_size"], c["intermediate_size"]
    hd = c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    p = "model.layers.0."
    return [
        (p + "self_attn.q_proj", q, h),
        (p + "self_attn.k_proj", kv, h),
        (p + "self_attn.v_proj", kv, h),
        (p + "self_attn.o_proj", h, q),
        (p + "mlp.gate_proj", i, h),
        (p + "mlp.up_proj", i, h),
        (p + "mlp.down_proj", h, i),
    ]


def quantize(rng, out_f, in_f, g_idx, zero_offset, group):
    """Random int4 codes q [in, out], zeros z [groups, out] (0..15, or GPTQ v1's 1..16)
    and f16 scales s."""
    groups = in_f // group
    q = rng.integers(0, 16, size=(in_f, out_f), dtype=np.int64)
    z = rng.integers(zero_offset, 16 + zero_offset, size=(groups, out_f), dtype=np.int64)
    s = (rng.uniform(0.002, 0.02, size=(groups, out_f))).astype(np.float16)
    w = s[g_idx].astype(np.float32) * (q - z[g_idx]).astype(np.float32)  # [in, out], exact in f32
    return q, z, s, w


def pack_awq_cols(v):
    """[rows, cols] nibbles -> int32 [rows, cols/8], AWQ's column order."""
    rows, cols = v.shape
    out = np.zeros((rows, cols // 8), dtype=np.uint32)
    for c in range(cols // 8):
        for i in range(8):
            out[:, c] |= (v[:, c * 8 + AWQ_ORDER[i]].astype(np.uint32) & 15) << (4 * i)
    return out.view(np.int32)


def pack_gptq_rows(v):
    """[rows, cols] nibbles -> int32 [rows/8, cols], row 8r + k in nibble k."""
    rows, cols = v.shape
    out = np.zeros((rows // 8, cols), dtype=np.uint32)
    for r in range(rows // 8):
        for k in range(8):
            out[r] |= (v[r * 8 + k].astype(np.uint32) & 15) << (4 * k)
    return out.view(np.int32)


def pack_gptq_cols(v):
    """[rows, cols] nibbles -> int32 [rows, cols/8], column 8c + k in nibble k."""
    rows, cols = v.shape
    out = np.zeros((rows, cols // 8), dtype=np.uint32)
    for c in range(cols // 8):
        for k in range(8):
            out[:, c] |= (v[:, c * 8 + k].astype(np.uint32) & 15) << (4 * k)
    return out.view(np.int32)


def write(kind, seed):
    rng = np.random.default_rng(seed)
    group = GROUPS[kind]
    c = dict(CONFIG)
    if kind == "awq":
        c["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": group, "zero_point": True,
                                    "version": "gemm"}
    else:
        c["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": group,
                                    "desc_act": kind == "gptq_act", "sym": False, "checkpoint_format": "gptq"}
    h, v = c["hidden_size"], c["vocab_size"]
    tensors = {
        "model.embed_tokens.weight": (rng.standard_normal((v, h)) * 0.5).astype(np.float16),
        "model.layers.0.input_layernorm.weight": (1 + 0.1 * rng.standard_normal(h)).astype(np.float16),
        "model.layers.0.post_attention_layernorm.weight": (1 + 0.1 * rng.standard_normal(h)).astype(np.float16),
        "model.norm.weight": (1 + 0.1 * rng.standard_normal(h)).astype(np.float16),
        "lm_head.weight": (rng.standard_normal((v, h)) * 0.1).astype(np.float16),
    }
    expected = {}
    for name, out_f, in_f in linears(c):
        if kind == "gptq_act":
            perm = rng.permutation(in_f)
            inv = np.argsort(perm)
            g_idx = (inv // group).astype(np.int32)
        else:
            g_idx = (np.arange(in_f) // group).astype(np.int32)
        q, z, s, w = quantize(rng, out_f, in_f, g_idx, 0 if kind == "awq" else 1, group)
        if kind == "awq":
            tensors[name + ".qweight"] = pack_awq_cols(q)
            tensors[name + ".qzeros"] = pack_awq_cols(z)
        else:
            tensors[name + ".qweight"] = pack_gptq_rows(q)
            tensors[name + ".qzeros"] = pack_gptq_cols(z - 1)  # v1: stored minus one, read back plus one
            tensors[name + ".g_idx"] = g_idx
        tensors[name + ".scales"] = s
        expected[name + ".weight"] = np.ascontiguousarray(w.T.astype(np.float32))
    d = os.path.join(OUT, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    save_file(expected, os.path.join(d, "expected.safetensors"))
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)


if __name__ == "__main__":
    write("awq", 9)
    write("gptq", 10)
    write("gptq_act", 11)

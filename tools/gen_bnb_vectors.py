#!/usr/bin/env python3
"""Known-answer vectors of bitsandbytes' NF4/FP4 (tests/data/bnb/bnb4_vectors.json).

bitsandbytes' own quantize_4bit and dequantize_4bit, on its CPU path, for a seeded
f32 tensor in blocks of 64, with and without double quantization
(compress_statistics: the absmax values quantized again in blocks of 256 with its
signed dynamic map, after subtracting their mean). Stored as hex of the raw
little-endian bytes so that the C++ test reads them bit for bit:

  x                 f32 [n]        the input (n = 64 * 260: two 256-blocks of absmax,
                                   the second short)
  VARIANT.codes     u8 [n / 2]     packed codes, first element in the high nibble
  VARIANT.absmax    f32 [n / 64]   (no double quantization) the absmax per block
  VARIANT.absmax_codes u8 [n / 64] (double quantization) the absmax codes
  VARIANT.absmax2   f32 [2]        (double quantization) the scale per 256 blocks
  VARIANT.offset    f32            (double quantization) the mean absmax
  VARIANT.code2     f32 [256]      (double quantization) the dynamic map used
  VARIANT.dequantized f32 [n]      dequantize_4bit of it

VARIANT is nf4, fp4, nf4_dq, fp4_dq. Run from the repository root:
  /work/venv-ref/bin/python tools/gen_bnb_vectors.py   (needs bitsandbytes, CPU)
"""
import json
import os

import numpy as np
import torch
import bitsandbytes
import bitsandbytes.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "bnb", "bnb4_vectors.json")
BLOCK = 64


def hexa(t):
    return np.ascontiguousarray(t.detach().cpu().numpy()).tobytes().hex()


def main():
    g = torch.Generator().manual_seed(4)
    n = BLOCK * 260
    # Gaussian values with a few outliers, so that blocks' absmax values differ widely.
    x = torch.randn(n, generator=g, dtype=torch.float32)
    x[::97] *= 6.0
    out = {"bitsandbytes": bitsandbytes.__version__, "blocksize": BLOCK, "n": n, "x": hexa(x)}
    for qt in ("nf4", "fp4"):
        for dq in (False, True):
            name = qt + ("_dq" if dq else "")
            q, st = F.quantize_4bit(x, blocksize=BLOCK, quant_type=qt, compress_statistics=dq)
            d = F.dequantize_4bit(q, st)
            v = {"codes": hexa(q.flatten()), "dequantized": hexa(d.flatten().to(torch.float32))}
            if dq:
                assert st.absmax.dtype == torch.uint8
                v["absmax_codes"] = hexa(st.absmax)
                v["absmax2"] = hexa(st.state2.absmax.to(torch.float32))
                v["offset"] = hexa(st.offset.to(torch.float32).reshape(1))
                v["code2"] = hexa(st.state2.code.to(torch.float32))
                assert st.state2.blocksize == 256
            else:
                v["absmax"] = hexa(st.absmax.to(torch.float32))
            out[name] = v
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

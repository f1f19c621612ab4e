#!/usr/bin/env python3
"""llama.cpp's batch-1 decode and prefill speed on a GGUF file, through llama-cpp-python.

The counterpart of engine_bench --brief for bench/engine_vs_llamacpp.sh: the same
measurements (a PROMPT-token prefill from an empty cache, then STEPS single-token
decode steps, greedy token ids, the best of REPEATS runs) with llama.cpp's own
kernels (its q8 activations for the q-types). Prints one line:
    decode_tokens_per_s prefill_tokens_per_s
Exits 3, saying so, when llama_cpp is not importable.
"""
import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    try:
        import llama_cpp
    except ImportError:
        print("llama-cpp-python is not installed", file=sys.stderr)
        return 3
    llm = llama_cpp.Llama(model_path=a.model, n_threads=a.threads, n_threads_batch=a.threads, n_ctx=512,
                          n_batch=512, n_ubatch=512, verbose=False, logits_all=False)
    vocab = llm.n_vocab()
    prompt = [(i * 7919 + 13) % vocab for i in range(a.prompt_tokens)]
    best_prefill, best_decode = 0.0, 0.0
    llm.reset()
    llm.eval(prompt[:8])  # warm-up
    for _ in range(a.repeats):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        best_prefill = max(best_prefill, a.prompt_tokens / (time.perf_counter() - t0))
        tok = prompt[-1]
        t0 = time.perf_counter()
        for _ in range(a.steps):
            llm.eval([tok])
            tok = (tok * 31 + 7) % vocab  # not sampled: the bench times the forward pass only
        best_decode = max(best_decode, a.steps / (time.perf_counter() - t0))
    print(f"{best_decode:.2f} {best_prefill:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

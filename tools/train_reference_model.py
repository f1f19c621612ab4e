#!/usr/bin/env python3
"""Trains gridbench's reference model: a small Llama-architecture language model on the
King James Bible, with its own byte-level BPE tokenizer, held-out text and a multiple-choice
set, all written to tests/data/reference_model/ (see its README.md). It is not a test and CI
never runs it: CI uses what it wrote, stored in the repository.

Corpus   Debian package `bible-kjv-text` (4.38 in Debian 12; /usr/lib/bible.data, 1.7 MB
         compressed, 4,298,239 bytes of text as `bible` prints it; the KJV text is in the
         public domain, see /usr/share/doc/bible-kjv-text/copyright), read through the `bible`
         program of the package `bible-kjv` (which pulls bible-kjv-text in):
         `bible -l0 gen1:1-rev22:21`. Clean text: one chapter per paragraph, its heading
         ("Genesis 1") then one verse per line without its number.
Split    by chapter, deterministic: chapter i (0-based, canon order) is held out when
         i % 20 == 10 (59 of 1189 chapters, about 5%); the rest trains.
Tokenizer byte-level BPE (`tokenizers`, GPT-2 pre-tokenizer regex, no prefix space), 4096 ids,
         id 0 = <|endoftext|> (eos; nothing is added when encoding), trained on the train text.
Model    transformers' LlamaForCausalLM: hidden 256, 4 layers, 4 query heads and 2 KV heads
         (GQA) of 64, SwiGLU 768, RMSNorm, RoPE theta 10000, context 256, tied embeddings
         (about 4.2 M parameters), trained with AdamW (cosine schedule over --steps) on random
         256-token windows of the train chapters joined by <|endoftext|>; what is saved is an
         exponential moving average of the weights (decay 0.99), so that a run stopped early
         (--stop-at) still gives annealed weights; saved in bf16 (model.safetensors, config.json,
         generation_config.json, tokenizer.json, tokenizer_config.json).
MC set   tests/data/reference_model/mc/{dev,test}/kjv_continuation_{dev,test}.csv in the MMLU
         layout (no header; question,A,B,C,D,answer): from a held-out verse of at least 10
         words, question = the verse before it (same chapter, when there is one) + a newline +
         the verse's first half of words; the right choice is the rest of the verse, the three
         distractors are the second halves of held-out verses of other chapters with about
         the same number of words. dev: 5 items, test: 400 items; the answer letters are
         balanced by a seeded shuffle.
Evaluate with transformers on the saved model read back in float32 (the bf16 weights
         widened exactly, as gridbench reads them): held-out perplexity in llama.cpp's mode
         (chunks of 256 tokens, the second half of each scored) on all of heldout.txt, and on
         a 12,000-byte prefix of it in llama.cpp mode and in sliding mode (the values the C++
         test compares gridbench with); MC accuracy 0-shot, scored by each choice's summed
         log-likelihood (acc) and by it divided by the choice's length in bytes (acc_norm,
         as lm-evaluation-harness does), for two prompt forms: plain continuation (context =
         question, continuation = " " + choice) and MMLU's ("question\\nAnswer:" then
         " " + choice); the greedy continuation of "In the beginning" (24 tokens). Everything
         lands in reference_eval.json.

Usage (a step, 8 x 256 tokens, costs about 1.2-1.6 CPU-seconds with 2 threads on a
2-core AVX2 VM; the default 450 steps, about 10-12 CPU-minutes on an idle machine, plus a
minute of evaluation; `nice` it on a shared machine):
  apt-get install -y bible-kjv-text bible-kjv
  python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch tokenizers safetensors transformers
  nice -n 19 /tmp/refvenv/bin/python tools/train_reference_model.py [--steps N] [--stop-at K] [--threads N]
  /tmp/refvenv/bin/python tools/train_reference_model.py --eval-only   # re-evaluate the stored model
The stored model is what training_state.json says (steps done of steps planned): rerun with
those as --steps and --stop-at to make it again.
Seed 1234 (torch, random); with the same library versions and thread count the run repeats.
"""

import argparse
import csv
import json
import math
import os
import random
import subprocess
import sys
import time

# On a shared CPU, OpenMP threads that spin while waiting for each other burn most of the
# time a niced run gets (4x here); passive waiting leaves it to the computation.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "reference_model")
SEED = 1234
HELD_OUT_EVERY, HELD_OUT_AT = 20, 10
VOCAB = 4096
EOS = "<|endoftext|>"
CTX = 256
SLICE_BYTES = 12000     # the prefix of heldout.txt the C++ test evaluates
SLIDING_STRIDE = 128
MC_DEV, MC_TEST = 5, 400
GREEDY_TOKENS = 24


def read_chapters():
    """[(book, chapter, [verse text])] in canon order, from the `bible` program."""
    raw = subprocess.run(["bible", "-l0", "gen1:1-rev22:21"], check=True, capture_output=True,
                         text=True, stdin=subprocess.DEVNULL).stdout
    chapters = []
    for line in raw.split("\n"):
        if not line.strip():
            continue
        if line.startswith("  "):
            num, _, verse = line.strip().partition(" ")
            assert num.isdigit() and verse, line
            chapters[-1][2].append(verse.strip())
        else:
            book, _, ch = line.rpartition(" ")
            assert ch.isdigit(), line
            chapters.append((book, int(ch), []))
    assert len(chapters) == 1189 and sum(len(c[2]) for c in chapters) == 31102, "unexpected bible-kjv-text"
    return chapters


def chapter_text(c):
    return f"{c[0]} {c[1]}\n" + "".join(v + "\n" for v in c[2])


def train_tokenizer(train_texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=[EOS], min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(train_texts, trainer=trainer)
    assert tok.token_to_id(EOS) == 0 and tok.get_vocab_size() == VOCAB
    return tok


def model_config():
    from transformers import LlamaConfig
    return LlamaConfig(vocab_size=VOCAB, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=CTX,
                       rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, hidden_act="silu",
                       bos_token_id=0, eos_token_id=0, attention_bias=False, mlp_bias=False,
                       initializer_range=0.02)


def portable_tokenizer_config(out_dir):
    """transformers 5 names the class TokenizersBackend, which transformers 4 lacks;
    PreTrainedTokenizerFast reads in both."""
    path = os.path.join(out_dir, "tokenizer_config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def save_model(model, state, tok_fast, out_dir, note):
    import torch
    os.makedirs(out_dir, exist_ok=True)
    bf = type(model)(model.config)
    bf.load_state_dict(state)
    bf = bf.to(torch.bfloat16)
    bf.save_pretrained(out_dir, safe_serialization=True)
    tok_fast.save_pretrained(out_dir)
    portable_tokenizer_config(out_dir)
    with open(os.path.join(out_dir, "training_state.json"), "w") as f:
        json.dump(note, f, indent=1)


def train(args, chapters, train_idx, tok, tok_fast):
    import torch
    from transformers import LlamaForCausalLM
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    ids = []
    for i in train_idx:
        ids.extend(tok.encode(chapter_text(chapters[i])).ids)
        ids.append(0)
    data = torch.tensor(ids, dtype=torch.long)
    print(f"train tokens {len(ids)}", flush=True)
    model = LlamaForCausalLM(model_config())
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters {n_params}", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    warmup = max(1, args.steps // 50)

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        p = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

    t0 = time.time()
    ema = None
    avg = {k: v.detach().clone() for k, v in model.state_dict().items()}
    stop = min(args.steps, args.stop_at or args.steps)
    for step in range(stop):
        starts = [rng.randrange(0, len(ids) - CTX - 1) for _ in range(args.batch)]
        x = torch.stack([data[s:s + CTX + 1] for s in starts])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=x[:, :-1], labels=x[:, :-1].clone(), use_cache=False).loss
        # HF shifts labels itself: labels = inputs, predicting x[t+1] from x[:t+1].
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(0.99, (1 + step) / (10 + step))
            for k, v in model.state_dict().items():
                avg[k].mul_(d).add_(v.detach(), alpha=1 - d)
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        done = step + 1
        if done % 25 == 0 or done == stop:
            el = time.time() - t0
            print(f"step {done}/{args.steps} loss {loss.item():.4f} ema {ema:.4f} lr {lr_at(step):.2e} "
                  f"{el:.0f}s {done * args.batch * CTX / el:.0f} tok/s", flush=True)
        if done % args.checkpoint_every == 0 or done == stop:
            save_model(model, avg, tok_fast, OUT, {"seed": SEED, "steps_done": done, "steps_planned": args.steps,
                                              "weights": "EMA 0.99 of the trained weights",
                                              "batch": args.batch, "context": CTX, "lr": args.lr,
                                              "train_loss_ema": ema, "train_tokens": len(ids),
                                              "wall_s": round(time.time() - t0), "threads": args.threads,
                                              "torch": torch.__version__})
            print(f"checkpoint at step {done}", flush=True)
    return model


def token_logprobs(model, ids):
    import torch
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


def ppl_llama_cpp(model, ids, ctx):
    """gridbench's and llama.cpp's mode: chunks of ctx, positions [ctx/2, ctx-1) predict the next token."""
    vals = []
    for start in range(0, len(ids) - ctx + 1, ctx):
        chunk = ids[start:start + ctx]
        lp = token_logprobs(model, chunk)
        vals.extend(-lp[j, chunk[j + 1]].item() for j in range(ctx // 2, ctx - 1))
    return dict(stats(vals), mode="llama.cpp", context=ctx)


def ppl_sliding(model, ids, ctx, stride):
    vals = []
    prev_end = 0
    for begin in range(0, len(ids), stride):
        end = min(begin + ctx, len(ids))
        trg = end - prev_end
        window = ids[begin:end]
        lp = token_logprobs(model, window)
        vals.extend(-lp[t - 1, window[t]].item() for t in range(max(len(window) - trg, 1), len(window)))
        prev_end = end
        if end == len(ids):
            break
    return dict(stats(vals), mode="sliding", context=ctx, stride=stride)


def build_mc(chapters, held_idx):
    """MMLU-layout rows (question, A, B, C, D, answer) from held-out verses."""
    rng = random.Random(SEED + 1)
    items = []   # (chapter index, previous verse or "", prefix words, rest words)
    for i in held_idx:
        verses = chapters[i][2]
        for k, v in enumerate(verses):
            w = v.split()
            if len(w) < 10:
                continue
            h = (len(w) + 1) // 2
            items.append((i, verses[k - 1] if k > 0 else "", " ".join(w[:h]), " ".join(w[h:])))
    rng.shuffle(items)
    picked = items[:MC_DEV + MC_TEST]
    rows = []
    for n, (ch, prev, prefix, rest) in enumerate(picked):
        nw = len(rest.split())
        pool = [it[3] for it in items if it[0] != ch and abs(len(it[3].split()) - nw) <= max(1, nw // 5)
                and it[3] != rest]
        distractors = rng.sample(sorted(set(pool)), 3)
        answer = n % 4
        choices = distractors[:answer] + [rest] + distractors[answer:]
        question = (prev + "\n" if prev else "") + prefix
        rows.append([question] + choices + ["ABCD"[answer]])
    order = list(range(len(rows)))
    rng.shuffle(order)
    rows = [rows[j] for j in order]
    return rows[:MC_DEV], rows[MC_DEV:]


def write_csv(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def mc_scores(model, tok, rows, form):
    """acc (summed log-likelihood) and acc_norm (divided by the choice's bytes), 0-shot.
    The context runs once; each choice continues from a copy of its KV cache."""
    import copy
    import torch
    hits = {"acc": 0, "acc_norm": 0}
    for r in rows:
        context = r[0] if form == "continuation" else r[0] + "\nAnswer:"
        c_ids = tok.encode(context).ids
        with torch.no_grad():
            ctx_out = model(torch.tensor([c_ids]), use_cache=True)
            first = torch.log_softmax(ctx_out.logits[0, -1].double(), dim=-1)
            best = {"acc": None, "acc_norm": None}
            for j in range(4):
                cont = " " + r[1 + j]
                ids = tok.encode(context + cont).ids
                # The context's tokens are a prefix of the whole's: the choice starts with a
                # space, which the BPE regex never merges into the token before it.
                assert ids[:len(c_ids)] == c_ids, (context, cont)
                rest = ids[len(c_ids):]
                out = model(torch.tensor([rest]), past_key_values=copy.deepcopy(ctx_out.past_key_values),
                            use_cache=True)
                lp = torch.log_softmax(out.logits[0].double(), dim=-1)
                ll = first[rest[0]].item() + sum(lp[t - 1, rest[t]].item() for t in range(1, len(rest)))
                for key, v in (("acc", ll), ("acc_norm", ll / len(cont.encode("utf-8")))):
                    if best[key] is None or v > best[key][0]:
                        best[key] = (v, j)
        for key in hits:
            hits[key] += int("ABCD"[best[key][1]] == r[5])
    n = len(rows)
    out = {}
    for key, h in hits.items():
        a = h / n
        out[key] = a
        out[key + "_stderr"] = math.sqrt(a * (1 - a) / (n - 1))
    return dict(out, items=n)


def greedy(model, tok, prompt, n):
    """Greedy continuation, a full forward pass per token (torch.argmax: the lowest id on ties)."""
    import torch
    ids = tok.encode(prompt).ids
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids + out])).logits[0, -1]
            out.append(int(torch.argmax(logits).item()))
    return {"prompt": prompt, "prompt_ids": ids, "generated_ids": out,
            "generated_text": tok.decode(out, skip_special_tokens=False)}


def evaluate(tok, held_text, test_rows):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(OUT, dtype=torch.float32, attn_implementation="eager").eval()
    held_ids = tok.encode(held_text).ids
    sl = held_text.encode("utf-8")[:SLICE_BYTES].decode("utf-8")
    sl_ids = tok.encode(sl).ids
    # transformers reads the stored tokenizer as `tokenizers` does, adding nothing.
    assert AutoTokenizer.from_pretrained(OUT)(sl)["input_ids"] == sl_ids
    with open(os.path.join(OUT, "training_state.json")) as f:
        state = json.load(f)
    result = {
        "model": "tests/data/reference_model",
        "tokenizer": "tests/data/reference_model/tokenizer.json",
        "training": state,
        "parameters": sum(p.numel() for p in model.parameters()),
        "heldout": dict(ppl_llama_cpp(model, held_ids, CTX), file="heldout.txt",
                        text_bytes=len(held_text.encode("utf-8")), tokens=len(held_ids)),
        "heldout_slice": {"file": "heldout.txt", "text_bytes": len(sl.encode("utf-8")), "tokens": len(sl_ids),
                          "results": [ppl_llama_cpp(model, sl_ids, CTX), ppl_sliding(model, sl_ids, CTX, SLIDING_STRIDE)]},
        "greedy": greedy(model, tok, "In the beginning", GREEDY_TOKENS),
        "mc_test": {
            "csv": "mc/test/kjv_continuation_test.csv",
            "chance": 0.25,
            "continuation": mc_scores(model, tok, test_rows, "continuation"),
            "mmlu_answer_prompt": mc_scores(model, tok, test_rows, "mmlu"),
        },
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
    }
    with open(os.path.join(OUT, "reference_eval.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1), flush=True)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=450)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint-every", type=int, default=25)
    ap.add_argument("--stop-at", type=int, default=0,
                    help="stop after this many steps of the --steps schedule (reproduces an early-stopped run)")
    ap.add_argument("--eval-only", action="store_true", help="evaluate the stored model, write reference_eval.json")
    args = ap.parse_args()
    import torch
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    torch.set_num_threads(args.threads)
    random.seed(SEED)

    chapters = read_chapters()
    held_idx = [i for i in range(len(chapters)) if i % HELD_OUT_EVERY == HELD_OUT_AT]
    train_idx = [i for i in range(len(chapters)) if i % HELD_OUT_EVERY != HELD_OUT_AT]
    held_text = "\n".join(chapter_text(chapters[i]) for i in held_idx)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "heldout.txt"), "w") as f:
        f.write(held_text)
    dev, test = build_mc(chapters, held_idx)
    write_csv(os.path.join(OUT, "mc", "dev", "kjv_continuation_dev.csv"), dev)
    write_csv(os.path.join(OUT, "mc", "test", "kjv_continuation_test.csv"), test)

    if args.eval_only:
        tok = Tokenizer.from_file(os.path.join(OUT, "tokenizer.json"))
        portable_tokenizer_config(OUT)
    else:
        tok = train_tokenizer([chapter_text(chapters[i]) for i in train_idx])
        tok_fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS,
                                           model_max_length=CTX)
        train(args, chapters, train_idx, tok, tok_fast)
    evaluate(tok, held_text, test)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Expected log-likelihoods for mc_accuracy's scoring, from transformers.

Writes tests/data/evals/mc_loglik_expected.json, which tests/engine/measure/mc_accuracy_test.cc
holds gridbench's EngineScoringModel to:

- reference_model: the first 6 questions of tests/data/reference_model/mc/test (subject
  kjv_continuation), three contexts each, all within the model's 256 positions,
  built here independently of the C++ (the test also checks that gridbench writes the
  same strings): the 0-shot MMLU prompt with " A".." D" (letter scoring), the choice-text MMLU
  context ("Q\\nAnswer:") with the first dev question as its one shot, and the 0-shot
  continuation context (the question itself)
  with " " + each choice. Tokens as lm-evaluation-harness takes them: the context's
  ids = encode(context), a continuation's = encode(context + continuation)[len(ctx):].
- golden_llama_gqa: token ids only (the golden models have no tokenizer): a seeded
  context of 12 ids and continuations of 1, 3 and 5 ids.

Each log-likelihood is the sum over the continuation's tokens of log_softmax (float64)
of one full forward pass over context + continuation (no KV cache: independent of the
engine's prefix reuse). Run: /work/venv-ref/bin/python tools/gen_mc_loglik_expected.py
"""
import csv
import json
import os

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "tests", "data", "reference_model")
OUT = os.path.join(ROOT, "tests", "data", "evals", "mc_loglik_expected.json")
SUBJECT = "kjv_continuation"
LETTERS = "ABCD"


def read_csv(path):
    with open(path, newline="") as f:
        return [r for r in csv.reader(f) if r]


def example(r, include_answer):
    s = r[0]
    for j in range(4):
        s += "\n%s. %s" % (LETTERS[j], r[1 + j])
    s += "\nAnswer:"
    if include_answer:
        s += " %s\n\n" % r[5]
    return s


def header(subject):
    return "The following are multiple choice questions (with answers) about%s.\n\n" % "".join(
        " " + w for w in subject.split("_"))


def loglik(model, ctx_ids, cont_ids):
    ids = torch.tensor([ctx_ids + cont_ids])
    with torch.no_grad():
        logits = model(ids).logits[0].double()
    lp = torch.log_softmax(logits, dim=-1)
    return sum(lp[len(ctx_ids) - 1 + t, c].item() for t, c in enumerate(cont_ids))


def load(path):
    m = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager")
    return m.eval()


def main():
    torch.set_num_threads(1)
    tok = Tokenizer.from_file(os.path.join(REF, "tokenizer.json"))
    model = load(REF)
    dev = read_csv(os.path.join(REF, "mc", "dev", "kjv_continuation_dev.csv"))
    test = read_csv(os.path.join(REF, "mc", "test", "kjv_continuation_test.csv"))
    shot = dev[0]
    cases = []
    for qi, r in enumerate(test[:6]):
        choices = [" " + c for c in r[1:5]]
        forms = [
            ("letter", header(SUBJECT) + example(r, False), [" A", " B", " C", " D"]),
            ("choice_text_mmlu", header(SUBJECT) + shot[0] + "\nAnswer: " + shot[1 + LETTERS.index(shot[5])] + "\n\n"
             + r[0] + "\nAnswer:", choices),
            ("choice_text_continuation", r[0], choices),
        ]
        for form, context, conts in forms:
            ctx = tok.encode(context).ids
            out = []
            for c in conts:
                whole = tok.encode(context + c).ids
                cont = whole[len(ctx):]
                assert len(ctx) + len(cont) <= 256, (form, qi, len(ctx) + len(cont))
                out.append({"text": c, "ids": cont, "loglik": loglik(model, ctx, cont)})
            cases.append({"question": qi, "form": form, "context": context, "context_tokens": len(ctx),
                          "continuations": out})
    golden = os.path.join(ROOT, "tests", "data", "golden", "llama_gqa")
    gm = load(golden)
    g = torch.Generator().manual_seed(4321)
    ctx = torch.randint(0, 128, (12,), generator=g).tolist()
    conts = [torch.randint(0, 128, (n,), generator=g).tolist() for n in (1, 3, 5)]
    doc = {
        "generator": "tools/gen_mc_loglik_expected.py",
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "reference_model": {"subject": SUBJECT, "cases": cases},
        "golden_llama_gqa": {"context": ctx, "continuations": [{"ids": c, "loglik": loglik(gm, ctx, c)} for c in conts]},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", OUT, len(cases), "reference cases")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes tests/eval/data/minilamp_exact/: a few MiniLaMP test records (profiles
dropped), predictions that exercise every rule of tools/minilamp/score.py, and
score.py's own per-prediction fact recall and constraint scores, which
tests/eval/exact_test.cpp checks the C++ implementation against.

    python3 tests/eval/gen_exact_fixture.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "minilamp"))
import score  # noqa: E402

OUT = os.path.join(HERE, "data", "minilamp_exact")


def first(path, n):
    with open(path) as f:
        return [json.loads(next(f)) for _ in range(n)]


def main():
    recs = first(os.path.join(ROOT, "data", "minilamp", "review.jsonl"), 4) + \
        first(os.path.join(ROOT, "data", "minilamp", "writing.jsonl"), 4)
    for r in recs:
        r.pop("profile", None)
    preds = []
    for i, r in enumerate(recs):
        ref = r["output"]
        other = recs[(i + 1) % len(recs)]["output"]
        cases = [ref, other, "", ref.lower(), ref.replace(".", "!")]
        f0 = r["facts"][0]
        cases.append(ref.replace(f0, f0 + "seed"))          # a fact inside a longer word is no hit
        cases.append(ref.replace(f0, "(" + f0 + ")"))       # punctuation around a fact is fine
        c = r["constraints"]
        if "verdicts" in c:
            attr, v = c["verdicts"][0]
            flip = "poor" if v == "great" else "great"
            cases.append(ref + f" The {attr} was {flip}.")          # contradiction
            cases.append(ref.replace(f"The {attr} was {v}.", ""))  # one verdict missing
            cases.append(ref.replace("I liked", "I loved"))          # counts sentence broken
        else:
            cases.append(ref.replace("We missed", "We skipped"))
            cases.append(ref.replace(" and ", ", "))
            cases.append(" ".join(reversed(ref.split(". "))))
        for j, text in enumerate(cases):
            fr, _ = score.fact_scores(r, text)
            ci, cs = score.constraint_scores(r, text)
            preds.append({"record": r["id"], "case": j, "prediction": text,
                          "fact_recall": fr, "cons_items": ci, "cons_strict": cs})
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "records.jsonl"), "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(OUT, "expected.jsonl"), "w") as f:
        for p in preds:
            f.write(json.dumps(p) + "\n")
    print(f"{len(recs)} records, {len(preds)} predictions -> {OUT}")


if __name__ == "__main__":
    main()

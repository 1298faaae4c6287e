#!/usr/bin/env python3
"""Runs MiniLaMP records through specsteer from Python and scores them with the
project's own ROUGE (`specsteer rouge`, exactly as Google's rouge_score).

    python3 examples/minilamp_rouge.py [--records 5] [--methods specsteer,slm+,llm]
        [--cloud HOST:PORT] [--bin build/specsteer]

Each record's profile is imported into a private profile store (the device's),
the record's input is x, and the user's BM25 entries personalize SLM+.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))  # run from a checkout without installing
import specsteer  # noqa: E402


def user_of(rec):
    """The profile user of a LongLaMP-layout record (review: reviewerId, writing: author)."""
    for key in ("reviewerId", "author", "user_id", "user"):
        if key in rec:
            return str(rec[key])
    raise KeyError(f"record {rec.get('id')} names no user")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "data/minilamp/review.jsonl"))
    ap.add_argument("--records", type=int, default=5)
    ap.add_argument("--methods", default="specsteer,slm+,llm")
    ap.add_argument("--slm", default=os.path.join(ROOT, "models/minilamp/specialist.gguf"))
    ap.add_argument("--llm", default=os.path.join(ROOT, "models/minilamp/generalist.gguf"))
    ap.add_argument("--cloud", help="HOST:PORT of `specsteer cloud serve` (default: the LLM in this process)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/specsteer"))
    ap.add_argument("-n", "--max-tokens", type=int, default=96)
    a = ap.parse_args()

    records = [json.loads(line) for line in open(a.data)][: a.records]
    task = records[0]["task"]
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "profiles.db")
        subprocess.run([a.bin, "profile", "import", "--db", db, "--task", task, "--data", a.data],
                       check=True, stdout=subprocess.DEVNULL)
        edge = (specsteer.Edge(slm=a.slm, cloud=a.cloud, profile_db=db) if a.cloud
                else specsteer.Edge(slm=a.slm, llm=a.llm, profile_db=db))
        pairs = {m: [] for m in a.methods.split(",")}
        for rec in records:
            for m in pairs:
                r = edge.generate(rec["input"], user=user_of(rec), task=task, method=m, max_tokens=a.max_tokens)
                pairs[m].append({"reference": rec["output"], "prediction": r.text})
        print(f"{len(records)} {task} records, ROUGE-L F1 x100 (`specsteer rouge`):")
        for m, rows in pairs.items():
            path = os.path.join(tmp, "pairs.jsonl")
            with open(path, "w") as f:
                f.writelines(json.dumps(p) + "\n" for p in rows)
            out = subprocess.run([a.bin, "rouge", "--pairs", path], check=True, capture_output=True, text=True)
            scores = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            rl = [s["rougeL"]["fmeasure"] for s in scores if "rougeL" in s]
            print(f"  {m:10s} {100 * sum(rl) / max(1, len(rl)):.1f}")
        edge.close()


if __name__ == "__main__":
    main()

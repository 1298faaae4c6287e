#!/usr/bin/python3
"""Run the shipped MiniLaMP pair through the C++ engine on the test split and score it.

  run_eval.py --cli build/specsteer [--limit 20] [--methods llm,slm,slm+,specsteer] [--lambda 0.5]
              [--out tools/minilamp/work/results.jsonl]

Each generation is one `specsteer generate --json` call with the record's profile retrieved
from a profile store (`specsteer profile import` of the test files; SQLite FTS5 BM25, top-4),
i.e. exactly the prompts the engine builds.  Rows {"id","method","lambda","text",counters}
are appended to --out (resumable: finished (id, method, lambda) rows are skipped), then
score.py's table is printed with the mean acceptance rate and generation speed per method.
"""
import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import score  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--llm", default=os.path.join(ROOT, "models/minilamp/generalist.gguf"))
    ap.add_argument("--slm", default=os.path.join(ROOT, "models/minilamp/specialist.gguf"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data/minilamp"))
    ap.add_argument("--limit", type=int, default=20, help="records per task")
    ap.add_argument("--methods", default="llm,slm,slm+,specsteer")
    ap.add_argument("--lambda", dest="lam", type=float, default=None)
    ap.add_argument("-n", type=int, default=110)
    ap.add_argument("--out", default=os.path.join(HERE, "work", "results.jsonl"))
    ap.add_argument("--db", default=os.path.join(HERE, "work", "eval.db"))
    a = ap.parse_args()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    if not os.path.exists(a.db):
        for task in ("review", "writing"):
            subprocess.run([a.cli, "profile", "import", "--db", a.db, "--task", task,
                            "--data", os.path.join(a.data, f"{task}.jsonl")], check=True, capture_output=True)
    done = set()
    if os.path.exists(a.out):
        with open(a.out) as f:
            for line in f:
                r = json.loads(line)
                done.add((r["id"], r["method"], r["lambda"]))
    methods = a.methods.split(",")
    with open(a.out, "a") as out:
        for task in ("review", "writing"):
            with open(os.path.join(a.data, f"{task}.jsonl")) as f:
                recs = [json.loads(line) for _, line in zip(range(a.limit), f)]
            user_key = {"review": "reviewerId", "writing": "author"}[task]
            for rec in recs:
                for m in methods:
                    lam = a.lam if m == "specsteer" else None
                    if (rec["id"], m, lam) in done:
                        continue
                    cmd = [a.cli, "generate", "--llm", a.llm, "--slm", a.slm, "--method", m, "--profile-db", a.db,
                           "--user", rec[user_key], "--task", task, "--input", rec["input"], "--json",
                           "-n", str(a.n), "-t", "1"]
                    if lam is not None:
                        cmd += ["--lambda", str(lam)]
                    j = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                    row = {"id": rec["id"], "method": m, "lambda": lam, "text": j["text"],
                           "acceptance_rate": j.get("acceptance_rate"), "n_generated": j["n_generated"],
                           "t_total_s": j["t_total_s"], "gen_tok_per_s": j["gen_tok_per_s"]}
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    print(f"{rec['id']} {m}: {j['text'][:100]!r}", flush=True)
    rows = [json.loads(line) for line in open(a.out)]
    recs = score.load_records(a.data)
    groups, _ = score.score_rows(recs, rows)
    speed = defaultdict(list)
    acc = defaultdict(list)
    for r in rows:
        key = r["method"] + (f" lambda={r['lambda']}" if r["lambda"] is not None else "")
        speed[key].append((r["n_generated"], r["t_total_s"]))
        if r.get("acceptance_rate") is not None:
            acc[key].append(r["acceptance_rate"])
    cols = ["rouge1", "rougeL", "fact_recall", "fact_strict", "cons_items", "cons_strict"]
    print(f"{'method':<22} {'n':>4} " + " ".join(f"{c:>11}" for c in cols) + f" {'accept':>7} {'tok/s':>7}")
    for (method, setting), grp in sorted(groups.items()):
        name = f"{method} {setting}".strip()
        n = len(grp[("all", "rougeL")])
        cells = " ".join(f"{100 * sum(grp[('all', c)]) / n:>11.1f}" for c in cols)
        ng = sum(x for x, _ in speed[name])
        ts = sum(t for _, t in speed[name])
        ac = f"{sum(acc[name]) / len(acc[name]):.3f}" if acc[name] else "-"
        print(f"{name:<22} {n:>4} {cells} {ac:>7} {ng / max(ts, 1e-9):>7.0f}")


if __name__ == "__main__":
    main()

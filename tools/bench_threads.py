"""A/B of two specsteer binaries on the bundled MiniLaMP pair: decode time of
llm and specsteer at -t 1 and -t 2, interleaved rounds, median per record.
  python3 tools/bench_threads.py OLD_BIN NEW_BIN [ROUNDS]   (run from the repository root, machine idle)"""
import json, os, subprocess, statistics, sys
if len(sys.argv) < 3:
    sys.exit(__doc__)
bins = {"old": sys.argv[1], "new": sys.argv[2]}
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
recs = [json.loads(l) for l in open(os.path.join(root, "data/minilamp/review.jsonl"))][:3]
M = os.path.join(root, "models/minilamp/")
res = {}
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
for rnd in range(ROUNDS):
    for name, b in bins.items():
        for t in (1, 2):
            for method in ("llm", "specsteer"):
                for i, r in enumerate(recs):
                    prof = " ".join(p.get("reviewText", "") for p in r.get("profile", [])[:4])
                    out = subprocess.run([b, "generate", "--slm", M + "specialist.gguf", "--llm", M + "generalist.gguf",
                                          "--method", method, "--input", r["input"], "--private-context", prof,
                                          "-n", "96", "-t", str(t), "--json"], capture_output=True, text=True, check=True)
                    j = json.loads(out.stdout)
                    res.setdefault((name, t, method, i), []).append((j["t_total_s"] - j["t_prefill_s"], j["n_generated"]))
for name in bins:
    for t in (1, 2):
        line = []
        for method in ("llm", "specsteer"):
            secs = sum(statistics.median(s for s, _ in res[(name, t, method, i)]) for i in range(len(recs)))
            toks = sum(res[(name, t, method, i)][0][1] for i in range(len(recs)))
            line.append(f"{method} {toks/secs:,.0f} tok/s")
        llm = sum(statistics.median(s for s, _ in res[(name, t, 'llm', i)]) for i in range(len(recs)))
        ss = sum(statistics.median(s for s, _ in res[(name, t, 'specsteer', i)]) for i in range(len(recs)))
        tl = sum(res[(name, t, 'llm', i)][0][1] for i in range(len(recs))); ts = sum(res[(name, t, 'specsteer', i)][0][1] for i in range(len(recs)))
        print(f"{name} -t {t}: " + ", ".join(line) + f"; specsteer/llm speed {(ts/ss)/(tl/llm):.2f}x")

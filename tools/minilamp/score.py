#!/usr/bin/env python3
"""Exact checks for MiniLaMP generations: private-fact accuracy and constraint accuracy.

Usage: python3 tools/minilamp/score.py --data data/minilamp RESULTS.jsonl [...]
       python3 tools/minilamp/score.py --data data/minilamp --references   (self-check: 100%)

Also prints ROUGE-1 / ROUGE-L F (x100, rouge_score tokenization, no stemmer).
RESULTS.jsonl lines are either `specsteer eval` rows ({"record", "method",
"setting", "prediction", ...}) or plain {"id", "method", "lambda", "text"}.
Rows are grouped by (method, setting or lambda).  Per group it prints:
  fact_recall   mean fraction of the record's private facts (names, sign-off)
                found verbatim in the text
  fact_strict   share of texts with every fact present and no name of another
                user (any pool name that is not one of this record's facts)
  cons_items    mean fraction of atomic constraints satisfied (review: each
                attribute verdict sentence and the like/dislike counts; writing:
                the made / missed lists with their counts)
  cons_strict   share of texts satisfying every constraint (and stating no
                contradicting verdict)
"""
import argparse
import json
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate as g  # noqa: E402

NAME_POOL = set(g.PET_NAMES) | set(g.FRIEND_NAMES) | set(g.TOWNS) | set(g.PLACES) | set(g.BRANDS)


def join_list(items):
    return g.join_list(items)


def present(text, s):
    return re.search(r"(?<![A-Za-z])" + re.escape(s) + r"(?![A-Za-z])", text) is not None


def fact_scores(rec, text):
    facts = rec["facts"]
    hits = [present(text, f) for f in facts]
    own = set(facts)
    rest = text
    for f in sorted(facts, key=len, reverse=True):  # "Luna" inside the own "Luna Diner" is no wrong name
        rest = rest.replace(f, " ")
    wrong = [n for n in NAME_POOL if n not in own and present(rest, n)]
    return sum(hits) / len(hits), all(hits) and not wrong


def constraint_scores(rec, text):
    c = rec["constraints"]
    checks = []
    if "verdicts" in c:
        for attr, verdict in c["verdicts"]:
            other = "poor" if verdict == "great" else "great"
            checks.append(f"The {attr} was {verdict}." in text and f"The {attr} was {other}." not in text)
        checks.append(f"I liked {g.NUMBERS[c['liked']]} and disliked {g.NUMBERS[c['disliked']]}." in text)
    else:
        for key, lead in (("made", "We made it to"), ("missed", "We missed")):
            items = c[key]
            want = f"{lead} {g.NUMBERS[len(items)]}" + (f": {join_list(items)}." if items else ".")
            checks.append(want in text)
    return sum(checks) / len(checks), all(checks)


def rouge_tokens(text):
    # rouge_score's default tokenizer without stemming: lowercase, non-alphanumerics are separators
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def rouge_1_l(pred, ref):
    """(ROUGE-1 F, ROUGE-L F), without stemming."""
    p, r = rouge_tokens(pred), rouge_tokens(ref)
    if not p or not r:
        return 0.0, 0.0
    from collections import Counter
    overlap = sum((Counter(p) & Counter(r)).values())
    f1 = 0.0 if overlap == 0 else 2 * overlap / (len(p) + len(r))
    prev = [0] * (len(r) + 1)
    for a in p:
        cur = [0]
        for j, b in enumerate(r):
            cur.append(prev[j] + 1 if a == b else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    fl = 0.0 if lcs == 0 else 2 * lcs / (len(p) + len(r))
    return f1, fl


def load_records(data_dir):
    recs = {}
    for name in sorted(os.listdir(data_dir)):
        if name.endswith(".jsonl") and name != "demo.jsonl":
            with open(os.path.join(data_dir, name)) as f:
                for line in f:
                    r = json.loads(line)
                    recs[r["id"]] = r
    return recs


def score_rows(recs, rows):
    groups = defaultdict(lambda: defaultdict(list))
    missing = 0
    for row in rows:
        rid = row.get("record", row.get("id"))
        text = row.get("prediction", row.get("text"))
        if rid not in recs or text is None:
            missing += 1
            continue
        setting = row.get("setting") or (f"lambda={row['lambda']}" if row.get("lambda") is not None else "")
        key = (row.get("method", "?"), setting)
        rec = recs[rid]
        fr, fs = fact_scores(rec, text)
        ci, cs = constraint_scores(rec, text)
        task = rid.split("-", 1)[0]
        r1, rl = rouge_1_l(text, rec["output"])
        for k in ("all", task):
            grp = groups[key]
            grp[(k, "rouge1")].append(r1)
            grp[(k, "rougeL")].append(rl)
            grp[(k, "fact_recall")].append(fr)
            grp[(k, "fact_strict")].append(fs)
            grp[(k, "cons_items")].append(ci)
            grp[(k, "cons_strict")].append(cs)
    return groups, missing


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "data", "minilamp"))
    ap.add_argument("--references", action="store_true", help="score the reference outputs themselves")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("results", nargs="*")
    a = ap.parse_args()
    recs = load_records(a.data)
    rows = []
    if a.references:
        rows = [{"id": r["id"], "method": "reference", "text": r["output"]} for r in recs.values()]
    for path in a.results:
        with open(path) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    groups, missing = score_rows(recs, rows)
    out = {}
    for (method, setting), grp in sorted(groups.items()):
        out[f"{method} {setting}".strip()] = {f"{k}/{m}": round(100 * sum(v) / len(v), 1) for (k, m), v in grp.items()} \
            | {"n": len(grp[("all", "fact_recall")])}
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        cols = ["rouge1", "rougeL", "fact_recall", "fact_strict", "cons_items", "cons_strict"]
        print(f"{'method':<24} {'n':>5} " + " ".join(f"{c:>12}" for c in cols) + "   (all; review | writing)")
        for name, v in out.items():
            cells = " ".join(f"{v[f'all/{c}']:>12.1f}" for c in cols)
            per = " ".join(f"{v.get(f'review/{c}', float('nan')):.0f}|{v.get(f'writing/{c}', float('nan')):.0f}"
                           for c in cols)
            print(f"{name:<24} {v['n']:>5} {cells}   {per}")
    if missing:
        print(f"warning: {missing} rows had no matching record id or no text", file=sys.stderr)


if __name__ == "__main__":
    main()

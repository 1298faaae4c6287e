#!/usr/bin/python3
"""Check the C++ engine against the PyTorch reference on MiniLaMP prompts.

  verify_engine.py --cli build/specsteer -m models/minilamp/generalist.gguf [--records N] [-n 64]

For the first N test records of each task and both prompt kinds (x, personalized) it
compares `specsteer tokenize --parse-special` with the Python tokenizer (ChatML-wrapped
prompt) and `specsteer run --json --temp 0` with the greedy continuation of the same
GGUF file in PyTorch.  Prints one line per prompt and a summary; exit status 1 on any
tokenizer mismatch.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402

import generate  # noqa: E402
import reference  # noqa: E402
import train  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "data", "minilamp"))
    ap.add_argument("--records", type=int, default=3)
    ap.add_argument("-n", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(1)
    m, tok, kv = reference.load_model(a.model)
    eos = kv["tokenizer.ggml.eos_token_id"]
    tmpl = generate.load_templates()
    tok_ok = gen_same = total = 0
    prefix_lens = []
    for task in ("review", "writing"):
        with open(os.path.join(a.data, f"{task}.jsonl")) as f:
            recs = [json.loads(line) for _, line in zip(range(a.records), f)]
        for rec in recs:
            for kind in ("x", "personalized"):
                prompt = rec["input"] if kind == "x" else train.personalized_prompt(rec, task, tmpl)
                wrapped = train.chat_prefix(prompt)
                py_ids = tok.encode(wrapped)
                cpp_ids = json.loads(subprocess.run([a.cli, "tokenize", "-m", a.model, "-p", wrapped, "--parse-special"],
                                                    check=True, capture_output=True, text=True).stdout)
                same_tok = cpp_ids == py_ids
                ref = m.greedy(py_ids, a.n, eos)
                run = json.loads(subprocess.run([a.cli, "run", "-m", a.model, "-p", prompt, "--json", "--temp", "0",
                                                 "-n", str(a.n), "-t", "1"],
                                                check=True, capture_output=True, text=True).stdout)
                got = run["tokens"]
                k = 0
                while k < min(len(got), len(ref)) and got[k] == ref[k]:
                    k += 1
                total += 1
                tok_ok += same_tok
                gen_same += got == ref
                prefix_lens.append(k)
                print(f"{rec['id']} {kind:<12} prompt {len(py_ids):>4} tok, tokenizer {'same' if same_tok else 'DIFF'}, "
                      f"greedy {'same' if got == ref else f'diverges at {k}'} ({len(ref)} ref / {len(got)} engine tokens)",
                      flush=True)
                if not same_tok:
                    print("  python:", py_ids[:40], "\n  engine:", cpp_ids[:40])
    print(f"tokenizer identical on {tok_ok}/{total} prompts; greedy continuation identical on {gen_same}/{total}; "
          f"mean common prefix {sum(prefix_lens) / len(prefix_lens):.1f} tokens")
    sys.exit(0 if tok_ok == total else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Train the MiniLaMP Generalist / Specialist pair (Qwen3 architecture, CPU, PyTorch).

Steps (all state lives in tools/minilamp/work/, git-ignored):
  train.py prepare                 generate the train split, train the BPE tokenizer,
                                   build tokenized training/validation documents
  train.py train --model NAME      train (resumes from work/NAME.ckpt if present) for
                                   --minutes of wall clock, then export GGUF files
  train.py export --model NAME     export work/NAME.ckpt to work/NAME-{f32,q8_0}.gguf

Training documents are laid out exactly like inference prompts:
  <|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n{output}<|im_end|>
with the loss on {output}<|im_end|> only.  {prompt} is the personalized prompt
(top-4 BM25 profile entries, data/templates.json) for --personalized-frac of the
documents and the bare input x otherwise.
"""
import argparse
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate  # noqa: E402
from bpe import Tokenizer, train_bpe  # noqa: E402
from model import CONFIGS, Config, Qwen3  # noqa: E402

WORK = os.path.join(HERE, "work")
TASKS = ("review", "writing")
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
                 "{{ '<|im_start|>assistant\\n' }}{% endif %}")


# ---------------------------------------------------------------- prompts
def bm25_tokens(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def bm25_top(query, docs, k=4, k1=1.2, b=0.75):
    """Indices of the k best docs (list of token lists) for the query, best first."""
    N = len(docs)
    avgdl = sum(len(d) for d in docs) / max(N, 1)
    df = Counter()
    for d in docs:
        df.update(set(d))
    q = set(query)
    scores = []
    for i, d in enumerate(docs):
        tf = Counter(d)
        s = 0.0
        for t in q:
            if t in tf:
                idf = math.log(1 + (N - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(d) / avgdl))
        scores.append((-s, i))
    scores.sort()
    return [i for _, i in scores[:k]]


def personalized_prompt(rec, task, tmpl, k=4):
    t = tmpl[task]
    prof = rec["profile"]
    docs = [bm25_tokens(" ".join(str(e[f]) for f in t["search_fields"])) for e in prof]
    top = bm25_top(bm25_tokens(rec["input"]), docs, k)
    entries = [generate.fill(t["entry_template"], {f: prof[i][f] for f in t["entry_fields"] if f in prof[i]})
               for i in top]
    return t["header"] + t["entry_separator"].join(entries) + t["footer"] + rec["input"]


def chat_prefix(prompt):
    return "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n"


def encode_doc(tok, prompt, output):
    """(ids, start of the loss span).  The output is encoded on its own, as the model generates it."""
    p = tok.encode(chat_prefix(prompt))
    o = tok.encode(output, parse_special=False) + [tok.special_ids["<|im_end|>"]]
    return p + o, len(p)


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


# ---------------------------------------------------------------- prepare
def cmd_prepare(a):
    os.makedirs(WORK, exist_ok=True)
    tmpl = generate.load_templates()
    train_dir = os.path.join(WORK, "train")
    if not os.path.exists(os.path.join(train_dir, "writing.jsonl")):
        data = generate.generate(a.seed, a.users, "train", a.per_user)
        os.makedirs(train_dir, exist_ok=True)
        for task in TASKS:
            with open(os.path.join(train_dir, f"{task}.jsonl"), "w") as f:
                for r in data[task]:
                    f.write(json.dumps(r) + "\n")
    train = {t: load_jsonl(os.path.join(train_dir, f"{t}.jsonl")) for t in TASKS}
    val = generate.generate(a.val_seed, a.val_users, "test", 1)
    rng = random.Random(a.seed)

    # documents as text first (prompt, output, personalized?)
    def docs_of(recs, task, frac, rng):
        out = []
        for r in recs:
            pers = rng.random() < frac
            out.append((personalized_prompt(r, task, tmpl) if pers else r["input"], r["output"], pers))
        return out

    t0 = time.time()
    train_docs = [d for t in TASKS for d in docs_of(train[t], t, a.personalized_frac, rng)]
    val_docs = [(t, d) for t in TASKS for d in docs_of(val[t], t, 0.0, rng) + docs_of(val[t], t, 1.0, rng)]
    print(f"built {len(train_docs)} train / {len(val_docs)} val docs in {time.time() - t0:.0f}s", flush=True)

    tok_path = os.path.join(WORK, "tokenizer.json")
    if not os.path.exists(tok_path):
        t0 = time.time()
        sample = [chat_prefix(p) + o + "<|im_end|>" for p, o, _ in rng.sample(train_docs, a.bpe_docs)]
        merges = train_bpe(sample, a.vocab - 256 - 3)
        Tokenizer(merges).save(tok_path)
        print(f"trained BPE ({len(merges)} merges) in {time.time() - t0:.0f}s", flush=True)
    tok = Tokenizer.load(tok_path)

    t0 = time.time()

    def pack(docs):
        ids, starts, offs, pers = [], [], [0], []
        for p, o, is_p in docs:
            d, s = encode_doc(tok, p, o)
            ids.extend(d)
            starts.append(s)
            offs.append(offs[-1] + len(d))
            pers.append(is_p)
        return {"ids": torch.tensor(ids, dtype=torch.int16), "starts": torch.tensor(starts),
                "offs": torch.tensor(offs), "pers": torch.tensor(pers)}

    tr = pack(train_docs)
    va = pack([d for _, d in val_docs])
    va["task"] = [t for t, _ in val_docs]
    torch.save({"train": tr, "val": va, "n_vocab": tok.n_vocab}, os.path.join(WORK, "docs.pt"))
    # x-only variant of the same training records (the cloud-side Generalist only ever sees x)
    tr_x = pack([(r["input"], r["output"], False) for t in TASKS for r in train[t]])
    torch.save({"train": tr_x, "val": va, "n_vocab": tok.n_vocab}, os.path.join(WORK, "docs_x.pt"))
    # the Generalist's mix: every record's x form plus, for a share of the records, its personalized form as
    # well, so that `llm+` (the Generalist reading the profile) is a meaningful reference without taking
    # training away from the reasoning half
    g_rng = random.Random(a.seed + 1)
    g_docs = [(r["input"], r["output"], False) for t in TASKS for r in train[t]]
    g_docs += [(personalized_prompt(r, t, tmpl), r["output"], True) for t in TASKS for r in train[t]
               if g_rng.random() < a.gen_personalized_frac]
    tr_g = pack(g_docs)
    torch.save({"train": tr_g, "val": va, "n_vocab": tok.n_vocab}, os.path.join(WORK, "docs_g.pt"))
    lens = (tr["offs"][1:] - tr["offs"][:-1]).float()
    out_lens = (tr["offs"][1:] - tr["offs"][:-1] - tr["starts"]).float()
    print(f"tokenized in {time.time() - t0:.0f}s: {len(lens)} docs, {int(lens.sum())} tokens, "
          f"mean len {lens.mean():.0f} (personalized {lens[tr['pers']].mean():.0f}, x-only "
          f"{lens[~tr['pers']].mean():.0f}), max {int(lens.max())}, mean output {out_lens.mean():.1f}", flush=True)


# ---------------------------------------------------------------- train
def batches(data, epoch, seed, max_tokens):
    """Length-bucketed batches of doc indices, deterministic per (seed, epoch)."""
    offs = data["offs"]
    n = len(offs) - 1
    g = random.Random(f"{seed}-{epoch}")
    order = list(range(n))
    g.shuffle(order)
    lens = [int(offs[i + 1] - offs[i]) for i in range(n)]
    out = []
    for c in range(0, n, 256):
        chunk = sorted(order[c:c + 256], key=lambda i: lens[i])
        cur, mx = [], 0
        for i in chunk:
            m = max(mx, lens[i])
            if cur and m * (len(cur) + 1) > max_tokens:
                out.append(cur)
                cur, m = [], lens[i]
            cur.append(i)
            mx = m
        if cur:
            out.append(cur)
    g.shuffle(out)
    return out


def make_batch(data, idx, pad_id):
    offs, starts, ids = data["offs"], data["starts"], data["ids"]
    L = max(int(offs[i + 1] - offs[i]) for i in idx)
    x = torch.full((len(idx), L), pad_id, dtype=torch.long)
    y = torch.full((len(idx), L), -100, dtype=torch.long)
    for r, i in enumerate(idx):
        d = ids[int(offs[i]):int(offs[i + 1])].long()
        n = len(d)
        x[r, :n] = d
        s = int(starts[i])
        # position t predicts token t+1; loss on output tokens (indices s..n-1)
        y[r, s - 1:n - 1] = d[s:n]
    return x, y


@torch.no_grad()
def evaluate(model, val, pad_id, max_tokens=8192):
    """Mean output-span loss on the validation docs, split by task and prompt kind."""
    model.eval()
    sums = Counter()
    cnts = Counter()
    n = len(val["offs"]) - 1
    order = sorted(range(n), key=lambda i: int(val["offs"][i + 1] - val["offs"][i]))
    cur = []
    groups = []
    for i in order:
        L = int(val["offs"][i + 1] - val["offs"][i])
        if cur and L * (len(cur) + 1) > max_tokens:
            groups.append(cur)
            cur = []
        cur.append(i)
    if cur:
        groups.append(cur)
    for g in groups:
        x, y = make_batch(val, g, pad_id)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        loss = loss.view(y.shape)
        for r, i in enumerate(g):
            key = f"{val['task'][i]}/{'pers' if bool(val['pers'][i]) else 'x'}"
            m = y[r] != -100
            sums[key] += float(loss[r][m].sum())
            cnts[key] += int(m.sum())
    model.train()
    res = {k: sums[k] / cnts[k] for k in sorted(sums)}
    res["all"] = sum(sums.values()) / sum(cnts.values())
    return res


def subsample_val(val, per_group):
    """The first per_group docs of each (task, prompt kind): evaluation is costly on a loaded CPU."""
    seen = Counter()
    keep = []
    for i in range(len(val["offs"]) - 1):
        key = (val["task"][i], bool(val["pers"][i]))
        if seen[key] < per_group:
            seen[key] += 1
            keep.append(i)
    ids, starts, offs, pers, task = [], [], [0], [], []
    for i in keep:
        d = val["ids"][int(val["offs"][i]):int(val["offs"][i + 1])]
        ids.append(d)
        starts.append(int(val["starts"][i]))
        offs.append(offs[-1] + len(d))
        pers.append(bool(val["pers"][i]))
        task.append(val["task"][i])
    return {"ids": torch.cat(ids), "starts": torch.tensor(starts), "offs": torch.tensor(offs),
            "pers": torch.tensor(pers), "task": task}


def cmd_train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    blob = torch.load(os.path.join(WORK, a.docs))
    tr, va = blob["train"], subsample_val(blob["val"], a.val_per_group)
    cfg = Config(n_vocab=blob["n_vocab"], **CONFIGS[a.model])
    model = Qwen3(cfg)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    run = a.run or a.model
    ckpt_path = os.path.join(WORK, f"{run}.ckpt")
    log_path = os.path.join(WORK, f"{run}.log.jsonl")
    st = {"step": 0, "epoch": 0, "pos": 0, "elapsed": 0.0, "tokens": 0, "out_tokens": 0}
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        st = ck["state"]
        print(f"resumed {run} at step {st['step']} ({st['elapsed']:.0f}s)", flush=True)
    budget = a.minutes * 60.0
    pad_id = blob["n_vocab"] - 3  # <|endoftext|>
    print(f"{run}: {model.n_params()} params, cfg {cfg.to_dict()}", flush=True)

    def save():
        st["elapsed"] = time.time() - t_start
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": st, "cfg": cfg.to_dict()},
                   ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    def log(rec):
        with open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    t_start = time.time() - st["elapsed"]
    last_ck = last_eval = time.time()
    run_loss, run_n, run_tok, run_cells, run_t = 0.0, 0, 0, 0, time.time()
    bl = batches(tr, st["epoch"], a.seed, a.batch_tokens)
    model.train()
    while True:
        st["elapsed"] = time.time() - t_start
        if st["elapsed"] >= budget:
            break
        if st["pos"] >= len(bl):
            st["epoch"] += 1
            st["pos"] = 0
            bl = batches(tr, st["epoch"], a.seed, a.batch_tokens)
        idx = bl[st["pos"]]
        st["pos"] += 1
        frac = st["elapsed"] / budget
        lr = a.lr * min(1.0, (st["step"] + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for grp in opt.param_groups:
            grp["lr"] = lr
        x, y = make_batch(tr, idx, pad_id)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        st["step"] += 1
        ntok = int((x != pad_id).sum())
        st["tokens"] += ntok
        st["out_tokens"] += int((y != -100).sum())
        run_loss += float(loss)
        run_n += 1
        run_tok += ntok
        run_cells += x.numel()
        if st["step"] % a.log_every == 0:
            now = time.time()
            rec = {"step": st["step"], "elapsed": round(now - t_start, 1), "epoch": st["epoch"],
                   "lr": lr, "loss": run_loss / run_n, "tok_per_s": run_tok / (now - run_t),
                   "pad_share": 1 - run_tok / max(run_cells, 1),
                   "tokens": st["tokens"], "out_tokens": st["out_tokens"]}
            print(json.dumps(rec), flush=True)
            log(rec)
            run_loss, run_n, run_tok, run_cells, run_t = 0.0, 0, 0, 0, now
        if time.time() - last_eval > a.eval_every * 60:
            ev = evaluate(model, va, pad_id)
            rec = {"step": st["step"], "elapsed": round(time.time() - t_start, 1), "val": ev}
            print(json.dumps(rec), flush=True)
            log(rec)
            last_eval = time.time()
            run_t = time.time()
        if time.time() - last_ck > 180:
            save()
            last_ck = time.time()
    ev = evaluate(model, va, pad_id)
    rec = {"step": st["step"], "elapsed": round(st["elapsed"], 1), "final": True, "val": ev,
           "val_ppl": {k: math.exp(v) for k, v in ev.items()}, "tokens": st["tokens"],
           "out_tokens": st["out_tokens"], "params": model.n_params()}
    print(json.dumps(rec), flush=True)
    log(rec)
    save()
    export(run)


# ---------------------------------------------------------------- export
def export(name, out_dir=None):
    out_dir = out_dir or WORK
    import gguf_writer as gw
    ck = torch.load(os.path.join(WORK, f"{name}.ckpt"))
    cfg = Config(**ck["cfg"])
    sd = {k: v.float().numpy() for k, v in ck["model"].items()}
    tok = Tokenizer.load(os.path.join(WORK, "tokenizer.json"))
    paths = []
    for qname, qtype, ftype in (("f32", gw.GGML_F32, 0), ("q8_0", gw.GGML_Q8_0, 7)):
        w = gw.GGUFWriter()
        w.add("general.architecture", gw.T_STRING, "qwen3")
        w.add("general.name", gw.T_STRING, f"minilamp-{name}")
        w.add("general.file_type", gw.T_UINT32, ftype)
        w.add("qwen3.context_length", gw.T_UINT32, cfg.ctx)
        w.add("qwen3.embedding_length", gw.T_UINT32, cfg.d_model)
        w.add("qwen3.block_count", gw.T_UINT32, cfg.n_layer)
        w.add("qwen3.feed_forward_length", gw.T_UINT32, cfg.d_ff)
        w.add("qwen3.attention.head_count", gw.T_UINT32, cfg.n_head)
        w.add("qwen3.attention.head_count_kv", gw.T_UINT32, cfg.n_head_kv)
        w.add("qwen3.attention.key_length", gw.T_UINT32, cfg.head_dim)
        w.add("qwen3.attention.value_length", gw.T_UINT32, cfg.head_dim)
        w.add("qwen3.attention.layer_norm_rms_epsilon", gw.T_FLOAT32, cfg.eps)
        w.add("qwen3.rope.freq_base", gw.T_FLOAT32, cfg.rope_base)
        w.add("tokenizer.ggml.model", gw.T_STRING, "gpt2")
        w.add("tokenizer.ggml.pre", gw.T_STRING, "qwen2")
        w.add_array("tokenizer.ggml.tokens", gw.T_STRING, tok.tokens)
        w.add_array("tokenizer.ggml.token_type", gw.T_INT32,
                    [3 if t in tok.special_ids else 1 for t in tok.tokens])
        w.add_array("tokenizer.ggml.merges", gw.T_STRING, [f"{x} {y}" for x, y in tok.merges])
        w.add("tokenizer.ggml.bos_token_id", gw.T_UINT32, tok.special_ids["<|endoftext|>"])
        w.add("tokenizer.ggml.eos_token_id", gw.T_UINT32, tok.special_ids["<|im_end|>"])
        w.add("tokenizer.ggml.eot_token_id", gw.T_UINT32, tok.special_ids["<|im_end|>"])
        w.add("tokenizer.ggml.padding_token_id", gw.T_UINT32, tok.special_ids["<|endoftext|>"])
        w.add("tokenizer.ggml.add_bos_token", gw.T_BOOL, False)
        w.add("tokenizer.chat_template", gw.T_STRING, CHAT_TEMPLATE)

        def mat(tname, arr):
            q = qtype if (arr.ndim == 2 and arr.shape[-1] % 32 == 0) else gw.GGML_F32
            w.add_tensor(tname, arr, q)

        mat("token_embd.weight", sd["embed.weight"])
        for i in range(cfg.n_layer):
            p = f"blocks.{i}."
            b = f"blk.{i}."
            for src, dst in (("attn_norm.weight", "attn_norm"), ("wq.weight", "attn_q"), ("wk.weight", "attn_k"),
                             ("wv.weight", "attn_v"), ("wo.weight", "attn_output"),
                             ("q_norm.weight", "attn_q_norm"), ("k_norm.weight", "attn_k_norm"),
                             ("ffn_norm.weight", "ffn_norm"), ("w_gate.weight", "ffn_gate"),
                             ("w_up.weight", "ffn_up"), ("w_down.weight", "ffn_down")):
                mat(b + dst + ".weight", sd[p + src])
        mat("output_norm.weight", sd["norm.weight"])
        path = os.path.join(out_dir, f"{name}-{qname}.gguf")
        w.write(path)
        paths.append(path)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)
    return paths


def cmd_export(a):
    export(a.model, a.out_dir or WORK)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=None,
                    help="working folder (default tools/minilamp/work); another one holds another tokenizer's "
                         "docs and runs, e.g. a Specialist with its own BPE for the cross-tokenizer pair")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--users", type=int, default=4000)
    p.add_argument("--per-user", type=int, default=8)
    p.add_argument("--val-seed", type=int, default=2)
    p.add_argument("--val-users", type=int, default=100)
    p.add_argument("--personalized-frac", type=float, default=0.75)
    p.add_argument("--vocab", type=int, default=1152)
    p.add_argument("--bpe-docs", type=int, default=3000)
    p.add_argument("--gen-personalized-frac", type=float, default=0.1,
                   help="share of records that also appear personalized in docs_g.pt (the Generalist's mix)")
    p = sub.add_parser("train")
    p.add_argument("--model", choices=list(CONFIGS), required=True)
    p.add_argument("--run", default=None, help="name of the checkpoint/log/export files (default: the model's)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (machine to itself: all)")
    p.add_argument("--minutes", type=float, default=50)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--batch-tokens", type=int, default=8192)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--docs", default="docs.pt", help="docs.pt (75%% personalized) or docs_x.pt (x only)")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--eval-every", type=float, default=6.0, help="minutes")
    p.add_argument("--val-per-group", type=int, default=25, help="validation docs per (task, prompt kind)")
    p = sub.add_parser("export")
    p.add_argument("--model", required=True, help="run name (checkpoint work/NAME.ckpt)")
    p.add_argument("--out-dir", default=None)
    a = ap.parse_args()
    if a.work:
        global WORK
        WORK = os.path.abspath(a.work)
    {"prepare": cmd_prepare, "train": cmd_train, "export": cmd_export}[a.cmd](a)


if __name__ == "__main__":
    main()

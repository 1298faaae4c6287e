#!/usr/bin/python3
"""Per-user LoRA adapters of the MiniLaMP Specialist (paper appendix A.2), in llama.cpp's GGUF adapter format.

For each test user, a rank-r adapter on every matrix of the Specialist's blocks (attn_q/k/v/output,
ffn_gate/up/down) is trained on that user's profile documents only (both tasks' past texts, each as
an x -> output document in the chat layout the engine uses), with the base weights frozen.  The
adapter is written as OUT/<user id>.gguf (general.type = adapter, adapter.type = lora,
adapter.lora.alpha; tensors blk.N.<name>.weight.lora_a [n_in, r] and .lora_b [r, n_out] in ggml's
ne order), which `specsteer eval --specialist lora --lora-dir OUT`, `generate --lora` and
`profile lora --set` load.

  train_lora.py --base models/minilamp/specialist.gguf --data data/minilamp --users 50 --out OUT
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate  # noqa: E402
import gguf_writer as gw  # noqa: E402
from reference import load_model  # noqa: E402
from train import TASKS, encode_doc  # noqa: E402

# engine tensor name -> module attribute in model.Block
TARGETS = {"attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo",
           "ffn_gate": "w_gate", "ffn_up": "w_up", "ffn_down": "w_down"}


class LoRALinear(nn.Module):
    """y = W x + (alpha / r) * B (A x), W frozen; B starts at 0 so training starts from the base model."""

    def __init__(self, base, r, alpha, gen):
        super().__init__()
        self.base = base
        self.scale = alpha / r
        n_in, n_out = base.in_features, base.out_features
        self.a = nn.Parameter(torch.randn(r, n_in, generator=gen) / math.sqrt(n_in))
        self.b = nn.Parameter(torch.zeros(n_out, r))

    def forward(self, x):
        return self.base(x) + self.scale * (x @ self.a.t()) @ self.b.t()


def profile_docs(user_records, tok, tmpl):
    """The user's past texts as (ids, loss start) documents: x from the task's input template, output the text."""
    docs = []
    for task, rec in user_records:
        out_key = "reviewText" if task == "review" else "content"
        for e in rec["profile"]:
            fields = {k: v for k, v in e.items() if k not in (out_key, "id")}
            x = generate.fill(tmpl[task]["input_template"], fields)
            docs.append(encode_doc(tok, x, e[out_key]))
    return docs


def batch(docs, pad_id):
    L = max(len(d) for d, _ in docs)
    x = torch.full((len(docs), L), pad_id, dtype=torch.long)
    y = torch.full((len(docs), L), -100, dtype=torch.long)
    for r, (d, s) in enumerate(docs):
        t = torch.tensor(d)
        x[r, :len(d)] = t
        y[r, s - 1:len(d) - 1] = t[s:]
    return x, y


def train_user(base_path, docs, a, seed):
    model, tok, kv = load_model(base_path)
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    adapted = {}
    for i, blk in enumerate(model.blocks):
        for gname, attr in TARGETS.items():
            lin = LoRALinear(getattr(blk, attr), a.rank, a.alpha, gen)
            setattr(blk, attr, lin)
            adapted[f"blk.{i}.{gname}.weight"] = lin
    params = [p for lin in adapted.values() for p in (lin.a, lin.b)]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    pad_id = tok.special_ids["<|endoftext|>"]
    x, y = batch(docs, pad_id)
    model.train()
    losses = []
    for step in range(a.steps):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return adapted, kv, losses


def write_adapter(path, adapted, kv, alpha, user):
    w = gw.GGUFWriter()
    w.add("general.architecture", gw.T_STRING, kv["general.architecture"])
    w.add("general.type", gw.T_STRING, "adapter")
    w.add("general.name", gw.T_STRING, f"minilamp-specialist-lora-{user}")
    w.add("adapter.type", gw.T_STRING, "lora")
    w.add("adapter.lora.alpha", gw.T_FLOAT32, float(alpha))
    for name, lin in adapted.items():
        # numpy shapes are ggml's ne reversed: lora_a ne [n_in, r], lora_b ne [r, n_out]
        w.add_tensor(name + ".lora_a", lin.a.detach().numpy().astype(np.float32))
        w.add_tensor(name + ".lora_b", lin.b.detach().numpy().astype(np.float32))
    w.write(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the Specialist GGUF (F32)")
    ap.add_argument("--data", required=True, help="directory with review.jsonl and writing.jsonl")
    ap.add_argument("--users", type=int, default=50, help="the first N users of the split (0 = all)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    tmpl = generate.load_templates()
    by_user = {}
    order = []
    for task in TASKS:
        with open(os.path.join(a.data, f"{task}.jsonl")) as f:
            for line in f:
                rec = json.loads(line)
                u = rec[tmpl[task]["user_key"]]
                if u not in by_user:
                    by_user[u] = []
                    order.append(u)
                by_user[u].append((task, rec))
    users = order[:a.users] if a.users else order
    _, tok, _ = load_model(a.base)
    log = []
    t0 = time.time()
    for n, u in enumerate(users):
        docs = profile_docs(by_user[u], tok, tmpl)
        adapted, kv, losses = train_user(a.base, docs, a, a.seed + n)
        write_adapter(os.path.join(a.out, f"{u}.gguf"), adapted, kv, a.alpha, u)
        rec = {"user": u, "docs": len(docs), "loss_first": losses[0], "loss_last": losses[-1],
               "seconds": round(time.time() - t0, 1)}
        log.append(rec)
        print(json.dumps(rec), flush=True)
    with open(os.path.join(a.out, "train_log.jsonl"), "w") as f:
        for r in log:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Reference runs of a MiniLaMP GGUF file in PyTorch, to check the C++ engine against.

  reference.py tokenize -m MODEL.gguf -p TEXT        token ids (special tokens parsed)
  reference.py run -m MODEL.gguf -p PROMPT [-n N]    greedy continuation of the ChatML-wrapped
                                                     prompt, stopping at <|im_end|>
  reference.py run -m MODEL.gguf --record data/minilamp/demo.jsonl:0 [--personalized]

The GGUF file is parsed here (reader independent of the writer's code paths:
offsets, alignment, Q8_0 dequantization) and loaded into tools/minilamp/model.py.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bpe import Tokenizer  # noqa: E402
from model import Config, Qwen3  # noqa: E402


def read_gguf(path):
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal pos
        n = take("Q")
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert buf[:4] == b"GGUF", "not a GGUF file"
    pos = 4
    version, n_t, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    infos = []
    for _ in range(n_t):
        name = string()
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        infos.append((name, ne, take("I"), take("Q")))
    align = kv.get("general.alignment", 32)
    data0 = (pos + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        n = int(np.prod(ne))
        shape = list(reversed(ne))
        if t == 0:
            a = np.frombuffer(buf, dtype="<f4", count=n, offset=data0 + off).reshape(shape)
        elif t == 8:
            nb = n // 32
            blk = np.frombuffer(buf, dtype=[("d", "<f2"), ("q", "i1", (32,))], count=nb, offset=data0 + off)
            a = (blk["q"].astype(np.float32) * blk["d"].astype(np.float32)[:, None]).reshape(shape)
        else:
            raise ValueError(f"{name}: tensor type {t} not handled")
        tensors[name] = a.copy()
    return kv, tensors


def load_model(path):
    kv, t = read_gguf(path)
    a = "qwen3."
    cfg = Config(n_vocab=len(kv["tokenizer.ggml.tokens"]), d_model=kv[a + "embedding_length"],
                 n_layer=kv[a + "block_count"], n_head=kv[a + "attention.head_count"],
                 n_head_kv=kv[a + "attention.head_count_kv"], head_dim=kv[a + "attention.key_length"],
                 d_ff=kv[a + "feed_forward_length"], ctx=kv[a + "context_length"],
                 rope_base=kv[a + "rope.freq_base"], eps=kv[a + "attention.layer_norm_rms_epsilon"])
    m = Qwen3(cfg)
    sd = {"embed.weight": t["token_embd.weight"], "norm.weight": t["output_norm.weight"]}
    names = {"attn_norm": "attn_norm", "attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo",
             "attn_q_norm": "q_norm", "attn_k_norm": "k_norm", "ffn_norm": "ffn_norm", "ffn_gate": "w_gate",
             "ffn_up": "w_up", "ffn_down": "w_down"}
    for i in range(cfg.n_layer):
        for g, p in names.items():
            sd[f"blocks.{i}.{p}.weight"] = t[f"blk.{i}.{g}.weight"]
    m.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    m.eval()
    merges = [x.split(" ") for x in kv["tokenizer.ggml.merges"]]
    tok = Tokenizer(merges)
    assert tok.tokens == kv["tokenizer.ggml.tokens"], "token list differs from the merges-derived one"
    return m, tok, kv


def record_prompt(spec, personalized):
    import train
    path, idx = spec.rsplit(":", 1)
    with open(path) as f:
        rec = [json.loads(line) for line in f][int(idx)]
    task = rec.get("task") or rec["id"].split("-", 1)[0]
    import generate
    return train.personalized_prompt(rec, task, generate.load_templates()) if personalized else rec["input"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["tokenize", "run"])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-p", "--prompt")
    ap.add_argument("--record", help="FILE.jsonl:INDEX, use the record's input (or personalized prompt)")
    ap.add_argument("--personalized", action="store_true")
    ap.add_argument("-n", "--max-tokens", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(1)
    m, tok, kv = load_model(a.model)
    prompt = a.prompt if a.prompt is not None else record_prompt(a.record, a.personalized)
    if a.cmd == "tokenize":
        print(json.dumps(tok.encode(prompt)))
        return
    ids = tok.encode("<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n")
    out = m.greedy(ids, a.max_tokens, kv["tokenizer.ggml.eos_token_id"])
    print(json.dumps({"prompt_tokens": len(ids), "tokens": out, "text": tok.decode(out)}))


if __name__ == "__main__":
    main()

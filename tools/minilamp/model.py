"""A small Qwen3 decoder in PyTorch, numerically laid out like llama.cpp's qwen3 graph.

RMSNorm (eps 1e-6, weight multiplies), per-head RMSNorm of q and k before
rope, NEOX rope (pairs (i, i + head_dim/2)), GQA (head h reads kv head
h // (n_head / n_head_kv)), attention scale 1/sqrt(head_dim), SwiGLU FFN,
tied embeddings.
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    n_vocab: int
    d_model: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    d_ff: int
    ctx: int = 1024
    rope_base: float = 10000.0
    eps: float = 1e-6

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(cfg, T, device=None):
    half = cfg.head_dim // 2
    inv = cfg.rope_base ** (-torch.arange(0, half, dtype=torch.float32) * 2 / cfg.head_dim)
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    # x: [B, H, T, D]; NEOX: rotate (x[i], x[i + D/2]).
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, hd = cfg.d_model, cfg.head_dim
        self.attn_norm = RMSNorm(d, cfg.eps)
        self.wq = nn.Linear(d, cfg.n_head * hd, bias=False)
        self.wk = nn.Linear(d, cfg.n_head_kv * hd, bias=False)
        self.wv = nn.Linear(d, cfg.n_head_kv * hd, bias=False)
        self.wo = nn.Linear(cfg.n_head * hd, d, bias=False)
        self.q_norm = RMSNorm(hd, cfg.eps)
        self.k_norm = RMSNorm(hd, cfg.eps)
        self.ffn_norm = RMSNorm(d, cfg.eps)
        self.w_gate = nn.Linear(d, cfg.d_ff, bias=False)
        self.w_up = nn.Linear(d, cfg.d_ff, bias=False)
        self.w_down = nn.Linear(cfg.d_ff, d, bias=False)

    def forward(self, x, cos, sin, mask):
        cfg = self.cfg
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_norm(self.wq(h).view(B, T, cfg.n_head, cfg.head_dim)).transpose(1, 2)
        k = self.k_norm(self.wk(h).view(B, T, cfg.n_head_kv, cfg.head_dim)).transpose(1, 2)
        v = self.wv(h).view(B, T, cfg.n_head_kv, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = cfg.n_head // cfg.n_head_kv
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(cfg.head_dim))
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, cfg.n_head * cfg.head_dim)
        x = x + self.wo(o)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Qwen3(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_vocab, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.norm = RMSNorm(cfg.d_model, cfg.eps)
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if n.endswith("wo.weight") or n.endswith("w_down.weight"):
                    std = 0.02 / math.sqrt(2 * cfg.n_layer)
                nn.init.normal_(p, 0.0, std)

    def n_params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, ids):
        B, T = ids.shape
        cos, sin = rope_tables(self.cfg, T)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        x = self.embed(ids)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        return self.norm(x) @ self.embed.weight.t()

    @torch.no_grad()
    def greedy(self, ids, max_new, eos):
        ids = list(ids)
        out = []
        for _ in range(max_new):
            logits = self.forward(torch.tensor([ids]))[0, -1]
            t = int(logits.argmax())
            if t == eos:
                break
            out.append(t)
            ids.append(t)
        return out


CONFIGS = {
    # ~0.95M parameters with a 1152-token vocab
    "generalist": dict(d_model=128, n_layer=4, n_head=4, n_head_kv=2, head_dim=32, d_ff=384),
    # ~2.9M parameters: the larger point of the Generalist's scaling curve (README, "Generalist v2")
    "generalist3m": dict(d_model=192, n_layer=6, n_head=6, n_head_kv=2, head_dim=32, d_ff=576),
    # ~60K parameters with a 1152-token vocab
    "specialist": dict(d_model=32, n_layer=2, n_head=2, n_head_kv=1, head_dim=16, d_ff=96),
}

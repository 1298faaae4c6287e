"""Byte-level BPE (GPT-2 style byte<->unicode mapping, Qwen2 pre-tokenizer).

The encoder mirrors llama.cpp's byte-level BPE (and so our C++ engine):
special tokens are split out first, the rest is pre-tokenized with the regex
llama.cpp uses for tokenizer.ggml.pre = "qwen2", and inside each chunk the
adjacent pair with the lowest merge rank is merged first (leftmost on ties).
"""
import json
from collections import Counter

import regex

# llama.cpp's rewrite of Qwen2's tokenizer.json pattern (case-insensitive contractions spelled out).
QWEN2_PRETOKENIZE = regex.compile(
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) \
        + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_ENC = bytes_to_unicode()
BYTE_DEC = {c: b for b, c in BYTE_ENC.items()}


def pretokenize(text):
    return QWEN2_PRETOKENIZE.findall(text)


def train_bpe(texts, n_merges):
    """Classic BPE on pre-tokenized chunk counts; ties broken by the smallest pair (deterministic)."""
    counts = Counter()
    for t in texts:
        for special in SPECIALS:
            t = t.replace(special, "\x00")
        for part in t.split("\x00"):
            counts.update(pretokenize(part))
    words = [[BYTE_ENC[b] for b in w.encode("utf-8")] for w in counts]
    freqs = list(counts.values())
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, f in zip(words, freqs):
            for i in range(len(w) - 1):
                pairs[(w[i], w[i + 1])] += f
        if not pairs:
            break
        best_count = max(pairs.values())
        best = min(p for p, c in pairs.items() if c == best_count)
        merges.append(best)
        a, b = best
        for wi, w in enumerate(words):
            if len(w) < 2:
                continue
            i, out = 0, []
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = [tuple(m) for m in merges]
        self.tokens = [BYTE_ENC[b] for b in range(256)] + [a + b for a, b in self.merges] + SPECIALS
        self.token_to_id = {t: i for i, t in enumerate(self.tokens)}
        assert len(self.token_to_id) == len(self.tokens), "duplicate token strings"
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.special_ids = {s: self.token_to_id[s] for s in SPECIALS}
        self.cache = {}

    @property
    def n_vocab(self):
        return len(self.tokens)

    def _bpe(self, chunk):
        ids = self.cache.get(chunk)
        if ids is not None:
            return ids
        syms = [BYTE_ENC[b] for b in chunk.encode("utf-8")]
        while len(syms) > 1:
            best, best_i = None, -1
            for i in range(len(syms) - 1):
                r = self.ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, best_i = r, i
            if best is None:
                break
            syms[best_i:best_i + 2] = [syms[best_i] + syms[best_i + 1]]
        ids = [self.token_to_id[s] for s in syms]
        self.cache[chunk] = ids
        return ids

    def encode(self, text, parse_special=True):
        out = []
        segments = [text]
        if parse_special:
            segments = []
            rest = text
            while rest:
                hits = [(rest.find(s), s) for s in SPECIALS if rest.find(s) >= 0]
                if not hits:
                    segments.append(rest)
                    break
                pos, s = min(hits)
                if pos:
                    segments.append(rest[:pos])
                segments.append(s)
                rest = rest[pos + len(s):]
        for seg in segments:
            if parse_special and seg in self.special_ids:
                out.append(self.special_ids[seg])
                continue
            for chunk in pretokenize(seg):
                out.extend(self._bpe(chunk))
        return out

    def decode(self, ids):
        parts = []
        for i in ids:
            t = self.tokens[i]
            if t in self.special_ids:
                parts.append(t.encode())
            else:
                parts.append(bytes(BYTE_DEC[c] for c in t))
        return b"".join(parts).decode("utf-8", errors="replace")

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"merges": [" ".join(m) for m in self.merges]}, f)

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls([m.split(" ") for m in json.load(f)["merges"]])

"""Small causal byte-level transformer used to make data/real/ (see README.md).

Pre-norm (RMSNorm) decoder, RoPE (rotate-half / GPT-NeoX convention, base
10000), grouped-query attention, SwiGLU MLP, untied embeddings.
Works with PyTorch 1.13 and 2.x (uses scaled_dot_product_attention when it
exists and nothing asks for the attention internals; otherwise plain math).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab: int = 256
    d_model: int = 384
    n_layers: int = 4
    n_heads: int = 6
    n_kv_heads: int = 2
    head_dim: int = 64
    mlp_hidden: int = 1024
    ctx: int = 1024
    rope_base: float = 10000.0
    dropout: float = 0.0
    norm_eps: float = 1e-6

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight.type_as(x)


def rope_tables(seq, head_dim, base, device):
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    t = torch.arange(seq, device=device, dtype=torch.float32)
    ang = torch.outer(t, inv)                      # [S, D/2]
    ang = torch.cat([ang, ang], dim=-1)            # [S, D]
    return ang.cos(), ang.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin):
    # x: [B, H, S, D]; cos/sin: [S, D] (fp32)
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.wq = nn.Linear(cfg.d_model, cfg.n_heads * hd, bias=False)
        self.wk = nn.Linear(cfg.d_model, cfg.n_kv_heads * hd, bias=False)
        self.wv = nn.Linear(cfg.d_model, cfg.n_kv_heads * hd, bias=False)
        self.wo = nn.Linear(cfg.n_heads * hd, cfg.d_model, bias=False)
        self.capture = None  # set to a dict to receive q, k, v (post-RoPE, unscaled)

    def forward(self, x, cos, sin):
        cfg = self.cfg
        B, S, _ = x.shape
        q = self.wq(x).view(B, S, cfg.n_heads, cfg.head_dim).transpose(1, 2)
        k = self.wk(x).view(B, S, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.wv(x).view(B, S, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if self.capture is not None:
            # exactly what the attention below consumes: [B, H, S, D]
            self.capture["q"] = q.detach()
            self.capture["k"] = k.detach()
            self.capture["v"] = v.detach()
        g = cfg.n_heads // cfg.n_kv_heads
        kr = k.repeat_interleave(g, dim=1)   # query head h uses kv head h // g
        vr = v.repeat_interleave(g, dim=1)
        drop = cfg.dropout if self.training else 0.0
        if hasattr(F, "scaled_dot_product_attention") and self.capture is None:
            o = F.scaled_dot_product_attention(q, kr, vr, dropout_p=drop, is_causal=True)
        else:
            scale = 1.0 / math.sqrt(cfg.head_dim)
            s = torch.matmul(q.float(), kr.float().transpose(-1, -2)) * scale
            mask = torch.ones(S, S, dtype=torch.bool, device=x.device).triu(1)
            s = s.masked_fill(mask, float("-inf"))
            p = torch.softmax(s, dim=-1)
            if drop > 0:
                p = F.dropout(p, drop)
            o = torch.matmul(p, vr.float()).type_as(q)
        o = o.transpose(1, 2).reshape(B, S, cfg.n_heads * cfg.head_dim)
        return self.wo(o)


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.w1 = nn.Linear(cfg.d_model, cfg.mlp_hidden, bias=False)
        self.w3 = nn.Linear(cfg.d_model, cfg.mlp_hidden, bias=False)
        self.w2 = nn.Linear(cfg.mlp_hidden, cfg.d_model, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.n1 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.n2 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin):
        x = x + self.drop(self.attn(self.n1(x), cos, sin))
        x = x + self.drop(self.mlp(self.n2(x)))
        return x


class ByteLM(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab, bias=False)
        self.apply(self._init)
        for b in self.blocks:  # scaled init of residual projections
            nn.init.normal_(b.attn.wo.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
            nn.init.normal_(b.mlp.w2.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx):
        B, S = idx.shape
        cos, sin = rope_tables(S, self.cfg.head_dim, self.cfg.rope_base, idx.device)
        x = self.emb(idx)
        for b in self.blocks:
            x = b(x, cos, sin)
        return self.head(self.norm(x))


def load_corpus(corpus_dir):
    """Return (manifest, {split: uint8 bytes}) from make_corpus.py's output."""
    import gzip
    import hashlib
    import json
    import os
    with open(os.path.join(corpus_dir, "manifest.json")) as fh:
        man = json.load(fh)
    with gzip.open(os.path.join(corpus_dir, "corpus.bin.gz"), "rb") as fh:
        blob = fh.read()
    sha = hashlib.sha256(blob).hexdigest()
    if sha != man["sha256"]:
        raise SystemExit(f"corpus sha256 mismatch: {sha} != {man['sha256']}")
    parts = {"train": [], "val": [], "heldout": []}
    for e in man["files"]:
        parts[e["split"]].append(blob[e["offset"]:e["offset"] + e["length"]])
    return man, {s: b"".join(v) for s, v in parts.items()}

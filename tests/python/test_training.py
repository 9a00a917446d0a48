"""A tiny model trained for 50 steps with sattn attention: its loss falls, and its gradients
match the same model run with masked torch attention (mask from sattn.layout)."""
import math

import numpy as np
import torch
import torch.nn as nn

import sattn
import sattn.torch
from conftest import mask_from_layout, max_rel, torch_masked_attention

VOCAB, D_MODEL, HEADS, KV_HEADS, HEAD_DIM, SEQ = 16, 32, 4, 2, 8, 64


class TinyLM(nn.Module):
    """Embedding -> one causal GQA attention layer -> MLP -> logits. ``attention`` picks the
    implementation: "sattn" (sattn.torch.sparse_attention) or "torch" (explicit masked softmax
    with the mask of the same sattn layout)."""

    def __init__(self, attention, pattern, params):
        super().__init__()
        self.attention, self.pattern, self.params = attention, pattern, params
        self.emb = nn.Embedding(VOCAB, D_MODEL)
        self.pos = nn.Parameter(torch.randn(SEQ, D_MODEL) * 0.1)
        self.wq = nn.Linear(D_MODEL, HEADS * HEAD_DIM, bias=False)
        self.wk = nn.Linear(D_MODEL, KV_HEADS * HEAD_DIM, bias=False)
        self.wv = nn.Linear(D_MODEL, KV_HEADS * HEAD_DIM, bias=False)
        self.wo = nn.Linear(HEADS * HEAD_DIM, D_MODEL, bias=False)
        self.mlp = nn.Sequential(nn.Linear(D_MODEL, 64), nn.GELU(), nn.Linear(64, D_MODEL))
        self.out = nn.Linear(D_MODEL, VOCAB)

    def forward(self, idx):
        B, S = idx.shape
        x = self.emb(idx) + self.pos[:S]
        q = self.wq(x).view(B, S, HEADS, HEAD_DIM).transpose(1, 2).contiguous()
        k = self.wk(x).view(B, S, KV_HEADS, HEAD_DIM).transpose(1, 2).contiguous()
        v = self.wv(x).view(B, S, KV_HEADS, HEAD_DIM).transpose(1, 2).contiguous()
        if self.attention == "sattn":
            o = sattn.torch.sparse_attention(q, k, v, pattern=self.pattern, params=self.params, causal=True)
        else:
            lay = sattn.layout(q.detach(), k.detach(), pattern=self.pattern, params=self.params, causal=True)
            o = torch_masked_attention(q, k, v, mask_from_layout(lay, HEADS)).float()
        x = x + self.wo(o.transpose(1, 2).reshape(B, S, HEADS * HEAD_DIM))
        x = x + self.mlp(x)
        return self.out(x)


def batch(step, B=4):
    """Sequences with a learnable rule: each token is (previous + stride) mod VOCAB, with a
    per-sequence stride, so predicting it needs attention to the previous tokens."""
    g = torch.Generator().manual_seed(step)
    start = torch.randint(0, VOCAB, (B, 1), generator=g)
    stride = torch.randint(1, 4, (B, 1), generator=g)
    seq = (start + stride * torch.arange(SEQ + 1)) % VOCAB
    return seq[:, :-1], seq[:, 1:]


def loss_of(model, step):
    x, y = batch(step)
    return nn.functional.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))


def grads_of(model, step):
    model.zero_grad()
    loss_of(model, step).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def compare_grads(a, b):
    worst = max(max_rel(a[n], b[n]) for n in a)
    assert worst <= 1e-3, worst
    return worst


def test_train_50_steps_loss_falls_and_gradients_match_masked_torch():
    torch.manual_seed(0)
    pattern, params = "sliding_window", {"window_size": 8}
    model = TinyLM("sattn", pattern, params)
    twin = TinyLM("torch", pattern, params)
    twin.load_state_dict(model.state_dict())
    compare_grads(grads_of(model, 1000), grads_of(twin, 1000))

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(50):
        opt.zero_grad()
        loss = loss_of(model, step)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses)
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.5 * first, (first, last)

    # After training, the same weights in the masked-torch model give the same gradients.
    twin.load_state_dict(model.state_dict())
    compare_grads(grads_of(model, 2000), grads_of(twin, 2000))


def test_data_dependent_layout_gradients_match_masked_torch():
    torch.manual_seed(1)
    params = {"block_size": 16, "keep_ratio": 0.4}
    model = TinyLM("sattn", "bsr", params)
    twin = TinyLM("torch", "bsr", params)
    twin.load_state_dict(model.state_dict())
    compare_grads(grads_of(model, 7), grads_of(twin, 7))

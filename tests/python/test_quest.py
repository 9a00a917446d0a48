"""quest (decode-time page selection) against an independent numpy implementation: the pages
each block row keeps, and the attention output over them."""
import math

import numpy as np
import pytest

import sattn
from conftest import make_qkv, mask_from_layout, max_rel, torch_masked_attention


def numpy_quest_pages(q, k, page, top, causal):
    """[batch][kv_head][block_row] -> sorted kept pages. A page's summary is the elementwise
    min/max of its keys; a query's bound on it is sum_d max(q_d * min_d, q_d * max_d); a block
    row of `page` queries sums the bounds of its queries and of the KV head's query heads, and
    keeps the `top` highest (ties to the lower page) among the pages not wholly in the future."""
    B, H, S, D = q.shape
    _, KVH, KV, _ = k.shape
    g = H // KVH
    pages = -(-KV // page)
    off = KV - S
    out = []
    for b in range(B):
        per_head = []
        for kvh in range(KVH):
            kk = k[b, kvh].astype(np.float64)
            lo = np.stack([kk[p * page:(p + 1) * page].min(0) for p in range(pages)])  # [pages, D]
            hi = np.stack([kk[p * page:(p + 1) * page].max(0) for p in range(pages)])
            rows = []
            for br in range(-(-S // page)):
                r0, r1 = br * page, min((br + 1) * page, S)
                if causal:
                    end = min(max(r1 - 1 + off + 1, 0), KV)
                    cand = -(-end // page)
                else:
                    cand = pages
                qq = q[b, kvh * g:(kvh + 1) * g, r0:r1].astype(np.float64).reshape(-1, D)  # [g*rows, D]
                bound = np.maximum(qq[:, None, :] * lo[None, :cand], qq[:, None, :] * hi[None, :cand]).sum(-1).sum(0)
                order = sorted(range(cand), key=lambda p: (-bound[p], p))
                rows.append(sorted(order[:min(top, cand)]))
            per_head.append(rows)
        out.append(per_head)
    return out


def numpy_mask(pages, shape, page, causal):
    B, H, KVH, S, KV, D, _ = shape
    g = H // KVH
    i = np.arange(S)[:, None]
    j = np.arange(KV)[None, :]
    ok = (j <= i + (KV - S)) if causal else np.ones((S, KV), dtype=bool)
    mask = np.zeros((B, H, S, KV), dtype=bool)
    for b in range(B):
        for kvh in range(KVH):
            m = np.zeros((S, KV), dtype=bool)
            for br, kept in enumerate(pages[b][kvh]):
                for p in kept:
                    m[br * page:(br + 1) * page, p * page:(p + 1) * page] = True
            mask[b, kvh * g:(kvh + 1) * g] = m & ok
    return mask


# (batch, heads, kv_heads, seq_len, kv_len, head_dim, causal), page_size, top_pages:
# decode (one query, a chunk of queries), GQA, a partial last page, a causal prefill.
CASES = {
    "decode_one": ((1, 4, 4, 1, 200, 16, True), 16, 4),
    "decode_chunk_gqa": ((2, 8, 2, 5, 301, 32, True), 16, 3),
    "decode_partial_page": ((1, 2, 1, 3, 97, 24, False), 8, 5),
    "prefill_causal": ((1, 2, 2, 64, 64, 16, True), 16, 2),
    "more_pages_than_kept": ((1, 1, 1, 1, 40, 8, True), 16, 16),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_quest_pages_match_numpy(name):
    shape, page, top = CASES[name]
    causal = shape[-1]
    q, k, v = make_qkv(shape, seed=len(name))
    want = numpy_quest_pages(q, k, page, top, causal)
    params = {"page_size": page, "top_pages": min(top, -(-shape[4] // page))}
    lay = sattn.layout(q, k, pattern="quest", params=params, causal=causal)
    assert lay.spec == "quest" and lay.block and lay.block_size == page
    for b in range(shape[0]):
        for kvh in range(shape[2]):
            ptr, idx = lay.ptr(b, kvh), lay.idx(b, kvh)
            got = [list(idx[ptr[br]:ptr[br + 1]]) for br in range(lay.block_rows)]
            assert got == want[b][kvh], (b, kvh)


@pytest.mark.parametrize("name", sorted(CASES))
def test_quest_attention_matches_numpy_pages(name):
    shape, page, top = CASES[name]
    causal = shape[-1]
    q, k, v = make_qkv(shape, seed=100 + len(name))
    params = {"page_size": page, "top_pages": min(top, -(-shape[4] // page))}
    mask = numpy_mask(numpy_quest_pages(q, k, page, top, causal), shape, page, causal)
    ref = torch_masked_attention(q, k, v, mask)
    out = sattn.sparse_attention(q, k, v, pattern="quest", params=params, causal=causal)
    assert max_rel(out, ref) <= sattn.tolerance("fp32")
    lay = sattn.layout(q, k, pattern="quest", params=params, causal=causal)
    np.testing.assert_array_equal(mask_from_layout(lay, shape[1]), mask)


def test_quest_bound_is_an_upper_bound():
    """The bound the selection ranks by is >= every q.k of the page (what makes Quest safe)."""
    q, k, _ = make_qkv((1, 1, 1, 7, 256, 32, False), seed=3)
    page = 16
    kk = k[0, 0].astype(np.float64).reshape(-1, page, 32)
    lo, hi = kk.min(1), kk.max(1)
    for qi in q[0, 0].astype(np.float64):
        bound = np.maximum(qi * lo, qi * hi).sum(-1)
        exact = (kk @ qi).max(-1)
        assert np.all(bound >= exact - 1e-12)
        assert math.isfinite(bound.sum())


def test_quest_keeps_the_page_of_a_planted_key():
    """A decode query aligned with one planted key far from the others: its page is kept."""
    shape = (1, 1, 1, 1, 512, 16, True)
    q, k, v = make_qkv(shape, seed=9)
    k *= 0.1
    k[0, 0, 300] = 4.0 * q[0, 0, 0]
    lay = sattn.layout(q, k, pattern="quest", params={"page_size": 16, "top_pages": 1}, causal=True)
    assert list(lay.idx(0, 0)) == [300 // 16]

"""Backward-kernel variants side by side: the same BSR configurations as bench.py (bf16, batch 1,
16 heads, block mask of 128-blocks at ~10% plus the diagonal, non-causal and causal), our
backward alone (sattn_cuda_plan_backward after one forward with lse) for each libsattn_cuda.so
given, and optionally FlexAttention's backward (forward+backward minus forward, as bench.py).
Gradients of every variant are compared with the first one's (max-norm relative).

Usage: python3 bench/gpu/bwd_variants.py OUT.json [--flex] NAME=LIB.so ... -- SEQ ...
"""
import ctypes, json, sys
import torch

args = sys.argv[1:]
out_path = args.pop(0)
flex_too = "--flex" in args
args = [a for a in args if a != "--flex"]
sep = args.index("--")
libs = [(a.split("=", 1)[0], ctypes.CDLL(a.split("=", 1)[1])) for a in args[:sep]]
seqs = [int(s) for s in args[sep + 1:]]
H, BS, KEEP = 16, 128, 0.09


class Args(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("bf16", ctypes.c_int)] + [(n, ctypes.c_int64) for n in
               ("batch", "heads", "kv_heads", "seq_len", "kv_len", "head_dim")] + [
        ("causal", ctypes.c_int), ("causal_offset", ctypes.c_int64), ("scale", ctypes.c_float),
        ("ptr", ctypes.c_void_p), ("idx", ctypes.c_void_p), ("shared", ctypes.c_int),
        ("block_size", ctypes.c_int64), ("window", ctypes.c_int64), ("dilation", ctypes.c_int64),
        ("q", ctypes.c_void_p), ("k", ctypes.c_void_p), ("v", ctypes.c_void_p), ("o", ctypes.c_void_p)]


def call(lib, name, *ptrs):
    msg = ctypes.create_string_buffer(256)
    rc = getattr(lib, name)(*ptrs, msg)
    assert rc == 0, (name, msg.value)


def timeit(fn, reps=10):
    fn(); torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); fn(); e1.record(); torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1))
    ts.sort()
    return ts[len(ts) // 2]


if flex_too:
    from torch.nn.attention.flex_attention import flex_attention, create_block_mask
    torch._dynamo.config.cache_size_limit = 64
    flex = torch.compile(flex_attention)
rows = []
for S in seqs:
    for D in (64, 128):
        g = torch.Generator(device="cuda").manual_seed(S + D)
        q, k, v = (torch.randn(1, H, S, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3))
        nb = S // BS
        draw = torch.rand(nb, nb, device="cuda", generator=g) < KEEP
        draw |= torch.eye(nb, dtype=torch.bool, device="cuda")
        do = torch.randn(1, H, S, D, device="cuda", generator=g)
        for causal in (False, True):
            keep = draw & torch.tril(torch.ones(nb, nb, dtype=torch.bool, device="cuda")) if causal else draw
            kc = keep.cpu()
            ptr = torch.zeros(nb + 1, dtype=torch.int64)
            ptr[1:] = kc.sum(1).cumsum(0)
            idx = kc.nonzero()[:, 1].to(torch.int32).contiguous()
            r = {"seq_len": S, "head_dim": D, "causal": causal}
            first = None
            for name, lib in libs:
                a = Args(2, 1, 1, H, H, S, S, D, int(causal), 0, D ** -0.5, ptr.data_ptr(), idx.data_ptr(), 1, BS,
                         0, 1, None, None, None, None)
                p = ctypes.c_void_p()
                msg = ctypes.create_string_buffer(256)
                assert lib.sattn_cuda_plan_create(ctypes.byref(a), 1, ctypes.byref(p), msg) == 0, msg.value
                o = torch.empty(1, H, S, D, device="cuda")
                lse = torch.empty(1, H, S, device="cuda")
                dq, dk, dv = (torch.full((1, H, S, D), float("nan"), device="cuda") for _ in range(3))
                vp = lambda t: ctypes.c_void_p(t.data_ptr())
                call(lib, "sattn_cuda_plan_run_lse", p, vp(q), vp(k), vp(v), vp(o), vp(lse))
                bwd = lambda: call(lib, "sattn_cuda_plan_backward", p, vp(q), vp(k), vp(v), vp(o), vp(do), vp(lse),
                                   vp(dq), vp(dk), vp(dv))
                r[name + "_bwd_ms"] = timeit(bwd)
                torch.cuda.synchronize()
                if first is None:
                    first = (dq.clone(), dk.clone(), dv.clone())
                else:
                    r[name + "_vs_first"] = max(float((m - f).abs().max() / f.abs().max())
                                                for m, f in zip((dq, dk, dv), first))
                lib.sattn_cuda_plan_destroy(p)
            if flex_too:
                if causal:
                    def mask_mod(b, h, qi, kj):
                        return keep[qi // BS, kj // BS] & (kj <= qi)
                else:
                    def mask_mod(b, h, qi, kj):
                        return keep[qi // BS, kj // BS]
                bm = create_block_mask(mask_mod, None, None, S, S, device="cuda", BLOCK_SIZE=BS)
                qg, kg, vg = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
                dob = do.to(torch.bfloat16)

                def flex_fb():
                    qg.grad = kg.grad = vg.grad = None
                    flex(qg, kg, vg, block_mask=bm).backward(dob)
                fwd = timeit(lambda: flex(q, k, v, block_mask=bm))
                r["flex_bwd_ms"] = timeit(flex_fb) - fwd
                flex_fb()
                r["first_vs_flex"] = max(float((f - t.grad.float()).abs().max() / t.grad.float().abs().max())
                                         for f, t in zip(first, (qg, kg, vg)))
            rows.append(r)
            print(json.dumps(r), flush=True)
names = [n for n, _ in libs]
print("seq D causal " + " ".join(names) + (" flex" if flex_too else "") + "   (bwd ms; max rel diff to first)")
for r in rows:
    cells = [f"{r[n + '_bwd_ms']:.3f}" + (f"({r[n + '_vs_first']:.0e})" if n + "_vs_first" in r else "") for n in names]
    if flex_too:
        cells.append(f"{r['flex_bwd_ms']:.3f}(first/flex {r['flex_bwd_ms'] / r[names[0] + '_bwd_ms']:.2f}x)")
    print(r["seq_len"], r["head_dim"], int(r["causal"]), " ".join(cells))
json.dump(rows, open(out_path, "w"), indent=1)

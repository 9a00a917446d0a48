"""Backward-kernel variants side by side: the same BSR configurations as bench.py (bf16, batch 1,
16 heads, block mask of 128-blocks at ~10% plus the diagonal, non-causal and causal), our
backward alone (sattn_cuda_plan_backward after one forward with lse) and the forward alone
(sattn_cuda_plan_run) for each libsattn_cuda.so given, and optionally FlexAttention's backward (forward+backward minus forward, as bench.py).
Gradients of every variant are compared with the first one's (max-norm relative).

Usage: python3 bench/gpu/bwd_variants.py OUT.json [--flex] NAME=LIB.so[@VAR=VALUE,...] ... -- SEQ ...
(@VAR=VALUE,...: environment set while that variant runs, e.g. SATTN_CUDA_HOPPER_BWD=1 for another
kernel of the same library.)
"""
import os
import ctypes, json, sys
import torch
from timing import timeit
from bwd_variants_common import Args, block_mask_cases, call

args = sys.argv[1:]
out_path = args.pop(0)
flex_too = "--flex" in args
args = [a for a in args if a != "--flex"]
sep = args.index("--")
_cdll = {}


def _lib(spec):
    path, _, env = spec.partition("@")
    if path not in _cdll:
        _cdll[path] = ctypes.CDLL(path)
    return _cdll[path], dict(kv.split("=", 1) for kv in env.split(",") if kv)


libs = [(a.split("=", 1)[0], _lib(a.split("=", 1)[1])) for a in args[:sep]]
seqs = [int(s) for s in args[sep + 1:]]
H, BS, KEEP = 16, 128, 0.09


if flex_too:
    from torch.nn.attention.flex_attention import flex_attention, create_block_mask
    torch._dynamo.config.cache_size_limit = 64
    flex = torch.compile(flex_attention)
rows = []
for S in seqs:
    for D in (64, 128):
        for q, k, v, do, causal, keep, ptr, idx in block_mask_cases(S, D, H, BS, KEEP):
            r = {"seq_len": S, "head_dim": D, "causal": causal}
            first = None
            for name, (lib, env) in libs:
                saved = {kv: os.environ.get(kv) for kv in env}
                os.environ.update(env)
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
                r[name + "_fwd_ms"] = timeit(lambda: call(lib, "sattn_cuda_plan_run", p, vp(q), vp(k), vp(v), vp(o)))
                call(lib, "sattn_cuda_plan_run_lse", p, vp(q), vp(k), vp(v), vp(o), vp(lse))
                bwd()
                torch.cuda.synchronize()
                if first is None:
                    first = (dq.clone(), dk.clone(), dv.clone())
                else:
                    r[name + "_vs_first"] = max(float((m - f).abs().max() / f.abs().max())
                                                for m, f in zip((dq, dk, dv), first))
                lib.sattn_cuda_plan_destroy(p)
                for kv, val in saved.items():
                    if val is None:
                        os.environ.pop(kv, None)
                    else:
                        os.environ[kv] = val
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
                r["flex_fwd_ms"] = fwd
                r["flex_bwd_ms"] = timeit(flex_fb) - fwd
                flex_fb()
                r["first_vs_flex"] = max(float((f - t.grad.float()).abs().max() / t.grad.float().abs().max())
                                         for f, t in zip(first, (qg, kg, vg)))
            rows.append(r)
            print(json.dumps(r), flush=True)
names = [n for n, _ in libs]
for what in ("bwd", "fwd"):
    print("seq D causal " + " ".join(names) + (" flex" if flex_too else "") + f"   ({what} ms" +
          ("; max rel diff of the gradients to first)" if what == "bwd" else ")"))
    for r in rows:
        cells = [f"{r[n + '_' + what + '_ms']:.3f}" +
                 (f"({r[n + '_vs_first']:.0e})" if what == "bwd" and n + "_vs_first" in r else "") for n in names]
        if flex_too:
            fl = r[f"flex_{what}_ms"]
            cells.append(f"{fl:.3f}(flex/first {fl / r[names[0] + '_' + what + '_ms']:.2f}x)")
        print(r["seq_len"], r["head_dim"], int(r["causal"]), " ".join(cells))
json.dump(rows, open(out_path, "w"), indent=1)

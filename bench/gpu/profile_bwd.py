"""One forward (with lse) and one backward of ours, and one forward+backward of FlexAttention, per
configuration of bench.py's block mask: a driver for `ncu`, which times and analyses each kernel
(our prep, dq and dk/dv kernels; Flex's Triton kernels) with nothing else in the way.

Usage: ncu ... python3 bench/gpu/profile_bwd.py LIB.so SEQ D [D ...]
"""
import ctypes, sys
import torch
from torch.nn.attention.flex_attention import flex_attention, create_block_mask
from bwd_variants_common import Args, block_mask_cases, call  # noqa: E402

lib = ctypes.CDLL(sys.argv[1])
S = int(sys.argv[2])
dims = [int(d) for d in sys.argv[3:]] or [128]
H, BS, KEEP = 16, 128, 0.09
flex = torch.compile(flex_attention)
vp = lambda t: ctypes.c_void_p(t.data_ptr())
for D in dims:
    for q, k, v, do, causal, keep, ptr, idx in block_mask_cases(S, D, H, BS, KEEP):
        a = Args(2, 1, 1, H, H, S, S, D, int(causal), 0, D ** -0.5, ptr.data_ptr(), idx.data_ptr(), 1, BS, 0, 1,
                 None, None, None, None)
        p = ctypes.c_void_p()
        msg = ctypes.create_string_buffer(256)
        assert lib.sattn_cuda_plan_create(ctypes.byref(a), 1, ctypes.byref(p), msg) == 0, msg.value
        o = torch.empty(1, H, S, D, device="cuda")
        lse = torch.empty(1, H, S, device="cuda")
        dq, dk, dv = (torch.empty(1, H, S, D, device="cuda") for _ in range(3))
        call(lib, "sattn_cuda_plan_run_lse", p, vp(q), vp(k), vp(v), vp(o), vp(lse))
        call(lib, "sattn_cuda_plan_backward", p, vp(q), vp(k), vp(v), vp(o), vp(do), vp(lse), vp(dq), vp(dk), vp(dv))
        torch.cuda.synchronize()
        lib.sattn_cuda_plan_destroy(p)
        if causal:
            def mask_mod(b, h, qi, kj):
                return keep[qi // BS, kj // BS] & (kj <= qi)
        else:
            def mask_mod(b, h, qi, kj):
                return keep[qi // BS, kj // BS]
        bm = create_block_mask(mask_mod, None, None, S, S, device="cuda", BLOCK_SIZE=BS)
        qg, kg, vg = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
        flex(qg, kg, vg, block_mask=bm).backward(do.to(torch.bfloat16))
        torch.cuda.synchronize()
        print(f"profiled S={S} D={D} causal={causal}", flush=True)

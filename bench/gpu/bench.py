"""GPU benchmark: sattn CUDA kernel vs FlexAttention (compiled, same BlockMask) vs SDPA flash.

Usage: python3 bench/gpu/bench.py LIB.so OUT.json [seq ...]. bf16, batch 1, 16 heads, causal
block-sparse mask (block 128, random keep of ~10% of the causal blocks + diagonal).
"""
import ctypes, json, sys, time
import torch
from torch.nn.attention import sdpa_kernel, SDPBackend
from torch.nn.attention.flex_attention import flex_attention, create_block_mask

lib = ctypes.CDLL(sys.argv[1])
out_path = sys.argv[2]
seqs = [int(s) for s in sys.argv[3:]] or [4096, 16384, 65536]


class Args(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("bf16", ctypes.c_int)] + [(n, ctypes.c_int64) for n in
               ("batch", "heads", "kv_heads", "seq_len", "kv_len", "head_dim")] + [
        ("causal", ctypes.c_int), ("causal_offset", ctypes.c_int64), ("scale", ctypes.c_float),
        ("ptr", ctypes.c_void_p), ("idx", ctypes.c_void_p), ("shared", ctypes.c_int),
        ("block_size", ctypes.c_int64), ("window", ctypes.c_int64), ("dilation", ctypes.c_int64),
        ("q", ctypes.c_void_p), ("k", ctypes.c_void_p), ("v", ctypes.c_void_p), ("o", ctypes.c_void_p)]


def ours(mode, q, k, v, o, ptr=None, idx=None, bs=128):
    S, D = q.shape[2], q.shape[3]
    a = Args(mode, 1, 1, q.shape[1], k.shape[1], S, k.shape[2], D, 1, 0, D ** -0.5,
             ptr.data_ptr() if ptr is not None else None, idx.data_ptr() if idx is not None else None, 1,
             bs, 0, 1, q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr())
    msg = ctypes.create_string_buffer(256)
    rc = lib.sattn_cuda_forward(ctypes.byref(a), msg)
    assert rc == 0, msg.value


def timeit(fn, reps=10):
    fn(); torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); fn(); e1.record(); torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1))
    ts.sort()
    return ts[len(ts) // 2]


rows = []
H, BS = 16, 128
for S in seqs:
    for D in (64, 128):
        g = torch.Generator(device="cuda").manual_seed(S + D)
        q, k, v = (torch.randn(1, H, S, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3))
        nb = S // BS
        keep = torch.rand(nb, nb, device="cuda", generator=g) < 0.1
        keep |= torch.eye(nb, dtype=torch.bool, device="cuda")
        keep &= torch.tril(torch.ones(nb, nb, dtype=torch.bool, device="cuda"))
        keep_cpu = keep.cpu()

        def mask_mod(b, h, qi, kj):
            return keep[qi // BS, kj // BS] & (kj <= qi)
        bm = create_block_mask(mask_mod, 1, 1, S, S, device="cuda", BLOCK_SIZE=BS)
        ptr = torch.zeros(nb + 1, dtype=torch.int64)
        ptr[1:] = keep_cpu.sum(1).cumsum(0)
        idx = keep_cpu.nonzero()[:, 1].to(torch.int32)
        ptr, idx = ptr.cuda(), idx.cuda()
        density = float((keep_cpu.sum() * BS * BS - nb * BS * (BS - 1) / 2) / (S * S))
        flex = torch.compile(flex_attention)
        o_f = torch.empty(1, H, S, D, device="cuda")
        o_d = torch.empty(1, H, S, D, device="cuda")
        r = {"seq_len": S, "head_dim": D, "heads": H, "block_size": BS, "density": density}
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            r["sdpa_flash_dense_ms"] = timeit(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
        r["flex_ms"] = timeit(lambda: flex(q, k, v, block_mask=bm))
        r["ours_bsr_ms"] = timeit(lambda: ours(2, q, k, v, o_f, ptr, idx, BS), 3)
        if S <= 16384:
            r["ours_dense_ms"] = timeit(lambda: ours(0, q, k, v, o_d), 3)
        ref = flex(q, k, v, block_mask=bm).float()
        r["ours_vs_flex_max_rel"] = float((o_f - ref).abs().max() / ref.abs().max())
        r["ours_over_flex_throughput"] = r["flex_ms"] / r["ours_bsr_ms"]
        r["flex_speedup_over_flash"] = r["sdpa_flash_dense_ms"] / r["flex_ms"]
        r["ours_speedup_over_flash"] = r["sdpa_flash_dense_ms"] / r["ours_bsr_ms"]
        r["target_speedup"] = 0.7 / density
        rows.append(r)
        print(json.dumps(r), flush=True)
env = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda}
json.dump({"env": env, "rows": rows}, open(out_path, "w"), indent=1)

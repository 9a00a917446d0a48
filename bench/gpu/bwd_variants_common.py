"""What bench.py, bwd_variants.py and profile_bwd.py share: the ctypes declaration of sattn_cuda.h's
SattnCudaArgs, a checked call, and (the backward scripts) bench.py's data and block mask."""
import ctypes


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




def block_mask_cases(S, D, H, BS, keep_frac, device="cuda"):
    """bench.py's configurations: q, k, v (bf16, 1 x H x S x D), dO (fp32) and a block mask of BS-blocks
    (a random keep_frac of them plus the diagonal), drawn from one generator seeded S + D; yields
    (q, k, v, do, causal, keep, ptr, idx) for causal False and True, keep restricted to the past for
    causal, ptr/idx its block rows as CSR (int64 row pointers, int32 block columns, on the CPU)."""
    import torch
    g = torch.Generator(device=device).manual_seed(S + D)
    q, k, v = (torch.randn(1, H, S, D, device=device, dtype=torch.bfloat16, generator=g) for _ in range(3))
    nb = S // BS
    draw = torch.rand(nb, nb, device=device, generator=g) < keep_frac
    draw |= torch.eye(nb, dtype=torch.bool, device=device)
    do = torch.randn(1, H, S, D, device=device, generator=g)
    for causal in (False, True):
        keep = draw & torch.tril(torch.ones(nb, nb, dtype=torch.bool, device=device)) if causal else draw
        kc = keep.cpu()
        ptr = torch.zeros(nb + 1, dtype=torch.int64)
        ptr[1:] = kc.sum(1).cumsum(0)
        idx = kc.nonzero()[:, 1].to(torch.int32).contiguous()
        yield q, k, v, do, causal, keep, ptr, idx

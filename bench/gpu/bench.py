"""GPU benchmark: sattn CUDA kernels vs FlexAttention (compiled, same BlockMask) vs SDPA flash.

Usage: python3 bench/gpu/bench.py LIB.so OUT.json [seq ...]

bf16, batch 1, 16 heads, head_dim 64 and 128. Block mask: block 128, a random ~10% of the blocks
plus the diagonal, non-causal (density ~0.1 of seq_len^2; the dense baseline is non-causal flash)
and causal (the same draw restricted to the past, element-causal inside diagonal blocks; the dense
baseline is causal flash). Every configuration runs all kernels in the same process: ours on the
block mask (tensor-core kernel: on a Hopper GPU the default of each head_dim, with every forward
kernel timed beside it as ours_mmasync_*, ours_wgmma_* and ours_wgmmapipe_*, SATTN_CUDA_HOPPER=0|1|2), Flex on the same BlockMask, SDPA flash dense, our dense kernel.
Times are CUDA-event medians after a warm-up, per call at throughput (bench/gpu/timing.py: calls
back to back, so host overhead overlaps the kernels); *_call_ms: one call on an idle GPU. Outputs are compared with Flex's.
Backward (seq_len <= BWD_MAX_SEQ, env, default 65536): ours (forward with lse, then the backward
kernels; fp32 gradients) against Flex's compiled backward on the same BlockMask: the forward+backward
time of each, the backward alone (forward+backward minus forward), and the gradients compared with
Flex's (max-norm relative).
"""
import ctypes, json, os, sys
import torch
from timing import latency, timeit
from bwd_variants_common import Args
from torch.nn.attention import sdpa_kernel, SDPBackend
from torch.nn.attention.flex_attention import flex_attention, create_block_mask

lib = ctypes.CDLL(sys.argv[1])
out_path = sys.argv[2]
seqs = [int(s) for s in sys.argv[3:]] or [4096, 16384, 65536]
H, BS, KEEP = 16, 128, 0.09


lib.sattn_cuda_plan_kernel.restype = ctypes.c_char_p
# A Hopper card with the sm_90a kernels: the bench also times each forward kernel by name.
HOPPER = torch.cuda.get_device_capability() == (9, 0) and lib.sattn_cuda_hopper_built() == 1
lib.sattn_cuda_plan_forward_path.restype = ctypes.c_char_p
BWD_MAX_SEQ = int(os.environ.get("BWD_MAX_SEQ", "65536"))
DENSE, BSR = 0, 2


class Plan:
    """A sattn plan: the layout (host ptr/idx) goes to the device once."""
    def __init__(self, mode, S, D, causal, ptr=None, idx=None):
        self.args = Args(mode, 1, 1, H, H, S, S, D, int(causal), 0, D ** -0.5,
                         ptr.data_ptr() if ptr is not None else None,
                         idx.data_ptr() if idx is not None else None, 1, BS, 0, 1, None, None, None, None)
        self.p = ctypes.c_void_p()
        msg = ctypes.create_string_buffer(256)
        assert lib.sattn_cuda_plan_create(ctypes.byref(self.args), 1, ctypes.byref(self.p), msg) == 0, msg.value
        self.kernel = lib.sattn_cuda_plan_kernel(self.p).decode()
        self.path = lib.sattn_cuda_plan_forward_path(self.p).decode()

    def __call__(self, q, k, v, o):
        msg = ctypes.create_string_buffer(256)
        rc = lib.sattn_cuda_plan_run(self.p, ctypes.c_void_p(q.data_ptr()), ctypes.c_void_p(k.data_ptr()),
                                     ctypes.c_void_p(v.data_ptr()), ctypes.c_void_p(o.data_ptr()), msg)
        assert rc == 0, msg.value

    def fwd_lse(self, q, k, v, o, lse):
        msg = ctypes.create_string_buffer(256)
        rc = lib.sattn_cuda_plan_run_lse(self.p, *(ctypes.c_void_p(t.data_ptr()) for t in (q, k, v, o, lse)), msg)
        assert rc == 0, msg.value

    def bwd(self, q, k, v, o, do, lse, dq, dk, dv):
        msg = ctypes.create_string_buffer(256)
        rc = lib.sattn_cuda_plan_backward(self.p, *(ctypes.c_void_p(t.data_ptr()) for t in (q, k, v, o, do, lse, dq, dk, dv)),
                                          msg)
        assert rc == 0, msg.value

    def __del__(self):
        lib.sattn_cuda_plan_destroy(self.p)




torch._dynamo.config.cache_size_limit = 64  # one compiled Flex kernel per (shape, mask_mod)
flex = torch.compile(flex_attention)
rows = []
for S in seqs:
    for D in (64, 128):
        g = torch.Generator(device="cuda").manual_seed(S + D)
        q, k, v = (torch.randn(1, H, S, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3))
        nb = S // BS
        draw = torch.rand(nb, nb, device="cuda", generator=g) < KEEP
        draw |= torch.eye(nb, dtype=torch.bool, device="cuda")
        for causal in (False, True):
            keep = draw & torch.tril(torch.ones(nb, nb, dtype=torch.bool, device="cuda")) if causal else draw
            keep_cpu = keep.cpu()

            # Two separate functions (not one with a causal flag): the compiled Flex kernel is
            # specialized on the mask_mod's code, and a captured Python flag may not be re-checked.
            if causal:
                def mask_mod(b, h, qi, kj):
                    return keep[qi // BS, kj // BS] & (kj <= qi)
            else:
                def mask_mod(b, h, qi, kj):
                    return keep[qi // BS, kj // BS]
            bm = create_block_mask(mask_mod, None, None, S, S, device="cuda", BLOCK_SIZE=BS)
            ptr = torch.zeros(nb + 1, dtype=torch.int64)
            ptr[1:] = keep_cpu.sum(1).cumsum(0)
            idx = keep_cpu.nonzero()[:, 1].to(torch.int32).contiguous()
            pairs = int(keep_cpu.sum()) * BS * BS - (nb * BS * (BS - 1) // 2 if causal else 0)
            density = pairs / (S * S)
            reps = 20 if S <= 16384 else 5
            o_s = torch.empty(1, H, S, D, device="cuda")
            o_d = torch.empty(1, H, S, D, device="cuda")
            sparse, dense = Plan(BSR, S, D, causal, ptr, idx), Plan(DENSE, S, D, causal)
            r = {"seq_len": S, "head_dim": D, "heads": H, "block_size": BS, "causal": causal,
                 "density": density, "ours_kernel": sparse.kernel}
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                r["sdpa_flash_dense_ms"] = timeit(
                    lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal), reps)
            r["flex_ms"] = timeit(lambda: flex(q, k, v, block_mask=bm), reps)
            r["ours_bsr_ms"] = timeit(lambda: sparse(q, k, v, o_s), reps)
            r["ours_dense_ms"] = timeit(lambda: dense(q, k, v, o_d), reps)
            r["ours_path"] = sparse.path
            if HOPPER:  # every forward kernel of this card side by side (SATTN_CUDA_HOPPER=0|1|2)
                for env_v, key in (("0", "mmasync"), ("1", "wgmma"), ("2", "wgmmapipe")):
                    os.environ["SATTN_CUDA_HOPPER"] = env_v
                    r[f"ours_{key}_bsr_ms"] = timeit(lambda: sparse(q, k, v, o_s), reps)
                    if S <= 16384:
                        r[f"ours_{key}_dense_ms"] = timeit(lambda: dense(q, k, v, o_d), reps)
                    sparse(q, k, v, o_s)
                    ref_v = flex(q, k, v, block_mask=bm).float()
                    r[f"ours_{key}_vs_flex_max_rel"] = float((o_s - ref_v).abs().max() / ref_v.abs().max())
                    del os.environ["SATTN_CUDA_HOPPER"], ref_v
            # One call on an idle GPU, host overhead included (the figure reported before 2026-12-07).
            r["flex_call_ms"] = latency(lambda: flex(q, k, v, block_mask=bm))
            r["ours_bsr_call_ms"] = latency(lambda: sparse(q, k, v, o_s))
            ref = flex(q, k, v, block_mask=bm).float()
            r["ours_vs_flex_max_rel"] = float((o_s - ref).abs().max() / ref.abs().max())
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                ref_d = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal).float()
            r["ours_dense_vs_flash_max_rel"] = float((o_d - ref_d).abs().max() / ref_d.abs().max())
            if S <= 4096:  # an independent check: SDPA (math) with the element mask spelled out
                qq = torch.arange(S, device="cuda")
                em = keep[qq[:, None] // BS, qq[None, :] // BS]
                if causal:
                    em &= qq[None, :] <= qq[:, None]
                with sdpa_kernel(SDPBackend.MATH):
                    ref_m = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=em)
                r["ours_vs_masked_sdpa_max_rel"] = float((o_s - ref_m).abs().max() / ref_m.abs().max())
                r["flex_vs_masked_sdpa_max_rel"] = float((ref - ref_m).abs().max() / ref_m.abs().max())
                del ref_m, em
            flops = 4.0 * H * D * pairs
            r["ours_bsr_tflops"] = flops / r["ours_bsr_ms"] / 1e9
            r["flex_tflops"] = flops / r["flex_ms"] / 1e9
            r["ours_over_flex_throughput"] = r["flex_ms"] / r["ours_bsr_ms"]
            r["ours_dense_over_flash"] = r["sdpa_flash_dense_ms"] / r["ours_dense_ms"]
            r["flex_speedup_over_flash"] = r["sdpa_flash_dense_ms"] / r["flex_ms"]
            r["ours_speedup_over_flash"] = r["sdpa_flash_dense_ms"] / r["ours_bsr_ms"]
            # Dense work: seq_len^2 pairs (non-causal) or seq_len (seq_len + 1) / 2 (causal).
            dense_pairs = S * (S + 1) / 2 if causal else S * S
            r["density_vs_dense_baseline"] = pairs / dense_pairs
            r["target_speedup"] = 0.7 / r["density_vs_dense_baseline"]
            if S <= BWD_MAX_SEQ:
                breps = 5 if S <= 4096 else 3
                do = torch.randn(1, H, S, D, device="cuda", generator=g)
                lse = torch.empty(1, H, S, device="cuda")
                dq, dk, dv = (torch.empty(1, H, S, D, device="cuda") for _ in range(3))

                def ours_fb():
                    sparse.fwd_lse(q, k, v, o_s, lse)
                    sparse.bwd(q, k, v, o_s, do, lse, dq, dk, dv)
                r["ours_fwd_lse_ms"] = timeit(lambda: sparse.fwd_lse(q, k, v, o_s, lse), breps)
                r["ours_fwdbwd_ms"] = timeit(ours_fb, breps)
                r["ours_bwd_ms"] = r["ours_fwdbwd_ms"] - r["ours_fwd_lse_ms"]
                if HOPPER:  # every backward kernel of this card beside the default (SATTN_CUDA_HOPPER_BWD=0|1,
                    # the 64-key kernel also with dQ by vector reductions: SATTN_CUDA_HOPPER_BWD_DQ=red)
                    for key, env_v in (("mmasync", {"SATTN_CUDA_HOPPER_BWD": "0"}),
                                       ("wgmma64", {"SATTN_CUDA_HOPPER_BWD": "1"}),
                                       ("wgmma_red", {"SATTN_CUDA_HOPPER_BWD": "1", "SATTN_CUDA_HOPPER_BWD_DQ": "red"})):
                        prev = {n: os.environ.get(n) for n in env_v}
                        os.environ.update(env_v)
                        r[f"ours_{key}_bwd_ms"] = timeit(ours_fb, breps) - r["ours_fwd_lse_ms"]
                        for n, val in prev.items():
                            if val is None:
                                del os.environ[n]
                            else:
                                os.environ[n] = val
                bwd_env = os.environ.get("SATTN_CUDA_HOPPER_BWD")
                r["ours_bwd_path"] = ("mma.sync" if bwd_env == "0" or not HOPPER else "wgmma" if bwd_env == "1"
                                      else "wgmma-ws")
                qg, kg, vg = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
                dob = do.to(torch.bfloat16)

                def flex_fb():
                    qg.grad = kg.grad = vg.grad = None
                    flex(qg, kg, vg, block_mask=bm).backward(dob)
                r["flex_fwdbwd_ms"] = timeit(flex_fb, breps)
                r["flex_bwd_ms"] = r["flex_fwdbwd_ms"] - r["flex_ms"]
                r["ours_over_flex_bwd"] = r["flex_bwd_ms"] / r["ours_bwd_ms"]
                r["ours_over_flex_fwdbwd"] = r["flex_fwdbwd_ms"] / r["ours_fwdbwd_ms"]
                flex_fb()
                ours_fb()
                torch.cuda.synchronize()
                for name, mine, theirs in (("dq", dq, qg.grad), ("dk", dk, kg.grad), ("dv", dv, vg.grad)):
                    t = theirs.float()
                    r[f"ours_{name}_vs_flex_max_rel"] = float((mine - t).abs().max() / t.abs().max())
                del do, lse, dq, dk, dv, qg, kg, vg, dob
            rows.append(r)
            print(json.dumps(r), flush=True)
            del sparse, dense, o_s, o_d, ref, ref_d, bm
        del q, k, v
        torch.cuda.empty_cache()
env = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
       "triton": __import__("triton").__version__ if __import__("importlib").util.find_spec("triton") else None}
json.dump({"env": env, "config": {"heads": H, "block_size": BS, "keep": KEEP, "dtype": "bfloat16", "batch": 1},
           "rows": rows}, open(out_path, "w"), indent=1)

"""sattn attention as a PyTorch operator with a backward pass.

    import torch, sattn.torch
    out = sattn.torch.sparse_attention(q, k, v, pattern="bsr", params={"keep_ratio": 0.1},
                                       causal=True)
    out.sum().backward()          # q.grad, k.grad, v.grad

``sparse_attention`` is a ``torch.autograd.Function`` (``SparseAttention``): the forward runs
libsattn's fast kernel and keeps the log-sum-exp of every row; the backward recomputes the
attention from it (FlashAttention-2: the attention matrix is never stored) with libsattn's
fast backward kernel. The layout is built once, in the forward, and is a constant of the
gradient, also for the specs that choose it from q and k (bsr, nm_structured, topk_per_query,
lsh, landmark), as NSA and Quest do.

With torch >= 2.4 the operator is also registered as the custom op
``torch.ops.sattn.sparse_attention`` (and ``sattn::sparse_attention_backward``) with fake
(meta) implementations, so ``torch.compile`` can trace through it; ``sparse_attention`` uses
it when no ``layout`` object is passed. (There the backward rebuilds the layout from the
saved q and k: the same layout, since building it is deterministic.) Older torch (Debian's
1.13) uses the autograd Function directly.

Tensors: CPU, float32 (bfloat16 tensors are converted to float32, run at precision bf16, and
the output converted back; the gradients flow back in bfloat16). CUDA tensors (float32, fp32
ops, as sattn.sparse_attention runs them; ``CudaSparseAttention``): the forward keeps the
log-sum-exp and the backward runs libsattn's CUDA backward kernels, both through the C API
(sattn_forward / sattn_backward on DLPack tensors); the layout is built on the host, from CPU
copies of q and k for the data-dependent specs, and rebuilt from the same copies by the
backward. They need libsattn built with the CUDA kernels (sattn.ExternalToolFailed says what is
missing otherwise); ``layout=`` and the torch.compile custom op are CPU-only.

``reference_attention`` is the same operator over libsattn's double-precision reference
(forward and backward): slow, for checks such as ``torch.autograd.gradcheck``.
"""
import json
import warnings

import torch

from . import _arrays, _attention, _sattn
from . import capture as _capture
from ._core import Layout, plan_for_shapes, with_softcap
from ._errors import CopyWarning, ExternalToolFailed, InvalidInput, Usage

__all__ = ["sparse_attention", "reference_attention", "SparseAttention", "ReferenceAttention",
           "HAS_CUSTOM_OP"]


def _version():
    parts = []
    for p in torch.__version__.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _np(t):
    return t.detach().numpy()


def _device_of(q, k, v, what):
    """'cpu' or 'cuda': the one device of q, k and v."""
    for n, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise InvalidInput(f"{n}: expected a torch tensor, got {type(x).__name__}")
    devices = {x.device for x in (q, k, v)}
    if len(devices) != 1:
        raise InvalidInput(f"{what}: q, k, v are on different devices ({', '.join(sorted(map(str, devices)))})")
    kind = q.device.type
    if kind not in ("cpu", "cuda"):
        raise InvalidInput(f"{what}: tensors on {kind}; sattn runs CPU and CUDA tensors")
    return kind


def _check_cpu(q, k, v, what):
    if _device_of(q, k, v, what) != "cpu":
        raise Usage(f"{what}: runs CPU tensors (move them with .cpu())")


def _float32_contiguous(x, name):
    """What the kernels read: float32 and contiguous (differentiable conversions, so gradients
    flow back to the caller's dtype and layout)."""
    if x.dtype == torch.bfloat16:
        x = x.float()
    elif x.dtype != torch.float32:
        raise InvalidInput(f"{name}: dtype {x.dtype}, expected torch.float32 or torch.bfloat16 "
                           f"(convert with {name}.float())")
    if not x.is_contiguous():
        warnings.warn(f"sattn: {name} is not contiguous: copied (call {name}.contiguous() first to avoid the "
                      f"copy)", CopyWarning, stacklevel=4)
        x = x.contiguous()
    return x


class SparseAttention(torch.autograd.Function):
    """forward(q, k, v, layout, threads) -> out, with q/k/v float32 contiguous CPU tensors and
    a sattn.Layout built for them; backward by libsattn's fast backward kernel."""

    @staticmethod
    def forward(ctx, q, k, v, layout, threads):
        out = torch.empty(q.shape, dtype=torch.float32)
        lse = torch.empty(q.shape[:3], dtype=torch.float32)
        _sattn.forward(layout._plan, layout._layout, _np(q), _np(k), _np(v), out.numpy(), lse.numpy(), threads)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.layout = layout
        ctx.threads = threads
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        if dout.device.type != "cpu":
            raise ExternalToolFailed("backward not built for cuda: sattn's backward pass runs on the CPU")
        dout = dout.float().contiguous()
        dq = torch.empty_like(q)
        dk = torch.empty_like(k)
        dv = torch.empty_like(v)
        _sattn.backward(ctx.layout._plan, ctx.layout._layout, _np(q), _np(k), _np(v), _np(out), _np(dout),
                        _np(lse), dq.numpy(), dk.numpy(), dv.numpy(), ctx.threads)
        return dq, dk, dv, None, None


class CudaSparseAttention(torch.autograd.Function):
    """forward(q, k, v, plan) -> out, with q/k/v float32 contiguous CUDA tensors of one device and
    a sattn.Plan of an fp32 op: libsattn's CUDA forward keeping the log-sum-exp; backward by its
    CUDA backward kernels (tensor cores for bf16 plans are not used here: CUDA tensors run fp32)."""

    @staticmethod
    def forward(ctx, q, k, v, plan):
        out, lse, host = _attention.cuda_forward(q, k, v, plan, with_lse=True)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.plan = plan
        ctx.host = host
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        dout = dout.to(device=q.device, dtype=torch.float32).contiguous()
        dq, dk, dv = _attention.cuda_backward(q, k, v, out, dout, lse, ctx.plan, ctx.host)
        return dq, dk, dv, None


class ReferenceAttention(torch.autograd.Function):
    """The same operator over libsattn's double-precision reference (forward and backward)."""

    @staticmethod
    def forward(ctx, q, k, v, layout):
        out = torch.empty(q.shape, dtype=torch.float32)
        _sattn.reference_forward(layout._plan, layout._layout, _np(q), _np(k), _np(v), out.numpy(), None)
        ctx.save_for_backward(q, k, v)
        ctx.layout = layout
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout):
        q, k, v = ctx.saved_tensors
        dout = dout.float().contiguous()
        dq = torch.empty_like(q)
        dk = torch.empty_like(k)
        dv = torch.empty_like(v)
        _sattn.reference_backward(ctx.layout._plan, ctx.layout._layout, _np(q), _np(k), _np(v), _np(dout),
                                  dq.numpy(), dk.numpy(), dv.numpy())
        return dq, dk, dv, None


def _prepare(q, k, v, pattern, params, precision, causal, scale, layout, what):
    _check_cpu(q, k, v, what)
    bf16 = q.dtype == torch.bfloat16
    if {x.dtype for x in (q, k, v)} != {q.dtype}:
        raise InvalidInput(f"q, k, v differ in dtype ({q.dtype}, {k.dtype}, {v.dtype})")
    _arrays.check_shapes(tuple(q.shape), tuple(k.shape), tuple(v.shape))
    if bf16:
        warnings.warn("sattn: bfloat16 tensors are converted to float32 (a copy) and run at precision bf16",
                      CopyWarning, stacklevel=3)
    q32, k32, v32 = (_float32_contiguous(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v")))
    prec = precision or ("bf16" if bf16 else "fp32")
    if layout is not None:
        if not isinstance(layout, Layout):
            raise Usage(f"layout must be a sattn.Layout, got {type(layout).__name__}")
        op = layout._plan.op
        if tuple(q.shape) != (op.batch, op.heads, op.seq_len, op.head_dim) or \
                tuple(k.shape) != (op.batch, op.kv_heads, op.kv_len, op.head_dim):
            raise InvalidInput(f"q {list(q.shape)} / k {list(k.shape)} do not match the layout's op")
        plan = layout._plan
    else:
        plan = plan_for_shapes(tuple(q.shape), tuple(k.shape), pattern, params, prec, causal, scale)
    return q32, k32, v32, plan, bf16


def sparse_attention(q, k, v, pattern="auto", params=None, precision=None, causal=False, *, scale=None,
                     softcap=None, layout=None, threads=0, backend=None):
    """Sparse attention with autograd: arguments as sattn.sparse_attention() (softcap included:
    its derivative enters the backward); returns a tensor
    (bfloat16 for bfloat16 inputs) whose backward runs libsattn's fast backward kernel.
    ``layout`` reuses a sattn.Layout (a constant of the gradient)."""
    _capture._record_call(q, k, v, causal, scale)
    if backend not in (None, "cpu", "cuda"):
        raise Usage(f"backend must be 'cpu' or 'cuda' (got {backend!r})")
    params = with_softcap(params, softcap)
    device = _device_of(q, k, v, "sattn.torch.sparse_attention")
    if backend == "cuda" and device != "cuda":
        raise Usage("backend='cuda' needs CUDA tensors (tensor.cuda())")
    if backend == "cpu" and device != "cpu":
        raise Usage(f"backend='cpu' but the tensors are on {q.device}: move them with .cpu(), or leave "
                    f"backend=None to run on their device")
    if device == "cuda":
        return _sparse_attention_cuda(q, k, v, pattern, params, precision, causal, scale, layout)
    q32, k32, v32, plan, bf16 = _prepare(q, k, v, pattern, params, precision, causal, scale, layout,
                                         "sattn.torch.sparse_attention")
    if plan.op.precision not in ("fp32", "bf16"):
        raise InvalidInput(f"precision {plan.op.precision} has no backward pass (fp32 and bf16 only); use "
                           f"sattn.sparse_attention(training=False) for inference at {plan.op.precision}")
    if layout is None and HAS_CUSTOM_OP:
        out = torch.ops.sattn.sparse_attention(q32, k32, v32, pattern or "auto", json.dumps(params or {}),
                                               plan.op.precision, bool(causal), scale, int(threads))[0]
    else:
        if layout is None:
            layout = Layout(_sattn.build_layout(plan, _np(q32), _np(k32)), plan)
        out = SparseAttention.apply(q32, k32, v32, layout, int(threads))
    return out.to(torch.bfloat16) if bf16 else out


def _sparse_attention_cuda(q, k, v, pattern, params, precision, causal, scale, layout):
    if layout is not None:
        raise Usage("layout= is not supported for CUDA tensors: the layout is built for the GPU call")
    if {x.dtype for x in (q, k, v)} != {torch.float32}:
        raise InvalidInput(f"CUDA tensors train at fp32: q, k, v must be torch.float32 (got {q.dtype}, {k.dtype}, "
                           f"{v.dtype}; convert with .float(), or run bfloat16 on the CPU)")
    if precision not in (None, "fp32"):
        raise InvalidInput(f"precision {precision}: CUDA tensors run fp32 ops (pass CPU tensors for {precision})")
    _arrays.check_shapes(tuple(q.shape), tuple(k.shape), tuple(v.shape))
    q32, k32, v32 = (_float32_contiguous(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v")))
    plan = plan_for_shapes(tuple(q.shape), tuple(k.shape), pattern, params, "fp32", causal, scale)
    return CudaSparseAttention.apply(q32, k32, v32, plan)


def reference_attention(q, k, v, layout):
    """The double-precision reference over ``layout``, with autograd (its backward is the
    reference backward): for torch.autograd.gradcheck and other checks. float32 CPU tensors."""
    if not isinstance(layout, Layout):
        raise Usage(f"layout must be a sattn.Layout, got {type(layout).__name__}")
    q32, k32, v32, _, _ = _prepare(q, k, v, None, None, None, False, None, layout,
                                   "sattn.torch.reference_attention")
    return ReferenceAttention.apply(q32, k32, v32, layout)


# torch.library custom op (torch >= 2.4): torch.compile traces through it with the fake kernels.
HAS_CUSTOM_OP = False
if _version() >= (2, 4) and hasattr(torch, "library") and hasattr(torch.library, "custom_op"):
    from typing import Optional, Tuple

    def _plan_and_layout(q, k, pattern, params_json, precision, causal, scale):
        plan = plan_for_shapes(tuple(q.shape), tuple(k.shape), pattern, json.loads(params_json), precision,
                               causal, scale)
        return plan, _sattn.build_layout(plan, _np(q), _np(k))

    @torch.library.custom_op("sattn::sparse_attention", mutates_args=())
    def _sparse_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pattern: str, params_json: str,
                             precision: str, causal: bool, scale: Optional[float],
                             threads: int) -> Tuple[torch.Tensor, torch.Tensor]:
        plan, lay = _plan_and_layout(q, k, pattern, params_json, precision, causal, scale)
        out = torch.empty(q.shape, dtype=torch.float32)
        lse = torch.empty(q.shape[:3], dtype=torch.float32)
        _sattn.forward(plan, lay, _np(q), _np(k), _np(v), out.numpy(), lse.numpy(), threads)
        return out, lse

    @_sparse_attention_op.register_fake
    def _(q, k, v, pattern, params_json, precision, causal, scale, threads):
        return q.new_empty(q.shape), q.new_empty(q.shape[:3])

    @torch.library.custom_op("sattn::sparse_attention_backward", mutates_args=())
    def _sparse_attention_backward_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                                      lse: torch.Tensor, dout: torch.Tensor, pattern: str, params_json: str,
                                      precision: str, causal: bool, scale: Optional[float],
                                      threads: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        plan, lay = _plan_and_layout(q, k, pattern, params_json, precision, causal, scale)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        _sattn.backward(plan, lay, _np(q), _np(k), _np(v), _np(out), _np(dout.contiguous()), _np(lse),
                        dq.numpy(), dk.numpy(), dv.numpy(), threads)
        return dq, dk, dv

    @_sparse_attention_backward_op.register_fake
    def _(q, k, v, out, lse, dout, pattern, params_json, precision, causal, scale, threads):
        return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)

    def _setup_context(ctx, inputs, output):
        q, k, v, pattern, params_json, precision, causal, scale, threads = inputs
        out, lse = output
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.args = (pattern, params_json, precision, causal, scale, threads)

    def _backward(ctx, dout, dlse):
        q, k, v, out, lse = ctx.saved_tensors
        if dout.device.type != "cpu":
            raise ExternalToolFailed("backward not built for cuda: sattn's backward pass runs on the CPU")
        dq, dk, dv = torch.ops.sattn.sparse_attention_backward(q, k, v, out, lse, dout.float(), *ctx.args)
        return dq, dk, dv, None, None, None, None, None, None

    _sparse_attention_op.register_autograd(_backward, setup_context=_setup_context)
    HAS_CUSTOM_OP = True

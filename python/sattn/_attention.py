"""sparse_attention() and the forward/backward/reference entry points over numpy and torch."""
import warnings

import numpy as np

from . import _arrays, _sattn
from . import capture as _capture
from ._core import Layout, plan_for_shapes, with_softcap
from ._errors import ExternalToolFailed, InvalidInput, Usage

_PRECISIONS = ("fp32", "bf16", "i8", "i4")


def _precision(precision, inputs):
    if precision is None:
        return "bf16" if inputs.is_bf16 else "fp32"
    if precision not in _PRECISIONS:
        raise InvalidInput(f"unknown precision {precision!r} (fp32, bf16, i8, i4)")
    return precision


def _check_backend(backend, inputs):
    """The backend the call runs on: backend=None follows the inputs' device."""
    if backend is None:
        backend = "cuda" if inputs.is_cuda else "cpu"
    if backend not in ("cpu", "cuda"):
        raise Usage(f"backend must be 'cpu' or 'cuda' (got {backend!r}); rvv, sim and imc run through the "
                    f"sattn tools")
    if backend == "cpu" and inputs.is_cuda:
        raise Usage(f"backend='cpu' but the tensors are on {inputs.device}: move them with .cpu(), "
                    f"or leave backend=None to run on their device")
    if backend == "cuda":
        if not inputs.is_cuda:
            raise Usage("backend='cuda' needs CUDA tensors (tensor.cuda())")
    return backend


def _forward_cuda(inputs, plan, lay):
    """The forward of CUDA tensors through libsattn's C API (sattn_forward on DLPack tensors):
    fp32 ops; the layout is built on the host (from CPU copies of q and k for the data-dependent
    specs). libsattn without the CUDA kernels, or no GPU: ExternalToolFailed naming which."""
    if lay is not None:
        raise Usage("layout= is not supported for CUDA tensors: the layout is built for the GPU call")
    q, k, v = inputs.tensors
    return cuda_forward(q, k, v, plan, with_lse=False)[0]


def _cuda_op_doc(plan):
    import json
    doc = dict(plan.op.to_dict(), spec=plan.spec)
    doc["schema"] = "sattn.op/v1"
    return json.dumps(doc)


def cuda_forward(q, k, v, plan, with_lse):
    """q, k, v: contiguous float32 CUDA tensors of one device. Returns (out, lse or None, host),
    host being the CPU copies of q and k that a data-dependent spec's layout is built from (None
    for the others); cuda_backward takes the same plan and host to rebuild that layout."""
    import torch
    host_q = host_k = None
    if _sattn.is_data_dependent(plan.spec):
        host_q, host_k = q.detach().cpu().numpy(), k.detach().cpu().numpy()
    out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
    lse = torch.empty(q.shape[:3], dtype=torch.float32, device=q.device) if with_lse else None
    with torch.cuda.device(q.device):
        torch.cuda.synchronize()
        _sattn.forward_cuda(_cuda_op_doc(plan), plan.spec, q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(),
                            list(q.shape), list(k.shape), q.device.index or 0, host_q, host_k,
                            lse.data_ptr() if lse is not None else 0)
        torch.cuda.synchronize()
    return out, lse, (host_q, host_k)


def cuda_backward(q, k, v, out, dout, lse, plan, host):
    """The gradients (dq, dk, dv) of cuda_forward's call, on the GPU (sattn_backward on CUDA
    tensors): every tensor contiguous float32 on q's device."""
    import torch
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    with torch.cuda.device(q.device):
        torch.cuda.synchronize()
        _sattn.backward_cuda(_cuda_op_doc(plan), plan.spec, q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(),
                             dout.data_ptr(), lse.data_ptr(), dq.data_ptr(), dk.data_ptr(), dv.data_ptr(),
                             list(q.shape), list(k.shape), q.device.index or 0, host[0], host[1])
        torch.cuda.synchronize()
    return dq, dk, dv


def _canonical_scheme(scheme, op):
    """The scheme as ops write it (a name, or the canonical key=value list); InvalidInput if bad."""
    from ._core import Op
    return Op(seq_len=1, head_dim=op.head_dim, precision="i8", quant_scheme=scheme).quant_scheme


def _resolve(q, k, v, pattern, params, precision, causal, scale, layout, quant_scheme=None):
    inputs = _arrays.prepare(q, k, v)
    prec = _precision(precision, inputs)
    if layout is not None:
        if not isinstance(layout, Layout):
            raise Usage(f"layout must be a sattn.Layout (from sattn.layout()), got {type(layout).__name__}")
        plan = layout._plan
        if prec != plan.op.precision and precision is not None:
            raise Usage(f"precision {prec!r} differs from the layout's op ({plan.op.precision!r})")
        if quant_scheme is not None and _canonical_scheme(quant_scheme, plan.op) != plan.op.quant_scheme:
            raise Usage(f"quant_scheme {quant_scheme!r} differs from the layout's op ({plan.op.quant_scheme!r}): "
                        f"build the layout with it (sattn.layout(..., quant_scheme=...) or an Op)")
        op = plan.op
        want_q = (op.batch, op.heads, op.seq_len, op.head_dim)
        want_k = (op.batch, op.kv_heads, op.kv_len, op.head_dim)
        if tuple(q.shape) != want_q or tuple(k.shape) != want_k:
            raise InvalidInput(f"q {list(q.shape)} / k {list(k.shape)} do not match the layout's op "
                               f"(q {list(want_q)}, k {list(want_k)})")
        return inputs, plan, layout
    plan = plan_for_shapes(tuple(q.shape), tuple(k.shape), pattern, params, prec, causal, scale, quant_scheme)
    return inputs, plan, None


def _new_like(inputs, shape):
    """A float32 output of the inputs' kind: (object returned to the caller, its numpy view)."""
    if inputs.kind == "numpy":
        a = np.empty(shape, dtype=np.float32)
        return a, a
    import torch
    t = torch.empty(shape, dtype=torch.float32, device=inputs.device)
    return t, t.numpy()


def attention_forward(q, k, v, pattern="auto", params=None, precision=None, causal=False, *, scale=None,
                      softcap=None, layout=None, threads=0, quant_scheme=None):
    """The forward pass that a backward can follow: returns ``(out, lse, layout)``.

    ``lse`` is the natural-log log-sum-exp of each row's scaled scores over its allowed keys,
    [batch, heads, seq_len] float32 (-inf for a row with no allowed key, whose output is 0);
    ``layout`` is the sattn.Layout used (pass it to attention_backward, and to later calls to
    reuse it). Arguments as for sparse_attention(); inputs on the CPU; float32 in and out.
    """
    _capture._record_call(q, k, v, causal, scale)
    inputs, plan, lay = _resolve(q, k, v, pattern, with_softcap(params, softcap), precision, causal, scale, layout,
                                 quant_scheme)
    if _check_backend(None, inputs) == "cuda":
        raise ExternalToolFailed("attention_forward: backward not built for cuda arrays here; CUDA tensors train "
                                 "through sattn.torch.sparse_attention (training=True)")
    qa, ka, va = inputs.arrays
    if lay is None:
        lay = Layout(_sattn.build_layout(plan, qa, ka), plan)
    out, out_a = _new_like(inputs, qa.shape)
    lse, lse_a = _new_like(inputs, qa.shape[:3])
    _sattn.forward(plan, lay._layout, qa, ka, va, out_a, lse_a, int(threads))
    return out, lse, lay


def attention_backward(q, k, v, out, dout, lse, layout, *, threads=0):
    """Gradients of the sparse attention at (q, k, v): returns ``(dq, dk, dv)``.

    ``out``, ``lse`` and ``layout`` are what attention_forward() returned for these inputs;
    ``dout`` is the gradient of the loss with respect to ``out``. FlashAttention-2 recomputation
    from lse: the attention matrix is never materialized. The layout is a constant of the
    gradient, also for specs that choose it from the data. fp32 and bf16 only; CPU only (on CUDA:
    ExternalToolFailed "backward not built for cuda"; CUDA tensors train through
    sattn.torch.sparse_attention). dk and dv have k's shape (GQA: the query heads of one KV head
    summed).
    """
    if not isinstance(layout, Layout):
        raise Usage(f"layout must be the sattn.Layout that attention_forward returned, got {type(layout).__name__}")
    inputs = _arrays.prepare(q, k, v)
    if inputs.is_cuda:
        raise ExternalToolFailed("backward not built for cuda: sattn's backward pass runs on the CPU")
    plan = layout._plan
    if plan.op.precision not in ("fp32", "bf16"):
        raise InvalidInput(f"backward: precision {plan.op.precision} has no backward pass (fp32 and bf16 only)")
    qa, ka, va = inputs.arrays
    oa = _arrays.float32_view(out, "out")
    ga = _arrays.float32_view(dout, "dout")
    la = _lse_view(lse, qa.shape[:3])
    if oa.shape != qa.shape or ga.shape != qa.shape:
        raise InvalidInput(f"out {list(oa.shape)} and dout {list(ga.shape)} must have q's shape {list(qa.shape)}")
    dq, dq_a = _new_like(inputs, qa.shape)
    dk, dk_a = _new_like(inputs, ka.shape)
    dv, dv_a = _new_like(inputs, va.shape)
    _sattn.backward(plan, layout._layout, qa, ka, va, oa, ga, la, dq_a, dk_a, dv_a, int(threads))
    return dq, dk, dv


def _lse_view(lse, shape):
    if _arrays.is_torch_tensor(lse):
        lse = lse.detach()
        if lse.device.type != "cpu":
            raise ExternalToolFailed("backward not built for cuda: sattn's backward pass runs on the CPU")
        lse = lse.numpy()
    if not isinstance(lse, np.ndarray) or lse.dtype != np.float32 or tuple(lse.shape) != tuple(shape):
        raise InvalidInput(f"lse: expected the float32 [batch, heads, seq_len] = {list(shape)} array that "
                           f"attention_forward returned")
    return np.ascontiguousarray(lse)


def reference_attention(q, k, v, layout, *, return_lse=False, quantized=False):
    """The double-precision reference forward over ``layout``: what every sattn kernel is checked
    against. Returns the float32 output, or ``(out, lse)`` with ``return_lse=True`` (lse as in
    attention_forward). Plain softmax over each row's allowed keys with double accumulation and
    fp32 semantics: the op's precision (bf16, i8, i4) is not applied. Slow; for checks.

    ``quantized=True`` (i8/i4 ops): the same-quantized reference instead, which applies the op's
    quantization scheme (its quant_scheme, else the recommended one; sattn-quant(7)) with the
    same integer codes, scales, means and P/V rounding as the kernels, in double (no lse)."""
    if not isinstance(layout, Layout):
        raise Usage(f"layout must be a sattn.Layout, got {type(layout).__name__}")
    inputs = _arrays.prepare(q, k, v)
    if inputs.is_cuda:
        raise Usage("the reference runs on the CPU: pass CPU arrays or tensors")
    qa, ka, va = inputs.arrays
    out, out_a = _new_like(inputs, qa.shape)
    lse = lse_a = None
    if return_lse:
        lse, lse_a = _new_like(inputs, qa.shape[:3])
    _sattn.reference_forward(layout._plan, layout._layout, qa, ka, va, out_a, lse_a, bool(quantized))
    return (out, lse) if return_lse else out


def reference_attention_backward(q, k, v, dout, layout):
    """The double-precision reference backward over ``layout``: ``(dq, dk, dv)`` (float32)."""
    if not isinstance(layout, Layout):
        raise Usage(f"layout must be a sattn.Layout, got {type(layout).__name__}")
    inputs = _arrays.prepare(q, k, v)
    if inputs.is_cuda:
        raise Usage("the reference runs on the CPU: pass CPU arrays or tensors")
    qa, ka, va = inputs.arrays
    ga = _arrays.float32_view(dout, "dout")
    if ga.shape != qa.shape:
        raise InvalidInput(f"dout {list(ga.shape)} must have q's shape {list(qa.shape)}")
    dq, dq_a = _new_like(inputs, qa.shape)
    dk, dk_a = _new_like(inputs, ka.shape)
    dv, dv_a = _new_like(inputs, va.shape)
    _sattn.reference_backward(layout._plan, layout._layout, qa, ka, va, ga, dq_a, dk_a, dv_a)
    return dq, dk, dv


def sparse_attention(q, k, v, pattern="auto", params=None, precision=None, causal=False, training=False,
                     backend=None, *, scale=None, softcap=None, layout=None, threads=0, quant_scheme=None):
    """Sparse attention of q, k, v: softmax(cap(q k^T * scale), over the pattern's allowed keys) v.

    q        [batch, heads, seq_len, head_dim]; k, v [batch, kv_heads, kv_len, head_dim]
             (heads a multiple of kv_heads: grouped-query attention). numpy arrays or torch
             tensors, float32 (torch bfloat16 too: converted, run at bf16, returned as bf16).
             Contiguous float32 inputs are never copied; others are copied with a CopyWarning.
    pattern  "auto" (the selector picks), a sattn spec (dense, sliding_window, bsr,
             block_local_global, nm_structured, topk_per_query, lsh, landmark, quest) or a prototype
             name (block_topk, sliding_global, blg, sw, nm, topk); see sattn.PATTERNS.
    params   the pattern's attributes: window_size, dilation, wrap, block_size, keep_ratio,
             comp_block_size, window_blocks, global_tokens, nm_n, nm_m, topk_k, lsh_buckets,
             lsh_rounds, seed, num_landmarks, landmark_iters, page_size, top_pages, scale_q/k/v; defaults filled.
    precision  fp32 (default), bf16, i8 or i4 (bf16 inputs rounded, fp32 accumulation).
    quant_scheme  i8/i4: how Q, K, V and P are quantized (sattn-quant(7)): "per-tensor", "sage",
             "smooth" or a key=value list ("smooth,block=4", "q=token,k=block,pv=i8"). None: the
             recommended scheme (smooth at i8, smooth,block=2 at i4), with scales from the data.
    causal   query i sees keys j <= i + (kv_len - seq_len).
    training False: the result carries no gradient. True (torch tensors): the result is part of
             the autograd graph (sattn.torch.sparse_attention; backward on the CPU kernel, on
             the GPU for CUDA tensors).
    backend  None (the inputs' device), "cpu" or "cuda".
    scale    softmax scale (default 1/sqrt(head_dim)).
    softcap  logit soft-capping (Gemma 2): each scaled score s becomes softcap * tanh(s / softcap)
             before the softmax (default None: no cap). Runs on the CPU (forward and backward);
             a backend whose capabilities lack it refuses the op before any work.
    layout   a sattn.Layout to reuse (from sattn.layout() or attention_forward()).
    threads  host threads (0: all cores).

    Returns the output [batch, heads, seq_len, head_dim], of the inputs' type (numpy array or
    torch tensor on the same device). A query row with no allowed key gives 0.
    """
    kind = _arrays.kind_of(q)
    if training:
        if quant_scheme is not None:
            raise InvalidInput("quant_scheme applies to i8/i4, which have no backward pass (training=True runs "
                               "fp32 and bf16)")
        if kind != "torch":
            raise Usage("training=True needs torch tensors (autograd); with numpy arrays use "
                        "sattn.attention_forward() and sattn.attention_backward()")
        from . import torch as sattn_torch
        return sattn_torch.sparse_attention(q, k, v, pattern=pattern, params=params, precision=precision,
                                            causal=causal, scale=scale, softcap=softcap, layout=layout,
                                            threads=threads,
                                            backend=backend)
    _capture._record_call(q, k, v, causal, scale)
    if kind == "torch":
        import torch
        if torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v)):
            warnings.warn("sattn.sparse_attention(training=False): the inputs require grad but the output is "
                          "not part of the autograd graph; pass training=True to train through it",
                          UserWarning, stacklevel=2)
    inputs, plan, lay = _resolve(q, k, v, pattern, with_softcap(params, softcap), precision, causal, scale, layout,
                                 quant_scheme)
    if _check_backend(backend, inputs) == "cuda":
        out = _forward_cuda(inputs, plan, lay)
        return out.to(_arrays._torch().bfloat16) if inputs.is_bf16 else out
    qa, ka, va = inputs.arrays
    if lay is None:
        lay = Layout(_sattn.build_layout(plan, qa, ka), plan)
    out, out_a = _new_like(inputs, qa.shape)
    _sattn.forward(plan, lay._layout, qa, ka, va, out_a, None, int(threads))
    if inputs.is_bf16:
        import torch
        out = out.to(torch.bfloat16)
    return out

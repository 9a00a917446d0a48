"""Capture a PyTorch model's per-layer post-RoPE Q, K and V for the sattn tools.

    import sattn.capture
    layers = [block.attn for block in model.blocks]           # the attention modules, in order
    with sattn.capture.capture(layers, "data/mine", sample="calib") as cap:
        model(tokens)
    # data/mine/calib/layer0/{q,k,v}.npy ... and data/mine/ops/layer0.json ...

    sattn run data/mine/ops/layer0.json --data data/mine/calib/layer0
    sattn-calibrate data/mine/ops/layer0.json --data 'data/mine/*/layer0'

Forward hooks (``register_forward_pre_hook`` / ``register_forward_hook``) on each attention
module record what its attention consumes during one forward pass, found in this order:

1. ``module.capture``: a module with a ``capture`` attribute set to ``None`` (data/model.py's
   protocol) gets a dict there for the call and is expected to store the tensors it feeds its
   attention in it as ``"q"``, ``"k"``, ``"v"``;
2. sattn's own attention (``sattn.sparse_attention``, ``sattn.torch.sparse_attention``)
   called inside the module: its q, k, v;
3. ``torch.nn.functional.scaled_dot_product_attention`` (torch >= 2.0) called inside the
   module: its query, key, value (and ``is_causal``).
Each is what the attention really reads: after the rotary embedding, before the softmax scale.

The directory layout is the one the tools read (``--data DIR``) and data/README.md describes:
``OUT/SAMPLE/layer{L}/{q,k,v}.npy`` (C order, ``[batch, heads, seq, head_dim]``; q with the
query heads, k and v with the KV heads) and ``OUT/ops/layer{L}.json`` (sattn.op/v1: shape,
causal, precision fp32, the scale when the model's differs from 1/sqrt(head_dim)).
Files are written atomically (temporary file + rename) when the ``with`` block ends without
an exception.

Grouped-query attention: models that repeat K/V heads before calling the attention (common
with scaled_dot_product_attention) hand it ``heads`` K/V heads; pass ``kv_heads=`` and the
capture keeps one head of each group, after checking that the copies are equal.
"""
import contextlib
import json
import math
import os
import tempfile
import threading

import numpy as np

from ._errors import InvalidInput, Usage

__all__ = ["capture", "Capture"]

_active = threading.local()  # the Capture recording on this thread, and its current layer


def _record_call(q, k, v, causal=None, scale=None):
    """Called by sattn's attention entry points: records the call for the layer running now."""
    cap = getattr(_active, "capture", None)
    if cap is not None:
        cap._record(q, k, v, causal, scale, "sattn")


class Capture:
    """What one ``with sattn.capture.capture(...)`` block recorded: ``tensors`` (per layer, a
    dict of float32 numpy arrays q, k, v), ``ops`` (per layer, the sattn.op/v1 dict written),
    ``paths`` (per layer, the data directory written), ``source`` (per layer: module, sattn
    or sdpa)."""

    def __init__(self, modules, out_dir, sample, dtype, causal, kv_heads, op_name):
        if isinstance(modules, dict):
            modules = list(modules.values())
        modules = list(modules)
        if not modules:
            raise Usage("capture: name at least one attention module")
        if np.dtype(dtype) not in (np.float32, np.float16):
            raise Usage(f"capture: dtype must be float32 or float16 (got {dtype})")
        if not sample or "/" in sample or sample in (".", "..", "ops"):
            raise Usage(f"capture: bad sample name {sample!r}")
        self.modules = modules
        self.out_dir = str(out_dir)
        self.sample = sample
        self.dtype = np.dtype(dtype)
        self.default_causal = causal
        self.kv_heads = kv_heads
        self.op_name = op_name
        self.tensors = {}
        self.ops = {}
        self.paths = {}
        self.source = {}
        self._calls = {}
        self._meta = {}
        self._layer = None
        self._handles = []
        self._sdpa = None

    # --- recording -------------------------------------------------------------------------
    def _record(self, q, k, v, causal, scale, source):
        L = self._layer
        if L is None:
            return
        if L in self._calls and self.source.get(L) != "module":
            raise Usage(f"capture: layer {L} called the attention twice in one forward pass: capture one "
                        f"call per layer (one forward pass per sample)")
        if L in self._calls:  # the module's own capture dict wins over the attention it calls
            return
        self._calls[L] = tuple(_to_numpy(x) for x in (q, k, v))
        self._meta[L] = (causal, scale)
        self.source[L] = source

    def _pre_hook(self, layer):
        def hook(module, args):
            if layer in self._calls:
                raise Usage(f"capture: layer {layer} ran twice inside one capture: capture one forward pass "
                            f"per sample")
            self._layer = layer
            if hasattr(module, "capture") and module.capture is None:
                module.capture = {}
            self._patch_sdpa()
        return hook

    def _post_hook(self, layer):
        def hook(module, args, output):
            self._unpatch_sdpa()
            box = getattr(module, "capture", None)
            if isinstance(box, dict):
                module.capture = None
                if all(t in box for t in ("q", "k", "v")):
                    self._calls[layer] = tuple(_to_numpy(box[t]) for t in ("q", "k", "v"))
                    self._meta[layer] = (None, None)
                    self.source[layer] = "module"
            self._layer = None
        return hook

    def _patch_sdpa(self):
        try:
            import torch.nn.functional as F
        except ImportError:
            return
        original = getattr(F, "scaled_dot_product_attention", None)
        if original is None or self._sdpa is not None:
            return
        cap = self

        def recording_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, *a, **kw):
            scale = kw.get("scale")
            if attn_mask is None:
                cap._record(query, key, value, bool(is_causal), scale, "sdpa")
            return original(query, key, value, attn_mask, dropout_p, is_causal, *a, **kw)

        self._sdpa = original
        F.scaled_dot_product_attention = recording_sdpa

    def _unpatch_sdpa(self):
        if self._sdpa is not None:
            import torch.nn.functional as F
            F.scaled_dot_product_attention = self._sdpa
            self._sdpa = None

    def _start(self):
        if getattr(_active, "capture", None) is not None:
            raise Usage("capture: another capture is already recording on this thread")
        for L, m in enumerate(self.modules):
            self._handles.append(m.register_forward_pre_hook(self._pre_hook(L)))
            self._handles.append(m.register_forward_hook(self._post_hook(L)))
        _active.capture = self

    def _stop(self):
        _active.capture = None
        self._unpatch_sdpa()
        for h in self._handles:
            h.remove()
        self._handles = []
        for m in self.modules:
            if isinstance(getattr(m, "capture", None), dict):
                m.capture = None

    # --- writing -----------------------------------------------------------------------------
    def _finish(self):
        missing = [L for L in range(len(self.modules)) if L not in self._calls]
        if missing:
            raise Usage(f"capture: no q/k/v recorded for layer(s) {missing}: the module neither fills a "
                        f"`capture` dict nor calls sattn's attention or scaled_dot_product_attention "
                        f"without a mask")
        for L in range(len(self.modules)):
            q, k, v = self._calls[L]
            k, v = self._collapse_kv(L, q, k, v)
            causal, scale = self._meta[L]
            causal = self.default_causal if causal is None else causal
            op = self._op_for(L, q, k, causal, scale)
            d = os.path.join(self.out_dir, self.sample, f"layer{L}")
            os.makedirs(d, exist_ok=True)
            for name, x in (("q", q), ("k", k), ("v", v)):
                if not np.isfinite(x).all():
                    raise InvalidInput(f"capture: layer {L}: {name} holds NaN or Inf")
                _atomic_save(os.path.join(d, f"{name}.npy"), np.ascontiguousarray(x.astype(self.dtype)))
            ops_dir = os.path.join(self.out_dir, "ops")
            os.makedirs(ops_dir, exist_ok=True)
            _atomic_write(os.path.join(ops_dir, f"layer{L}.json"), json.dumps(op) + "\n")
            self.tensors[L] = {"q": q, "k": k, "v": v}
            self.ops[L] = op
            self.paths[L] = d

    def _collapse_kv(self, L, q, k, v):
        for name, x in (("q", q), ("k", k), ("v", v)):
            if x.ndim != 4:
                raise InvalidInput(f"capture: layer {L}: {name} is {x.ndim}-D, expected [batch, heads, seq, "
                                   f"head_dim]")
        want = self.kv_heads
        if want is None or k.shape[1] == want:
            return k, v
        if k.shape[1] % want:
            raise InvalidInput(f"capture: layer {L}: k has {k.shape[1]} heads, not a multiple of kv_heads={want}")
        g = k.shape[1] // want
        out = []
        for name, x in (("k", k), ("v", v)):
            grouped = x.reshape(x.shape[0], want, g, *x.shape[2:])
            if not np.array_equal(grouped, np.repeat(grouped[:, :, :1], g, axis=2)):
                raise InvalidInput(f"capture: layer {L}: {name}'s heads are not {g} copies of {want} KV heads "
                                   f"(kv_heads={want} does not describe this model)")
            out.append(np.ascontiguousarray(grouped[:, :, 0]))
        return out

    def _op_for(self, L, q, k, causal, scale):
        from ._core import Op
        op = {"schema": "sattn.op/v1", "name": self.op_name.format(layer=L), "batch": int(q.shape[0]),
              "heads": int(q.shape[1]), "kv_heads": int(k.shape[1]), "seq_len": int(q.shape[2])}
        if k.shape[2] != q.shape[2]:
            op["kv_len"] = int(k.shape[2])
        op["head_dim"] = int(q.shape[3])
        op["causal"] = bool(causal)
        if scale is not None and not math.isclose(float(scale), 1 / math.sqrt(q.shape[3]), rel_tol=1e-7):
            op["scale"] = float(scale)
        op["precision"] = "fp32"
        Op(**{k_: v_ for k_, v_ in op.items() if k_ != "schema"})  # validates (InvalidInput)
        return op


def _to_numpy(x):
    if isinstance(x, np.ndarray):
        return x.astype(np.float32, copy=True)
    return x.detach().float().cpu().numpy().copy()


def _atomic_save(path, array):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _atomic_write(path, text):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@contextlib.contextmanager
def capture(modules, out_dir, *, sample="sample0", dtype="float32", causal=True, kv_heads=None,
            op_name="layer{layer}"):
    """Records one forward pass's per-layer Q/K/V and writes them under ``out_dir``.

    modules   the attention modules, in layer order (a list, or a dict name -> module)
    out_dir   written: OUT/SAMPLE/layer{L}/{q,k,v}.npy and OUT/ops/layer{L}.json
    sample    the sample's directory name (one ``with`` block per sample: calib, eval, ...)
    dtype     float32 or float16 (as data/real/)
    causal    for the op files when the call does not say (the module's capture dict)
    kv_heads  collapse K/V heads repeated for GQA before the attention call (see the module doc)
    op_name   the ops' names, formatted with ``layer``

    Yields a Capture; the files are written when the block ends without an exception.
    """
    cap = Capture(modules, out_dir, sample, dtype, causal, kv_heads, op_name)
    cap._start()
    try:
        yield cap
    finally:
        cap._stop()
    cap._finish()

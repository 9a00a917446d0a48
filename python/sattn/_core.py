"""Ops, patterns, selection, layouts and calibration: the Python face of libsattn's op model."""
import functools
import json
import math
import os
import sys
import warnings

import numpy as np

from . import _sattn
from ._errors import InvalidInput, Usage

# The patterns sparse_attention() accepts: sattn's spec names, and the earlier prototype's names
# mapped onto them (docs/python.md, "Patterns"). "auto" lets the selector choose.
SPECS = tuple(_sattn.spec_names())
PROTOTYPE_PATTERNS = {
    "block_topk": "bsr",
    "sliding_global": "block_local_global",
    "blg": "block_local_global",
    "sw": "sliding_window",
    "nm": "nm_structured",
    "topk": "topk_per_query",
}

# Keys of sattn.op/v1 that describe the shape: they come from the tensors, not from params.
_SHAPE_KEYS = {"batch", "heads", "num_heads", "kv_heads", "num_kv_heads", "seq_len", "kv_len", "head_dim"}


def canonical_pattern(pattern):
    """The sattn spec name of a pattern (a spec name or a prototype name); InvalidInput if unknown."""
    if not isinstance(pattern, str):
        raise InvalidInput(f"pattern must be a string, got {type(pattern).__name__}")
    return _sattn.canonical_spec(pattern)


def _warn_all(ws):
    for w in ws:
        warnings.warn(f"sattn: {w}", UserWarning, stacklevel=3)


class Op:
    """One attention problem (sattn.op/v1): shape, numerics and pattern attributes.

    Build one from attributes, parse one from text, or read ops from a file::

        op = sattn.Op(heads=8, seq_len=4096, head_dim=64, causal=True, window_size=128)
        ops = sattn.Op.parse('"sattn.sparse_attention"() {seq_len = 1024 : i64} : () -> ()')
        ops = sattn.Op.read("examples/bsr.mlir")

    Attribute names are those of op files (sattn-artifacts(7)): batch, heads, kv_heads, seq_len,
    kv_len, head_dim, causal, scale, precision, quant_scheme (i8/i4: per-tensor, sage, smooth or a
    key=value list, sattn-quant(7)), scale_q/k/v, spec (a forced spec), and the
    pattern attributes window_size, dilation, wrap, block_size, keep_ratio, comp_block_size,
    window_blocks, global_tokens, nm_n, nm_m, topk_k, lsh_buckets, lsh_rounds, seed,
    num_landmarks, landmark_iters, page_size, top_pages, tile_M/S/D, tile_rows (and the prototype's
    gqa_group_size, num_heads). Values are validated as in a file: a bad one raises
    sattn.InvalidInput with the library's message; an unknown name too.
    """

    __slots__ = ("_op",)

    def __init__(self, **attrs):
        doc = {"schema": "sattn.op/v1"}
        doc.update(attrs)
        try:
            text = json.dumps(doc, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"op attributes: {e}") from None
        self._op = _sattn.op_from_json(text)

    @classmethod
    def _wrap(cls, cop):
        o = cls.__new__(cls)
        o._op = cop
        return o

    @classmethod
    def parse(cls, text, format="auto", filename="<string>"):
        """Every op in ``text`` (MLIR generic form, JSON, JSON Lines or YAML; ``format`` auto,
        mlir, json or yaml). Unknown attributes warn (UserWarning) and are ignored, as in the tools."""
        ops, ws = _sattn.parse_ops(text, filename, format)
        _warn_all(ws)
        return [cls._wrap(o) for o in ops]

    @classmethod
    def read(cls, path, format="auto"):
        """Every op in a file (``-`` is stdin); the format comes from the extension or the content."""
        ops, ws = _sattn.read_ops(str(path), format)
        _warn_all(ws)
        return [cls._wrap(o) for o in ops]

    name = property(lambda self: self._op.name)
    batch = property(lambda self: self._op.batch)
    heads = property(lambda self: self._op.heads)
    kv_heads = property(lambda self: self._op.kv_heads)
    seq_len = property(lambda self: self._op.seq_len)
    kv_len = property(lambda self: self._op.kv_len)
    head_dim = property(lambda self: self._op.head_dim)
    causal = property(lambda self: self._op.causal)
    precision = property(lambda self: self._op.precision)
    quant_scheme = property(lambda self: self._op.quant_scheme,
                            doc="the i8/i4 quantization scheme (sattn-quant(7)) as written, or None: the "
                                "recommended one (smooth at i8, smooth,block=2 at i4)")
    softmax_scale = property(lambda self: self._op.softmax_scale, doc="scale, else 1/sqrt(head_dim)")
    softcap = property(lambda self: self._op.softcap, doc="the logit soft-cap c (c*tanh(s/c)), or None")
    location = property(lambda self: self._op.location, doc="file:line:col where the op was read")

    @property
    def spec(self):
        """The forced spec (the op's spec attribute), or None."""
        return self.to_dict().get("spec")

    def to_dict(self):
        """The op's attributes as written in sattn.op/v1 (shape, numerics, attributes given)."""
        return dict(self._op.to_dict())

    def to_json(self):
        """The op as one sattn.op/v1 JSON line (readable by every sattn tool)."""
        return json.dumps({"schema": "sattn.op/v1", **self.to_dict()})

    def replace(self, **changes):
        """A new Op with some attributes changed (``None`` removes one)."""
        d = self.to_dict()
        for key, value in changes.items():
            if value is None:
                d.pop(key, None)
            else:
                d[key] = value
        return Op(**d)

    def params(self, spec):
        """The resolved parameters of ``spec`` for this op (defaults filled, validated)."""
        return dict(_sattn.resolve_params(self._op, canonical_pattern(spec)))

    def __repr__(self):
        return "sattn.Op(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


class Candidate:
    """One spec the selector considered: ``spec``, ``feasible``, ``why_not``, ``terms`` (the
    cost model's terms, a dict) and ``cost`` (lower is better)."""

    __slots__ = ("spec", "feasible", "why_not", "terms", "cost")

    def __init__(self, c):
        self.spec = c.spec
        self.feasible = c.feasible
        self.why_not = c.why_not
        self.terms = json.loads(c.terms_json)
        self.cost = c.cost

    def __repr__(self):
        return f"Candidate({self.spec!r}, feasible={self.feasible}, cost={self.cost:.4g})"


def _fmt(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return f"{v:.3g}" if math.isfinite(v) else "-"
    return "-" if v is None else json.dumps(v)


class Plan:
    """A selected spec for an op: ``op``, ``spec``, ``params`` (resolved), ``backend`` (the cost
    model's target), ``kind`` (override, rule, cost, default), ``reason`` and ``candidates``."""

    __slots__ = ("_plan",)

    def __init__(self, cplan):
        self._plan = cplan

    op = property(lambda self: Op._wrap(self._plan.op))
    spec = property(lambda self: self._plan.spec)
    params = property(lambda self: dict(self._plan.params))
    backend = property(lambda self: self._plan.backend)
    kind = property(lambda self: self._plan.kind)
    reason = property(lambda self: self._plan.reason)
    candidates = property(lambda self: [Candidate(c) for c in self._plan.candidates])

    def explain(self):
        """The selection as text: the choice, the reason, and each candidate's cost terms (the
        table ``sattn-select --explain`` prints)."""
        op = self._plan.op
        lines = [f"op {op.name} on {self.backend}: {self.spec} [{self.kind}]", f"reason: {self.reason}"]
        cols = ["", "candidate", "feasible", "pairs", "macs", "kv_bytes", "working_set", "l1_fit", "total"]
        rows = []
        notes = []
        for c in self.candidates:
            t = c.terms
            rows.append(["*" if c.spec == self.spec else "", c.spec, _fmt(c.feasible), _fmt(t.get("pairs")),
                         _fmt(t.get("macs")), _fmt(t.get("kv_bytes")), _fmt(t.get("working_set_bytes")),
                         _fmt(t.get("l1_fit")), _fmt(c.cost)])
            if c.why_not:
                notes.append(f"  {c.spec}: {c.why_not}")
            if isinstance(t.get("rule"), str):
                notes.append(f"  {c.spec}: rule {t['rule']}")
        if rows:
            widths = [max(len(str(r[i])) for r in rows + [cols]) for i in range(len(cols))]
            for r in [cols] + rows:
                lines.append("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
        return "\n".join(lines + notes) + "\n"

    def __repr__(self):
        return f"sattn.Plan(spec={self.spec!r}, params={self.params!r}, kind={self.kind!r})"


def select(op, *, backend=None, force=None, disable=None, prefer=None, l1_bytes=None, profile=None,
           min_recall=None, recall_confidence=None, recall_bound=None, data=None, seed=None, explain=False):
    """Selects a spec for ``op`` (a sattn.Op) as ``sattn-select`` does, and returns a Plan.

    backend   the cost model's target: cpu, rvv, rocc or imc (None: the profile's, else cpu)
    force     a spec to use regardless (as --force-spec)
    disable   specs the selector must not pick (replaces SATTN_DISABLE_*)
    prefer    "bsr" or "sw" (as --prefer-bsr / --prefer-sw)
    l1_bytes  the cache/scratchpad size the cost model fits against
    profile   a profile name or path (sattn-profile(5))
    min_recall  a quality target R in [0, 1], as --min-recall: the cheapest point of the recall
              grid whose recall (a lower bound of the worst head's mean share of the dense
              attention mass kept) on the calibration samples is at least R; else dense, with a
              warning (sattn-select(1), QUALITY TARGET)
    recall_confidence  how sure the recall bound is that other text reaches min_recall, from 0.5
              to below 1 (as --recall-confidence; None: SATTN_RECALL_CONFIDENCE, the profile, 0.95)
    recall_bound  what the recall bound covers, as --recall-bound: "window" (each further window
              of text), "mean" (the mean over text) or "cv" (the mean bound at the confidence
              leave-one-out cross-validation over 4 or more samples picks, at most
              recall_confidence); None: SATTN_RECALL_BOUND, the profile, "window"
    data      the calibration samples for min_recall: directories of q.npy, k.npy, v.npy (as
              --data) and/or (q, k, v) tuples of float32 numpy arrays / CPU tensors in the op's
              shapes; a single directory or tuple may be passed bare. Two or more samples
              (windows of text) pool into one bound per head, from the spread between them
    seed      the seed of the synthetic calibration sample when data is left out (as --seed)
    explain   also print the candidates table (Plan.explain()) on stderr, as --explain does

    Options left out fall through to the environment (SATTN_FORCE_SPEC, SATTN_DISABLE_*, ...),
    then the profile, then the defaults, exactly as on the command line.
    """
    if not isinstance(op, Op):
        raise Usage(f"select: op must be a sattn.Op, got {type(op).__name__}")
    if prefer not in (None, "bsr", "sw"):
        raise Usage(f"prefer must be 'bsr' or 'sw' (got {prefer!r})")
    if isinstance(disable, str):
        disable = [disable]
    dirs, arrays = [], []
    if data is not None:
        if isinstance(data, (str, os.PathLike, tuple)):
            data = [data]
        from . import _arrays
        for s in data:
            if isinstance(s, (str, os.PathLike)):
                dirs.append(os.fspath(s))
                continue
            if not isinstance(s, (tuple, list)) or len(s) != 3:
                raise Usage(f"select: data: each sample is a directory or a (q, k, v) tuple, got {type(s).__name__}")
            inp = _arrays.prepare(*s)
            if inp.arrays is None:
                raise Usage("select: data: samples must be on the CPU")
            arrays.append(tuple(inp.arrays))
        if not dirs and not arrays:
            raise Usage("select: data is empty (leave it out for the synthetic sample)")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise Usage(f"select: seed must be a whole number >= 0 (got {seed!r})")
    if seed is not None and data is not None:
        raise Usage("select: pass data or seed, not both (the seed picks the synthetic sample)")
    if min_recall is not None:
        min_recall = float(min_recall)
    plan = Plan(_sattn.select(op._op, backend, force, None if disable is None else list(disable),
                              True if prefer == "bsr" else None, True if prefer == "sw" else None, l1_bytes,
                              None if profile is None else str(profile), min_recall, dirs, arrays,
                              None if seed is None else int(seed),
                              None if recall_confidence is None else float(recall_confidence),
                              None if recall_bound is None else str(recall_bound)))
    if explain:
        sys.stderr.write(plan.explain())
    return plan


@functools.lru_cache(maxsize=256)
def _cached_plan(op_json, spec, environment):
    # `environment` (the SATTN_* variables) is part of the key: the selector reads them.
    op = _sattn.op_from_json(op_json)
    if spec is None:
        return _sattn.select(op, "cpu", None, None, None, None, None, None)
    return _sattn.plan_for(op, spec)


def with_softcap(params, softcap):
    """params with the op attribute softcap added (None: params unchanged). The library
    validates the value (a finite number > 0) like any attribute."""
    if softcap is None:
        return params
    if isinstance(softcap, bool) or not isinstance(softcap, (int, float, np.floating, np.integer)):
        raise InvalidInput(f"softcap must be a number (got {softcap!r})")
    if not math.isfinite(float(softcap)):
        raise InvalidInput(f"softcap must be a finite number > 0 (got {softcap!r})")
    return {**dict(params or {}), "softcap": float(softcap)}


def plan_for_shapes(qshape, kshape, pattern="auto", params=None, precision="fp32", causal=False, scale=None,
                    quant_scheme=None):
    """The plan sparse_attention() runs for these shapes and arguments (cached)."""
    B, H, S, D = qshape
    _, KVH, KV, _ = kshape
    params = dict(params or {})
    for key in params:
        if not isinstance(key, str):
            raise InvalidInput(f"params: keys must be attribute names (strings), got {key!r}")
        if key in _SHAPE_KEYS:
            raise InvalidInput(f"params: '{key}' comes from the shapes of q, k and v, not from params")
    if "gqa_group_size" in params:
        g = params.pop("gqa_group_size")
        if g != H // KVH:
            raise InvalidInput(f"params: gqa_group_size = {g} but q has {H} heads and k/v {KVH} "
                               f"(group size {H // KVH})")
    spec = None
    if pattern is None or pattern == "auto":
        if "spec" in params:
            spec = canonical_pattern(params.pop("spec"))
    else:
        spec = canonical_pattern(pattern)
        # The prototype's sliding_global took a token window; block_local_global counts blocks.
        if pattern == "sliding_global" and "window_size" in params and "window_blocks" not in params:
            bs = int(params.get("block_size", 64))
            w = params.pop("window_size")
            if isinstance(w, bool) or not isinstance(w, int) or w < 0 or bs < 1:
                raise InvalidInput(f"params: window_size must be a non-negative integer (got {w!r})")
            params["window_blocks"] = -(-w // bs)
    if not isinstance(causal, (bool, np.bool_)):
        raise InvalidInput(f"causal must be True or False (got {causal!r})")
    doc = {"schema": "sattn.op/v1", "name": "python", "batch": B, "heads": H, "kv_heads": KVH, "seq_len": S,
           "kv_len": KV, "head_dim": D, "causal": bool(causal), "precision": precision}
    if scale is not None:
        doc["scale"] = float(scale)
    if quant_scheme is not None:
        if not isinstance(quant_scheme, str):
            raise InvalidInput(f"quant_scheme must be a string (per-tensor, sage, smooth or key=value,...), "
                               f"got {type(quant_scheme).__name__}")
        if "quant_scheme" in params and params["quant_scheme"] != quant_scheme:
            raise Usage(f"quant_scheme={quant_scheme!r} and params['quant_scheme']={params['quant_scheme']!r} differ")
        doc["quant_scheme"] = quant_scheme
    doc.update(params)
    try:
        text = json.dumps(doc, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"params: {e}") from None
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("SATTN_"))) if spec is None else ()
    return _cached_plan(text, spec, env)


class Layout:
    """Which (query, key) pairs an op may use: CSR (row specs) or BSR (block specs) arrays, one
    layout per (batch, KV head) (one shared by all when the spec does not read the data).

    Attributes: ``plan`` (the Plan it was built for), ``spec``, ``block`` (BSR or CSR), ``rows``
    (seq_len), ``cols`` (kv_len), ``block_size``, ``causal``, ``causal_offset`` (kv_len -
    seq_len: query i sees key j <= i + offset under causal), ``batch``, ``kv_heads``, ``shared``,
    ``density`` (allowed pairs / rows*cols), ``index_bytes``.

    ``ptr(b, kvh)`` and ``idx(b, kvh)`` are the CSR/BSR arrays of one (batch, KV head), as
    read-only numpy views (int64 and int32): CSR ``ptr`` has rows+1 entries and ``idx`` the allowed
    key indices of each row; BSR ``ptr`` has block_rows+1 entries and ``idx`` the block columns
    kept in each block row; inside a kept block, key j is allowed for query i iff j < cols and,
    under causal, j <= i + causal_offset. ``mask(b, kvh)`` is the element mask (rows x cols,
    bool) with all of that applied; ``full_mask(heads)`` the [batch, heads, rows, cols] mask for
    every query head (GQA: query head h uses KV head h // (heads // kv_heads)).
    """

    __slots__ = ("_layout", "_plan")

    def __init__(self, clayout, cplan):
        self._layout = clayout
        self._plan = cplan

    plan = property(lambda self: Plan(self._plan))
    spec = property(lambda self: self._layout.spec)
    block = property(lambda self: self._layout.block)
    rows = property(lambda self: self._layout.rows)
    cols = property(lambda self: self._layout.cols)
    block_size = property(lambda self: self._layout.block_size)
    block_rows = property(lambda self: self._layout.block_rows)
    block_cols = property(lambda self: self._layout.block_cols)
    causal = property(lambda self: self._layout.causal)
    causal_offset = property(lambda self: self._layout.causal_offset)
    batch = property(lambda self: self._layout.batch)
    kv_heads = property(lambda self: self._layout.kv_heads)
    shared = property(lambda self: self._layout.shared)
    density = property(lambda self: self._layout.density)
    index_bytes = property(lambda self: self._layout.index_bytes)

    def ptr(self, b=0, kvh=0):
        return self._layout.ptr(b, kvh)

    def idx(self, b=0, kvh=0):
        return self._layout.idx(b, kvh)

    def allowed_pairs(self, b=0, kvh=0):
        return self._layout.allowed_pairs(b, kvh)

    def mask(self, b=0, kvh=0):
        return self._layout.mask(b, kvh)

    def full_mask(self, heads=None):
        """[batch, heads, rows, cols] bool: the mask of every query head (for tests and small
        problems: rows * cols bytes per head)."""
        heads = self._plan.op.heads if heads is None else heads
        if heads % self.kv_heads:
            raise Usage(f"heads ({heads}) must be a multiple of the layout's kv_heads ({self.kv_heads})")
        g = heads // self.kv_heads
        out = np.empty((self.batch, heads, self.rows, self.cols), dtype=bool)
        for b in range(self.batch):
            for kvh in range(self.kv_heads):
                out[b, kvh * g:(kvh + 1) * g] = self.mask(b, kvh)
        return out

    def __repr__(self):
        kind = "BSR" if self.block else "CSR"
        return (f"sattn.Layout({self.spec}, {kind}, {self.rows}x{self.cols}, block_size={self.block_size}, "
                f"density={self.density:.4f})")


def layout(q=None, k=None, *, plan=None, op=None, pattern="auto", params=None, causal=False, scale=None,
           precision="fp32", softcap=None, quant_scheme=None):
    """Builds the layout sattn would use, as numpy CSR/BSR arrays (a sattn.Layout).

    Three ways to say what to build:
      layout(q, k, pattern=..., params=..., causal=...)   as sparse_attention() would;
      layout(plan=p [, q=q, k=k])                          for a Plan (sattn.select);
      layout(op=o [, q=q, k=k])                            selects for the Op first.
    Data-dependent specs (bsr, nm_structured, topk_per_query, lsh, quest, landmark with iterations)
    read q and k; the others need only the shapes. q and k follow sparse_attention()'s rules.
    """
    from . import _arrays
    qa = ka = None
    if q is not None or k is not None:
        if q is None or k is None:
            raise Usage("layout: pass both q and k, or neither")
        qa, ka, _ = _arrays.prepare(q, k, k, ("q", "k", "k")).arrays or (None, None, None)
        if qa is None:
            raise Usage("layout: q and k must be on the CPU (layouts are built on the host)")
    if plan is not None:
        cplan = plan._plan
    elif op is not None:
        cplan = select(op)._plan
    else:
        if qa is None:
            raise Usage("layout: pass q and k (their shapes define the op), or plan=, or op=")
        cplan = plan_for_shapes(qa.shape, ka.shape, pattern, with_softcap(params, softcap), precision, causal, scale,
                                quant_scheme)
    if qa is not None:
        shape_op = cplan.op
        if tuple(qa.shape) != (shape_op.batch, shape_op.heads, shape_op.seq_len, shape_op.head_dim) or \
                tuple(ka.shape) != (shape_op.batch, shape_op.kv_heads, shape_op.kv_len, shape_op.head_dim):
            raise InvalidInput(f"layout: q {list(qa.shape)} / k {list(ka.shape)} do not match the op's shape")
    return Layout(_sattn.build_layout(cplan, qa, ka), cplan)


def calibrate(op_or_plan, samples=None, *, data=None, seed=0x5A77, precision="i8", granularity="tensor",
              methods=("mse",), percentile=99.99, kl_bins=2048, threads=0, quant_scheme=None, schemes=False):
    """Derives symmetric i8/i4 scales for an op from data, as sattn-calibrate(1) does.

    op_or_plan   a sattn.Op (selected first) or a sattn.Plan
    samples      a list of (q, k, v) numpy arrays / CPU tensors, each matching the op's shape;
    data         or directories (or glob patterns) of q.npy, k.npy, v.npy; with neither, the
                 seeded synthetic sample (``seed``), like sattn-calibrate without --data
    precision    i8 or i4;  granularity: tensor or head
    methods      any of absmax, percentile, mse, kl (all are reported; the best is recommended)

    quant_scheme a quantization scheme (sattn-quant(7): "smooth", "smooth,block=2", key=value...),
                 as sattn-calibrate --quant-scheme: the schemes are compared (this one among them)
                 and its fixed scale tables computed from the samples
    schemes      True: compare the schemes and take the recommended one (sattn-calibrate --schemes)

    Returns a Calibration: ``report`` (the sattn.calibration/v1 document as a dict),
    ``recommended`` (the best method), ``scales`` ({'q','k','v'} of the best method) and ``plan``
    (the plan with precision and scale_q/k/v applied; per-tensor granularity only).
    With quant_scheme or schemes: ``report`` is sattn.calibration-schemes/v1 (every scheme's
    max_rel, rel_l1, cosine; ``recommended`` the best scheme), ``plan`` the plan at ``precision``
    with the applied scheme (quant_scheme, else the recommended one; scales computed at run time)
    and ``tables`` its fixed scale tables as float32 arrays {scale_q, scale_k, scale_v[, mean_q,
    mean_k]} (shapes in sattn-quant(7) FIXED SCALES).
    """
    from . import _arrays
    if isinstance(op_or_plan, Plan):
        plan = op_or_plan
    elif isinstance(op_or_plan, Op):
        plan = select(op_or_plan)
    else:
        raise Usage(f"calibrate: expected a sattn.Op or sattn.Plan, got {type(op_or_plan).__name__}")
    if samples is not None and data is not None:
        raise Usage("calibrate: pass samples or data, not both")
    if isinstance(methods, str):
        methods = [methods]
    arrays = []
    for s in samples or []:
        if len(s) != 3:
            raise Usage("calibrate: each sample is a (q, k, v) tuple")
        inp = _arrays.prepare(*s)
        if inp.arrays is None:
            raise Usage("calibrate: samples must be on the CPU")
        for name, a in zip("qkv", inp.arrays):
            if not np.any(a):
                raise InvalidInput(f"calibrate: sample {len(arrays)}: {name} is all zeros: no scale can be "
                                   f"derived from it")
        arrays.append(tuple(inp.arrays))
    if isinstance(data, str):
        data = [data]
    if quant_scheme is not None or schemes:
        if granularity != "tensor" or tuple(methods) != ("mse",):
            raise Usage("calibrate: quant_scheme/schemes compare quantization schemes; methods and granularity "
                        "are for per-tensor scale methods")
        if quant_scheme is not None and not isinstance(quant_scheme, str):
            raise Usage(f"calibrate: quant_scheme must be a str, got {type(quant_scheme).__name__}")
        report, applied, tables = _sattn.calibrate_schemes(plan._plan, arrays, [str(d) for d in (data or [])],
                                                           int(seed), precision, quant_scheme or "", int(threads))
        tables = {name: np.asarray(values, dtype=np.float32).reshape(shape) for name, (values, shape) in tables.items()}
        return Calibration(json.loads(report), Plan(applied), tables)
    report, applied = _sattn.calibrate(plan._plan, arrays, [str(d) for d in (data or [])], int(seed), precision,
                                       granularity, list(methods), float(percentile), int(kl_bins), int(threads))
    return Calibration(json.loads(report), Plan(applied) if granularity == "tensor" else None)


class Calibration:
    """The result of sattn.calibrate(): ``report`` (sattn.calibration/v1 as a dict),
    ``recommended``, ``scales`` and ``plan`` (None for per-head granularity); with a
    quant_scheme, ``tables`` (else None) and the sattn.calibration-schemes/v1 report."""

    __slots__ = ("report", "plan", "tables")

    def __init__(self, report, plan, tables=None):
        self.report = report
        self.plan = plan
        self.tables = tables

    @property
    def recommended(self):
        return self.report["recommended"]

    @property
    def scales(self):
        if self.tables is not None:
            return self.tables
        best = next(m for m in self.report["methods"] if m["best"])
        return {t: best["tensors"][t]["scale"] for t in ("q", "k", "v")}

    def __repr__(self):
        return f"sattn.Calibration(recommended={self.recommended!r}, scales={self.scales!r})"

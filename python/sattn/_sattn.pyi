"""Type stubs of sattn._sattn, the C++ half of the package (libsattn's public API).

Use the `sattn` package instead: it checks arguments and turns numpy arrays and torch tensors
into the float32 C-order arrays these functions take.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

Float32Array = npt.NDArray[np.float32]
ParamValue = Union[int, float, bool]

def version() -> str: ...

class Op:
    name: str
    batch: int
    heads: int
    kv_heads: int
    seq_len: int
    kv_len: int
    head_dim: int
    causal: bool
    precision: str
    quant_scheme: Optional[str]
    softmax_scale: float
    location: str
    def to_dict(self) -> Dict[str, Union[str, ParamValue]]: ...

def op_from_json(text: str) -> Op: ...
def parse_ops(text: str, filename: str, format: str) -> Tuple[List[Op], List[str]]: ...
def read_ops(path: str, format: str) -> Tuple[List[Op], List[str]]: ...
def spec_names() -> List[str]: ...
def canonical_spec(name: str) -> str: ...
def is_data_dependent(name: str) -> bool: ...
def is_block_spec(name: str) -> bool: ...
def resolve_params(op: Op, spec: str) -> Dict[str, ParamValue]: ...

class Candidate:
    spec: str
    feasible: bool
    why_not: str
    terms_json: str
    cost: float

class Plan:
    op: Op
    spec: str
    params: Dict[str, ParamValue]
    backend: str
    kind: str
    reason: str
    candidates: List[Candidate]

def select(op: Op, backend: Optional[str], force: Optional[str], disable: Optional[List[str]],
           prefer_bsr: Optional[bool], prefer_sw: Optional[bool], l1_bytes: Optional[int],
           profile: Optional[str], min_recall: Optional[float] = None, data: List[str] = ...,
           arrays: List[Tuple[Any, Any, Any]] = ..., seed: Optional[int] = None,
           recall_confidence: Optional[float] = None, recall_bound: Optional[str] = None) -> Plan: ...
def plan_for(op: Op, spec: str) -> Plan: ...

class Layout:
    spec: str
    block: bool
    rows: int
    cols: int
    block_size: int
    causal: bool
    causal_offset: int
    batch: int
    kv_heads: int
    shared: bool
    block_rows: int
    block_cols: int
    density: float
    index_bytes: int
    def allowed_pairs(self, b: int, kvh: int) -> int: ...
    def ptr(self, b: int, kvh: int) -> npt.NDArray[np.int64]: ...
    def idx(self, b: int, kvh: int) -> npt.NDArray[np.int32]: ...
    def mask(self, b: int, kvh: int) -> npt.NDArray[np.bool_]: ...

def build_layout(plan: Plan, q: Optional[Float32Array], k: Optional[Float32Array]) -> Layout: ...
def forward(plan: Plan, layout: Layout, q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array,
            lse: Optional[Float32Array], threads: int) -> None: ...
def backward(plan: Plan, layout: Layout, q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array,
             dout: Float32Array, lse: Float32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array,
             threads: int) -> None: ...
def reference_forward(plan: Plan, layout: Layout, q: Float32Array, k: Float32Array, v: Float32Array,
                      out: Float32Array, lse: Optional[Float32Array], quantized: bool = ...) -> None: ...
def reference_backward(plan: Plan, layout: Layout, q: Float32Array, k: Float32Array, v: Float32Array,
                       dout: Float32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array) -> None: ...
def require_backend(name: str) -> None: ...
def tolerance(precision: str) -> float: ...
def calibrate(plan: Plan, arrays: Sequence[Tuple[Float32Array, Float32Array, Float32Array]], dirs: List[str],
              seed: int, precision: str, granularity: str, methods: List[str], percentile: float, kl_bins: int,
              threads: int) -> Tuple[str, Plan]: ...
def calibrate_schemes(plan: Plan, arrays: Sequence[Tuple[Float32Array, Float32Array, Float32Array]], dirs: List[str],
                      seed: int, precision: str, quant_scheme: str,
                      threads: int) -> Tuple[str, Plan, Dict[str, Tuple[List[float], List[int]]]]: ...
def forward_cuda(op_json: str, spec: str, q: int, k: int, v: int, out: int, q_shape: Sequence[int],
                 k_shape: Sequence[int], device: int, host_q: Optional[Float32Array],
                 host_k: Optional[Float32Array], lse: int = 0) -> None: ...
def backward_cuda(op_json: str, spec: str, q: int, k: int, v: int, out: int, dout: int, lse: int, dq: int,
                  dk: int, dv: int, q_shape: Sequence[int], k_shape: Sequence[int], device: int,
                  host_q: Optional[Float32Array], host_k: Optional[Float32Array]) -> None: ...

"""Turning numpy arrays and torch tensors into the float32 C-order buffers libsattn reads.

Rules (docs/python.md, "Arrays and tensors"):

* numpy arrays and torch tensors are accepted; q, k and v must be the same kind (and, for
  torch, on the same device);
* 4-D ``[batch, heads, len, head_dim]``: q ``[B, H, S, D]``, k and v ``[B, KVH, KV, D]`` with
  ``H % KVH == 0`` (grouped-query attention: query head h reads KV head ``h // (H // KVH)``);
* float32 (numpy or torch), or torch bfloat16 (converted to float32, a copy, and run at
  precision bf16; the output is bfloat16 again). Any other dtype is refused;
* contiguous float32 inputs are never copied: numpy arrays are read in place, CPU tensors
  through ``tensor.detach().numpy()`` (a view of the same memory);
* non-contiguous inputs are copied with a ``sattn.CopyWarning``.
"""
import sys
import warnings

import numpy as np

from ._errors import CopyWarning, InvalidInput


def _torch():
    """The torch module if it has been imported (a torch tensor cannot exist otherwise)."""
    return sys.modules.get("torch")


def is_torch_tensor(x):
    t = _torch()
    return t is not None and isinstance(x, t.Tensor)


def kind_of(x):
    if isinstance(x, np.ndarray):
        return "numpy"
    if is_torch_tensor(x):
        return "torch"
    return None


class Inputs:
    """q, k, v checked: ``kind`` ('numpy' or 'torch'), ``device`` ('cpu' or 'cuda:N'),
    ``dtype`` (the inputs' dtype), ``tensors`` (torch: contiguous float32 tensors; numpy: the
    arrays), ``arrays`` (CPU: float32 C-order numpy arrays over the same memory), ``copied``."""

    def __init__(self, kind, device, dtype, tensors, arrays, copied):
        self.kind = kind
        self.device = device
        self.dtype = dtype
        self.tensors = tensors
        self.arrays = arrays
        self.copied = copied

    @property
    def is_bf16(self):
        t = _torch()
        return self.kind == "torch" and t is not None and self.dtype == t.bfloat16

    @property
    def is_cuda(self):
        return self.device.startswith("cuda")


def _shape(x):
    return tuple(int(s) for s in x.shape)


def check_shapes(qs, ks, vs, names=("q", "k", "v")):
    """Shape rules shared by the forward and backward entry points."""
    qn, kn, vn = names
    for n, s in ((qn, qs), (kn, ks), (vn, vs)):
        if len(s) != 4:
            raise InvalidInput(f"{n}: {len(s)}-D, expected 4-D [batch, heads, len, head_dim] (shape {list(s)})")
    if ks != vs:
        raise InvalidInput(f"{kn} and {vn} differ in shape: {list(ks)} vs {list(vs)}")
    if qs[0] != ks[0]:
        raise InvalidInput(f"batch differs: {qn} has {qs[0]}, {kn}/{vn} have {ks[0]}")
    if qs[3] != ks[3]:
        raise InvalidInput(f"head_dim differs: {qn} has {qs[3]}, {kn}/{vn} have {ks[3]}")
    if ks[1] < 1 or qs[1] % ks[1] != 0:
        raise InvalidInput(
            f"mismatched heads: {qn} has {qs[1]} heads, {kn}/{vn} have {ks[1]} "
            f"(grouped-query attention needs q heads to be a multiple of kv heads)")


def _contiguous_numpy(x, name):
    if x.dtype != np.float32:
        raise InvalidInput(f"{name}: dtype {x.dtype}, expected float32 (convert with {name}.astype(numpy.float32))")
    if not x.flags.c_contiguous:
        warnings.warn(f"sattn: {name} is not C-contiguous: copied (pass a contiguous array to avoid the copy)",
                      CopyWarning, stacklevel=4)
        return np.ascontiguousarray(x), True
    return x, False


def _contiguous_torch(x, name):
    torch = _torch()
    copied = False
    if x.dtype == torch.bfloat16:
        x = x.detach().float()  # a copy, and contiguous in the original's memory order
        copied = True
        if not x.is_contiguous():
            x = x.contiguous()
    elif x.dtype != torch.float32:
        raise InvalidInput(f"{name}: dtype {x.dtype}, expected torch.float32 or torch.bfloat16 "
                           f"(convert with {name}.float())")
    elif not x.is_contiguous():
        warnings.warn(f"sattn: {name} is not contiguous: copied (call {name}.contiguous() first, or pass a "
                      f"tensor in [batch, heads, len, head_dim] memory order, to avoid the copy)",
                      CopyWarning, stacklevel=4)
        x = x.detach().contiguous()
        copied = True
    return x, copied


def prepare(q, k, v, names=("q", "k", "v")):
    """Checks q, k, v and returns an Inputs (see the module's rules)."""
    kinds = [kind_of(x) for x in (q, k, v)]
    for n, x, kd in zip(names, (q, k, v), kinds):
        if kd is None:
            raise InvalidInput(f"{n}: expected a numpy array or a torch tensor, got {type(x).__name__}")
    if len(set(kinds)) != 1:
        raise InvalidInput(f"{names[0]}, {names[1]}, {names[2]} mix numpy arrays and torch tensors "
                           f"({', '.join(kinds)}): pass one kind")
    kind = kinds[0]
    check_shapes(_shape(q), _shape(k), _shape(v), names)
    if kind == "numpy":
        arrays, copied = zip(*(_contiguous_numpy(x, n) for n, x in zip(names, (q, k, v))))
        return Inputs("numpy", "cpu", q.dtype, arrays, arrays, any(copied))
    torch = _torch()
    for n, x in zip(names, (q, k, v)):
        if x.dtype not in (torch.float32, torch.bfloat16):
            raise InvalidInput(f"{n}: dtype {x.dtype}, expected torch.float32 or torch.bfloat16 "
                               f"(convert with {n}.float())")
    dtypes = {x.dtype for x in (q, k, v)}
    if len(dtypes) != 1:
        raise InvalidInput(f"{names[0]}, {names[1]}, {names[2]} differ in dtype ({', '.join(str(x.dtype) for x in (q, k, v))})")
    devices = {str(x.device) for x in (q, k, v)}
    if len(devices) != 1:
        raise InvalidInput(f"{names[0]}, {names[1]}, {names[2]} are on different devices ({', '.join(sorted(devices))})")
    device = devices.pop()
    tensors, copied = zip(*(_contiguous_torch(x, n) for n, x in zip(names, (q, k, v))))
    if q.dtype == torch.bfloat16:
        warnings.warn("sattn: bfloat16 tensors are converted to float32 (a copy) and run at precision bf16",
                      CopyWarning, stacklevel=3)
    arrays = None
    if device == "cpu":
        arrays = tuple(t.detach().numpy() for t in tensors)
    return Inputs("torch", device, q.dtype, tensors, arrays, any(copied))


def float32_view(x, name):
    """One more float32 C-order array of the same kind as the inputs (dout in a backward): its
    numpy view (CPU) after the same checks; copies with a warning when not contiguous."""
    kd = kind_of(x)
    if kd == "numpy":
        return _contiguous_numpy(x, name)[0]
    if kd == "torch":
        t, _ = _contiguous_torch(x, name)
        return t.detach().numpy() if t.device.type == "cpu" else t
    raise InvalidInput(f"{name}: expected a numpy array or a torch tensor, got {type(x).__name__}")

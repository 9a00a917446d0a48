"""ctypes declarations shared by bwd_variants.py and profile_bwd.py (sattn_cuda.h's SattnCudaArgs)."""
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



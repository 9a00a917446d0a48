#!/usr/bin/python3
"""Regenerates the bad data directories of tests/bad/data (run from anywhere).

Each directory holds q.npy, k.npy, v.npy for data/op.mlir ([1, 1, 16, 8] float32); exactly one
file is bad, as the directory name says. tests/cli/bad_input.sh feeds each one to every tool
that takes --data and expects exit 3 naming the bad file (and the element, for NaN/Inf)."""
import os, struct
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
shape = (1, 1, 16, 8)
rng = np.random.default_rng(9)
good = {n: rng.standard_normal(shape).astype('<f4') for n in 'qkv'}


def npy_bytes(a, **kw):
    import io
    b = io.BytesIO()
    np.save(b, a, **kw)
    return b.getvalue()


def header(descr, shape, fortran=False):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    d += ' ' * ((64 - (10 + len(d) + 1) % 64) % 64) + '\n'
    return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(d)) + d.encode()


def case(name, which, content):
    d = os.path.join(here, name)
    os.makedirs(d, exist_ok=True)
    for n in 'qkv':
        data = content if n == which else npy_bytes(good[n])
        with open(os.path.join(d, n + '.npy'), 'wb') as f:
            f.write(data)


full = npy_bytes(good['q'])
case('truncated_data', 'q', full[:len(full) - 100])           # data ends early
case('truncated_header', 'k', full[:40])                      # ends inside the header dict
case('bad_magic', 'v', b'NUMPY?' + full[6:])                  # not a .npy file
case('malformed_header', 'q', header('<f4', '(1, 1, 16, 8)').replace(b"'shape'", b"'shape' =") + good['q'].tobytes())
case('wrong_dtype', 'q', npy_bytes(good['q'].astype('<c8')))  # complex64 (float64 and float16 are read)
case('int_dtype', 'k', npy_bytes(good['k'].astype('<i4')))    # int32
case('fortran_order', 'v', npy_bytes(np.asfortranarray(good['v'].reshape(16, 8).T.reshape(1, 1, 8, 16).transpose(0, 1, 3, 2))))
# Declares 1e6 x 1e6 x 4096 x 64 float32 (about 10^18 bytes) over 512 bytes of data: must fail
# without allocating.
case('huge_shape', 'q', header('<f4', '(1000000, 1000000, 4096, 64)') + good['q'].tobytes())
# Declares a shape whose element count overflows 64 bits.
case('overflow_shape', 'k', header('<f4', '(4294967296, 4294967296, 4294967296, 1)') + good['k'].tobytes())
case('wrong_shape', 'q', npy_bytes(good['q'].reshape(1, 1, 8, 16)))
bad = good['q'].copy(); bad.reshape(-1)[37] = np.nan
case('nan_q', 'q', npy_bytes(bad))
bad = good['k'].copy(); bad.reshape(-1)[5] = np.inf
case('inf_k', 'k', npy_bytes(bad))
bad = good['v'].copy(); bad.reshape(-1)[127] = -np.inf
case('neg_inf_v', 'v', npy_bytes(bad))
# Finite but overflowing fp32 (issue 18): k = -3e38 makes every score -inf in fp32 (the kernel
# would see empty rows, the double reference the mean of V); |v| = 1e37 over 16 keys can reach
# 1.6e38 in the P V sum.
case('overflow_k', 'k', npy_bytes(np.full(shape, -3e38, '<f4')))
case('overflow_v', 'v', npy_bytes(np.full(shape, 1e37, '<f4')))
case('good', None, b'')

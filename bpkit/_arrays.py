r"""Constant arrays made once and reused: the $\mathbf 1$ of a bias gradient and the 0 of ReLU.

Allocating a fresh vector of ones for every backward pass, or comparing with the number 0
instead of an array, costs more than the arithmetic at the sizes of a course network. Both are
read-only, so sharing them is safe.
"""

import functools
import math

import numpy as np

#: constants are cached for arrays of up to this many entries; larger ones are made each time
#: (``zeros``: a stride-0 view of one zero, which allocates nothing)
MAX_CACHED = 1 << 20


def _read_only(value, shape, dtype):
    arr = np.full(shape, value, dtype=dtype)
    arr.flags.writeable = False
    return arr


_cached = functools.lru_cache(maxsize=32)(_read_only)


def ones(n, dtype):
    r"""The vector $\mathbf 1$ of ``n`` ones in ``dtype``, read-only (for $\mathbf 1^\top \delta$)."""
    make = _read_only if n > MAX_CACHED else _cached
    return make(1, (n,), np.dtype(dtype))


def zeros(shape, dtype):
    """Zeros of ``shape`` and ``dtype``, read-only.

    Above ``MAX_CACHED`` entries the result is a view of a single zero repeated with stride 0:
    nothing is allocated, and numpy compares with it as fast as with the number 0 (writing a
    fresh array of zeros first would cost more than the comparison it speeds up).
    """
    shape = tuple(shape)
    if math.prod(shape) > MAX_CACHED:
        return np.broadcast_to(np.zeros((), dtype), shape)
    return _cached(0, shape, np.dtype(dtype))

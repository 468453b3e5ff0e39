"""Shared hypothesis strategies: shapes, float64 arrays away from trouble, activation names."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import bpkit as bk

batch_sizes = st.integers(min_value=1, max_value=6)
widths = st.integers(min_value=1, max_value=6)
activation_names = st.sampled_from(sorted(bk.ACTIVATIONS))
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def float_arrays(shape, lo=-5.0, hi=5.0):
    """float64 arrays of the given shape (or shape strategy) with entries in [lo, hi]."""
    return arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def away_from_kinks(z, margin=1e-3):
    """Move entries within ``margin`` of 0 (the ReLU / leaky-ReLU kink) out to ±margin."""
    z = z.copy()
    near = np.abs(z) < margin
    z[near] = np.where(z[near] >= 0, margin, -margin) * 2
    return z

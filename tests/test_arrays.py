"""The cached constant arrays behind Dense.backward's 1^T delta and ReLU's max(z, 0)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bpkit as bk
from bpkit import _arrays

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_ones_and_zeros_hold_their_value_shape_and_dtype(dtype):
    one, zero = _arrays.ones(7, dtype), _arrays.zeros((3, 5), dtype)
    assert one.shape == (7,) and one.dtype == dtype and np.all(one == 1)
    assert zero.shape == (3, 5) and zero.dtype == dtype and np.all(zero == 0)


def test_constants_are_made_once_and_cannot_be_written():
    first, again = _arrays.zeros((4, 6), np.float32), _arrays.zeros([4, 6], "float32")
    assert first is again
    assert _arrays.ones(4, np.float32) is not _arrays.ones(4, np.float64)
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        _arrays.ones(4, np.float64)[0] = 2.0


def test_constants_larger_than_the_cache_limit_are_made_each_time_and_still_read_only():
    n = _arrays.MAX_CACHED + 1
    big, again = _arrays.ones(n, np.float32), _arrays.ones(n, np.float32)
    assert big is not again and len(big) == n and np.all(big == 1)
    assert not big.flags.writeable


def test_zeros_larger_than_the_cache_limit_allocate_nothing_and_are_read_only():
    shape = (_arrays.MAX_CACHED // 4 + 1, 4)
    big = _arrays.zeros(shape, np.float64)
    assert big.shape == shape and big.dtype == np.float64 and big.strides == (0, 0)
    assert not big.flags.writeable and np.all(big == 0)
    z = np.linspace(-1.0, 1.0, big.size).reshape(shape)
    np.testing.assert_array_equal(bk.relu(z), np.maximum(z, 0))


@given(st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3),
                                                            elements=st.floats(-1e4, 1e4, width=32))))
def test_relu_is_max_of_z_and_zero_for_every_shape(z):
    out = bk.relu(z)
    np.testing.assert_array_equal(out, np.maximum(z, 0))
    assert out.dtype == z.dtype and np.shape(out) == z.shape


def test_relu_returns_a_new_array_that_may_be_written():
    z = -np.ones((3, 4))
    out = bk.relu(z)
    out += 5.0  # must not touch the shared zeros
    np.testing.assert_array_equal(bk.relu(z), np.zeros((3, 4)))
    assert bk.relu([[-1.0, 2.0]]).tolist() == [[0.0, 2.0]]

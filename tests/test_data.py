"""Data helpers: batch shapes and coverage, determinism under a seed, splits, scaling, errors."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpkit import data

from strategies import seeds


def numbered(n, width=3):
    """X whose row i holds i in every column, and y = i: a batch shows which rows it took."""
    return np.repeat(np.arange(n, dtype=np.float64)[:, None], width, axis=1), np.arange(n)


# --- minibatches ----------------------------------------------------------------------------------

@given(st.integers(1, 60), st.data(), seeds, st.booleans())
def test_batches_cover_every_example_exactly_once(n, draw, seed, shuffle):
    batch_size = draw.draw(st.integers(1, n))
    X, y = numbered(n)
    batches = list(data.minibatches(X, y, batch_size, np.random.default_rng(seed), shuffle=shuffle))
    sizes = [len(xb) for xb, _ in batches]
    assert len(batches) == -(-n // batch_size)
    assert all(s == batch_size for s in sizes[:-1]) and 1 <= sizes[-1] <= batch_size
    seen = np.concatenate([yb for _, yb in batches])
    assert np.array_equal(np.sort(seen), np.arange(n))
    for xb, yb in batches:
        assert xb.shape == (len(yb), 3)
        assert np.array_equal(xb[:, 0], yb)  # rows stay paired with their targets
    if not shuffle:
        assert np.array_equal(seen, np.arange(n))


@given(st.integers(1, 60), st.data())
def test_drop_last_leaves_out_only_the_short_batch(n, draw):
    batch_size = draw.draw(st.integers(1, n))
    X, y = numbered(n)
    batches = list(data.minibatches(X, y, batch_size, np.random.default_rng(0), drop_last=True))
    assert len(batches) == n // batch_size
    assert all(len(yb) == batch_size for _, yb in batches)
    assert len(np.unique(np.concatenate([yb for _, yb in batches]))) == batch_size * (n // batch_size)


def test_shuffling_is_determined_by_the_seed():
    X, y = numbered(50)

    def order(seed):
        return np.concatenate([yb for _, yb in data.minibatches(X, y, 7, np.random.default_rng(seed))])

    assert np.array_equal(order(3), order(3))
    assert not np.array_equal(order(3), order(4))
    assert not np.array_equal(order(3), np.arange(50))


def test_successive_epochs_from_one_rng_differ():
    X, y = numbered(30)
    rng = np.random.default_rng(1)
    first = np.concatenate([yb for _, yb in data.minibatches(X, y, 10, rng)])
    second = np.concatenate([yb for _, yb in data.minibatches(X, y, 10, rng)])
    assert not np.array_equal(first, second)


def test_two_dimensional_targets_are_batched_by_row(rng):
    X, _ = numbered(9)
    Y = np.arange(18.0).reshape(9, 2)
    for xb, yb in data.minibatches(X, Y, 4, rng):
        assert yb.shape[1] == 2
        assert np.array_equal(yb[:, 0], 2 * xb[:, 0])


@pytest.mark.parametrize("batch_size", [0, -1, 11, 2.5, True, None])
def test_bad_batch_size_is_refused_at_the_call(batch_size, rng):
    X, y = numbered(10)
    with pytest.raises(ValueError, match=rf"minibatches got batch_size={batch_size!r} for 10 examples: expected an integer from 1 to 10"):
        data.minibatches(X, y, batch_size, rng)


def test_minibatches_errors(rng):
    X, y = numbered(10)
    with pytest.raises(ValueError, match=r"X with 10 rows \(shape \(10, 3\)\) but y with 9 \(shape \(9,\)\)"):
        data.minibatches(X, y[:9], 2, rng)
    with pytest.raises(TypeError, match="minibatches needs rng=np.random.default_rng"):
        data.minibatches(X, y, 2, rng=42)
    assert len(list(data.minibatches(X, y, 2, None, shuffle=False))) == 5


# --- train_test_split, standardize, one_hot ------------------------------------------------------

@pytest.mark.parametrize("n, fraction, n_test", [(10, 0.2, 2), (100, 0.25, 25), (7, 0.5, 4)])
def test_train_test_split_partitions_the_rows(n, fraction, n_test, rng):
    X, y = numbered(n)
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, fraction, rng)
    assert X_test.shape == (n_test, 3) and X_train.shape == (n - n_test, 3)
    assert len(y_test) == n_test and len(y_train) == n - n_test
    assert np.array_equal(np.sort(np.concatenate([y_train, y_test])), np.arange(n))
    assert np.array_equal(X_train[:, 0], y_train) and np.array_equal(X_test[:, 0], y_test)


def test_train_test_split_is_determined_by_the_seed():
    X, y = numbered(40)
    a = data.train_test_split(X, y, 0.3, np.random.default_rng(5))
    b = data.train_test_split(X, y, 0.3, np.random.default_rng(5))
    c = data.train_test_split(X, y, 0.3, np.random.default_rng(6))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[3], c[3])


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.2, 0.01])
def test_train_test_split_refuses_an_empty_part(fraction, rng):
    X, y = numbered(10)
    with pytest.raises(ValueError, match=rf"test_fraction={fraction!r} for 10 examples: both parts must be non-empty"):
        data.train_test_split(X, y, fraction, rng)


def test_standardize_uses_the_training_statistics_only(rng):
    X_train = rng.normal(3.0, 2.0, size=(50, 4))
    X_train[:, 2] = 7.0  # a constant feature
    X_test = rng.normal(-1.0, 5.0, size=(20, 4))
    A, B = data.standardize(X_train, X_test)
    assert np.allclose(A.mean(axis=0), 0, atol=1e-12)
    assert np.allclose(A.std(axis=0)[[0, 1, 3]], 1, atol=1e-12)
    assert np.array_equal(A[:, 2], np.zeros(50))
    mu, sigma = X_train.mean(axis=0), X_train.std(axis=0)
    assert np.allclose(B[:, 0], (X_test[:, 0] - mu[0]) / sigma[0], rtol=1e-14)
    assert not np.allclose(B.mean(axis=0), 0, atol=0.1)  # the test set is not re-centred
    with pytest.raises(ValueError, match=r"same number of columns, got X_train \(50, 4\) and X_test \(20, 3\)"):
        data.standardize(X_train, X_test[:, :3])


def test_one_hot(rng):
    y = rng.integers(0, 5, size=30)
    Y = data.one_hot(y, 5)
    assert Y.shape == (30, 5) and Y.dtype == np.float64
    assert np.array_equal(Y.sum(axis=1), np.ones(30))
    assert np.array_equal(Y.argmax(axis=1), y)
    with pytest.raises(ValueError, match=r"one_hot got label 5 at index 2: expected 0..4 for 5 classes"):
        data.one_hot(np.array([0, 1, 5]), 5)
    with pytest.raises(ValueError, match=r"one_hot needs 1-D integer labels, got shape \(3,\) and dtype float64"):
        data.one_hot(np.array([0.0, 1.0, 2.0]), 3)


# --- data sets -------------------------------------------------------------------------------------

def test_load_moons_shapes_and_determinism():
    X, y = data.load_moons(200, 0.1, np.random.default_rng(0))
    assert X.shape == (200, 2) and X.dtype == np.float64
    assert y.shape == (200, 1) and y.dtype == np.float64
    assert set(np.unique(y)) == {0.0, 1.0}
    X2, y2 = data.load_moons(200, 0.1, np.random.default_rng(0))
    X3, _ = data.load_moons(200, 0.1, np.random.default_rng(1))
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert not np.allclose(X, X3)


def test_load_moons_errors():
    with pytest.raises(TypeError, match="load_moons needs rng="):
        data.load_moons(100, 0.1, 0)
    with pytest.raises(ValueError, match="load_moons got n=1"):
        data.load_moons(1, 0.1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="load_moons got noise=-0.1"):
        data.load_moons(100, -0.1, np.random.default_rng(0))


def test_load_digits_data():
    X, y = data.load_digits_data()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype.kind == "i"
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.array_equal(np.unique(y), np.arange(10))


def test_importing_bpkit_does_not_import_sklearn_torch_or_tqdm():
    code = ("import sys, bpkit, bpkit.data, bpkit.optim, bpkit.train; "
            "print(sorted(m for m in ('sklearn', 'torch', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

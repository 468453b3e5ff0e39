r"""Data helpers: minibatches, splits, scaling, one-hot labels and two small data sets.

Every row of ``X`` (shape ``(N, n_0)``) is one example and ``y`` holds its target in
the same row order (shape ``(N,)`` or ``(N, k)``). Randomness comes only from the
``rng`` (a ``numpy.random.Generator``) passed in. The data sets come from
scikit-learn's bundled copies (nothing is downloaded); scikit-learn is imported only
when one of them is asked for.
"""

import numpy as np

from ._checks import as_float64, check_finite


def _check_rng(rng, who):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who} needs rng=np.random.default_rng(seed), got {type(rng).__name__}")


def check_pair(X, y, who):
    """Return ``X, y`` as arrays with one row per example and the same number of rows, or raise naming ``who``."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{who} needs arrays with one row per example, got X of shape {X.shape} and y of shape {y.shape}")
    if len(X) == 0:
        raise ValueError(f"{who} got an empty data set (X of shape {X.shape}): it needs at least one example")
    if len(X) != len(y):
        raise ValueError(f"{who} got X with {len(X)} rows (shape {X.shape}) but y with {len(y)} (shape {y.shape}): they must match")
    return X, y


def check_batch_size(batch_size, n, who):
    """Raise ``ValueError`` naming ``who`` unless ``batch_size`` is an integer from 1 to ``n``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
        raise ValueError(f"{who} got batch_size={batch_size!r} for {n} examples: expected an integer from 1 to {n}")


def minibatches(X, y, batch_size, rng, shuffle=True, drop_last=False):
    r"""Split one epoch of ``(X, y)`` into minibatches.

    With ``shuffle=True`` the rows are visited in the order of ``rng.permutation(N)``,
    so each example appears in exactly one batch per epoch. There are
    $\lceil N/B \rceil$ batches; the last one has $N - B\lfloor (N-1)/B\rfloor$ rows,
    or is left out if ``drop_last`` is true and it is smaller than $B$.

    Args:
        X: inputs ``(N, n_0)``. y: targets ``(N,)`` or ``(N, k)``.
        batch_size: $B$, an integer with $1 \le B \le N$.
        rng: ``numpy.random.Generator`` (used only if ``shuffle``; may be ``None`` otherwise).
    Returns:
        an iterator of ``(X_batch, y_batch)``, shapes ``(B, n_0)`` and ``(B, ...)``.
    """
    X, y = check_pair(X, y, "minibatches")
    n = len(X)
    check_batch_size(batch_size, n, "minibatches")
    if shuffle:
        _check_rng(rng, "minibatches")
    order = rng.permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n

    def batches():
        for start in range(0, stop, batch_size):
            if order is None:
                yield X[start:start + batch_size], y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield X[idx], y[idx]

    return batches()


def train_test_split(X, y, test_fraction, rng):
    """Shuffle the rows with ``rng`` and hold out ``round(test_fraction * N)`` of them.

    Returns:
        ``X_train, X_test, y_train, y_test`` (scikit-learn's order); both parts are non-empty.
    """
    X, y = check_pair(X, y, "train_test_split")
    _check_rng(rng, "train_test_split")
    n = len(X)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)):
        raise TypeError(f"train_test_split got test_fraction={test_fraction!r} of type {type(test_fraction).__name__}: "
                        "expected a number in (0, 1), e.g. 0.2")
    n_test = round(float(test_fraction) * n) if 0 < test_fraction < 1 else 0
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"train_test_split got test_fraction={test_fraction!r} for {n} examples: "
                         f"both parts must be non-empty (use a fraction in (0, 1))")
    order = rng.permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


def standardize(X_train, X_test):
    r"""Scale each feature to mean 0 and standard deviation 1 *using the training set only*.

    $x' = (x - \mu) / \sigma$ with $\mu, \sigma$ of the columns of ``X_train`` (a constant
    column gets $\sigma = 1$). Using the test set's statistics would leak it into training.

    Returns:
        ``X_train_scaled, X_test_scaled``, float arrays of the input shapes.
    """
    X_train, X_test = as_float64(X_train, "standardize", "X_train"), as_float64(X_test, "standardize", "X_test")
    if X_train.ndim != 2 or X_test.ndim != 2 or X_train.shape[1] != X_test.shape[1] or len(X_train) == 0:
        raise ValueError(f"standardize needs non-empty 2-D arrays with the same number of columns, "
                         f"got X_train {X_train.shape} and X_test {X_test.shape}")
    for what, data in (("X_train", X_train), ("X_test", X_test)):
        check_finite(data, "standardize", what)
    scale = np.max(np.abs(X_train), axis=0)  # divide by it first, so that the variance cannot overflow
    scale[scale == 0] = 1.0
    mu = (X_train / scale).mean(axis=0)
    sigma = (X_train / scale).std(axis=0)
    sigma[sigma == 0] = 1.0
    return (X_train / scale - mu) / sigma, (X_test / scale - mu) / sigma


def one_hot(y, n_classes):
    """Integer labels ``(N,)`` in ``0..n_classes-1`` to a float64 matrix ``(N, n_classes)`` with one 1 per row."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"one_hot needs 1-D integer labels, got shape {y.shape} and dtype {y.dtype}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"one_hot got n_classes={n_classes!r}: expected a positive integer")
    bad = np.flatnonzero((y < 0) | (y >= n_classes))
    if bad.size:
        raise ValueError(f"one_hot got label {y[bad[0]]} at index {bad[0]}: expected 0..{n_classes - 1} for {n_classes} classes")
    Y = np.zeros((len(y), n_classes))
    Y[np.arange(len(y)), y] = 1.0
    return Y


def load_moons(n, noise, rng):
    """Two interleaved half-moons (``sklearn.datasets.make_moons``), seeded from ``rng``.

    Returns:
        ``X`` float64 ``(n, 2)`` and ``y`` float64 ``(n, 1)`` with values 0 and 1
        (the column shape that ``BCEWithLogits`` expects).
    """
    _check_rng(rng, "load_moons")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"load_moons got n={n!r}: expected an integer >= 2")
    if not noise >= 0:
        raise ValueError(f"load_moons got noise={noise!r}: expected a standard deviation >= 0")
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=int(n), noise=float(noise), random_state=int(rng.integers(2**31 - 1)))
    return X.astype(np.float64), y.astype(np.float64).reshape(-1, 1)


def load_digits_data():
    """The 1,797 handwritten 8x8 digits bundled with scikit-learn (``load_digits``), 10 classes.

    Returns:
        ``X`` float64 ``(1797, 64)``: pixel intensities scaled from 0..16 to [0, 1];
        ``y`` int ``(1797,)``: the digit, 0..9.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float64) / 16.0, digits.target.astype(np.int64)

"""Input checks shared by every bpkit piece.

Each check raises a ``TypeError`` or ``ValueError`` whose message starts with the
name of the thing that received the bad input, says what it got and what it expected, so
that a learner never has to read a numpy traceback from deep inside.

``who`` is a string, an object (``Dense(3->4)``) or a bound method (``Dense(3->4).backward``).
Objects and methods are turned into text only when there is an error: the checks run on
every call, so the common case must cost next to nothing.
"""

import math

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def name(who):
    """The text for ``who`` in a message: ``repr`` of an object, ``"Dense(3->4).backward"`` for a bound method."""
    if isinstance(who, str):
        return who
    owner = getattr(who, "__self__", None)
    if owner is not None and hasattr(who, "__name__"):
        return f"{owner!r}.{who.__name__}"
    return repr(who)


def as_float_array(x, who, what="input"):
    """Return ``x`` as a float32/float64 ndarray, or raise a clear ``TypeError``.

    Python lists and scalars of floats are converted; integer, boolean, complex and
    object arrays are refused, because silently converting them hides bugs (labels
    passed as inputs, a forgotten ``astype``).
    """
    arr = np.asarray(x)
    if arr.dtype.type not in FLOAT_DTYPES:
        if arr.dtype.kind in "iub":
            hint = "convert it with .astype(np.float64)"
        else:
            hint = "pass a float32 or float64 numpy array"
        raise TypeError(f"{name(who)} got {what} with dtype {arr.dtype}: expected float32 or float64 ({hint})")
    return arr


def as_float64(x, who, what="input"):
    """``x`` as a float64 array if it holds real numbers (bool, int or float), else a clear ``TypeError``."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name(who)} got {what} of type {type(x).__name__} with dtype {arr.dtype}: expected real numbers")
    return arr.astype(np.float64)


def finite(arr):
    """True if every entry of the float array ``arr`` is finite.

    One BLAS pass and no array of flags: the sum of squares is finite unless an entry is NaN or inf, or
    the squares overflow (entries near the top of the dtype), and only then is each entry tested.
    """
    return math.isfinite(np.vdot(arr, arr)) or bool(np.isfinite(arr).all())


def check_finite(arr, who, what="input"):
    """Raise ``ValueError`` naming the first non-finite entry of ``arr``, if any."""
    if not finite(arr):
        bad = np.argwhere(~np.isfinite(arr))
        first = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{name(who)} got {what} with {len(bad)} non-finite value(s) (NaN or inf); "
            f"the first is {arr[first]} at index {first}"
        )


def check_2d(arr, who, what="input", width=None):
    """Require a batch-first 2-D array ``(batch, width)``; explain 1-D mistakes."""
    expected = f"(batch, {width})" if width is not None else "(batch, features)"
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 1:
            hint = "; for one example use x.reshape(1, -1), for one feature x.reshape(-1, 1)"
        raise ValueError(f"{name(who)} got {arr.ndim}-D {what} of shape {arr.shape}: expected a 2-D array {expected}{hint}")
    if width is not None and arr.shape[1] != width:
        raise ValueError(f"{name(who)} got {what} of shape {arr.shape}: expected {expected}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name(who)} got an empty batch ({what} of shape {arr.shape})")
    if arr.shape[1] == 0:
        raise ValueError(f"{name(who)} got {what} of shape {arr.shape}, with no columns: expected {expected}")


def batch_input(x, who, width=None, what="input"):
    """The full check for a layer input: float dtype, 2-D batch-first, right width, finite."""
    arr = as_float_array(x, who, what)
    check_2d(arr, who, what, width)
    check_finite(arr, who, what)
    return arr

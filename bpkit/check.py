r"""Self-checks a learner calls after an exercise: ``check.array``, ``check.scalar``, ``check.function``.

A check prints one short line when the answer is right and raises :class:`CheckFailed`
(an ``AssertionError``) when it is wrong. The message says *what* is wrong (type, number of
axes, which axis has the wrong length, NaN, which entries differ, by what relative error)
and hints at the usual cause (a forgotten ``.T``, the $1/N$ of the batch mean, a sign,
``keepdims``), but it never shows the expected values, so it can be read without spoiling
the exercise.

The relative error of an answer $g$ against the expected $e$ is
$\lVert g - e\rVert_\infty / \max(\lVert e\rVert_\infty, \text{atol})$.
"""

import numpy as np


class CheckFailed(AssertionError):
    """The answer to an exercise is wrong; the message says how, without giving the answer away."""


def _fail(name, problem, hints=()):
    text = f"{name}: {problem}"
    for hint in hints:
        text += f"\n  hint: {hint}"
    raise CheckFailed(text)


def _as_answer_array(got, name):
    """Refuse anything that is not a numpy array, naming what it is instead."""
    if got is None:
        _fail(name, "got None instead of an array", ["did the function forget to `return` its result?"])
    if isinstance(got, (list, tuple)):
        _fail(name, f"got a Python {type(got).__name__}, expected a numpy array",
              ["build it with np.array(...) or, better, with numpy operations on whole arrays"])
    if not isinstance(got, np.ndarray):
        _fail(name, f"got a {type(got).__name__}, expected a numpy array")
    if got.dtype.kind not in "biufc":
        _fail(name, f"got an array of dtype {got.dtype}, expected numbers")
    return got


def _shape_hints(got_shape, exp_shape, batch_size):
    """Hints for a wrong shape: transposed, an axis of length 1 too many or too few, the batch axis."""
    hints = []
    if got_shape == exp_shape[::-1]:
        hints.append("the shape looks transposed: did you forget .T (or swap the operands of @)?")
    squeeze = lambda s: tuple(d for d in s if d != 1)  # noqa: E731
    if len(got_shape) != len(exp_shape) and squeeze(got_shape) == squeeze(exp_shape):
        hints.append("the shapes differ only by an axis of length 1: use keepdims=True in the "
                     "sum/mean, or reshape the result (e.g. x.reshape(1, -1) or x.ravel())")
    if batch_size is not None and len(got_shape) == len(exp_shape):
        pairs = [(i, g, e) for i, (g, e) in enumerate(zip(got_shape, exp_shape)) if g != e]
        extra = [f"axis {i}" for i, g, e in pairs if g == batch_size]
        if extra:
            hints.append(f"{' and '.join(extra)} of the answer has length N = {batch_size}, the batch size, "
                         "where a feature count is expected: sum or average the batch axis away, or "
                         "multiply in the other order (a.T @ b rather than a @ b.T)")
        hints += [f"axis {i} should be the batch axis (length N = {e}): keep one row per example"
                  for i, g, e in pairs if e == batch_size]
    return hints


def _check_shape(got, expected, name, batch_size):
    if got.shape == expected.shape:
        return
    hints = _shape_hints(got.shape, expected.shape, batch_size)
    if got.ndim != expected.ndim:
        _fail(name, f"has {got.ndim} ax{'i' if got.ndim == 1 else 'e'}s (shape {got.shape}), "
                    f"expected {expected.ndim} (shape {expected.shape})", hints)
    axes = [i for i in range(got.ndim) if got.shape[i] != expected.shape[i]]
    which = "; ".join(f"axis {i} has length {got.shape[i]}, expected {expected.shape[i]}" for i in axes)
    _fail(name, f"has shape {got.shape}, expected {expected.shape}: {which}", hints)


def _check_dtype_and_finite(got, expected, name):
    if got.dtype.kind in "biu" and expected.dtype.kind in "fc":
        _fail(name, f"has integer dtype {got.dtype}, expected floating point numbers",
              ["an integer array truncates every value: start from a float array "
               "(np.zeros(shape) not np.zeros(shape, dtype=int)) and avoid //"])
    bad = ~np.isfinite(got) & np.isfinite(expected)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        n_nan, n_inf = int(np.isnan(got[bad]).sum()), int(np.isinf(got[bad]).sum())
        _fail(name, f"contains {n_nan} NaN and {n_inf} inf value(s), the first at index {first}",
              ["look for log(0), 0/0 or exp of a large number; a stable form (log-sum-exp, "
               "np.logaddexp, logits) avoids them"])


def _factor(got, expected):
    """The constant c with got == c * expected, if there is one (else None)."""
    g, e = got.ravel().astype(np.float64), expected.ravel().astype(np.float64)
    ee = float(e @ e)
    if ee == 0.0:
        return None
    c = float(g @ e) / ee
    return c if np.allclose(g, c * e, rtol=1e-6, atol=1e-12 * np.sqrt(ee)) else None


def _factor_hint(got, expected, batch_size):
    """A hint when the answer is the right one times a constant: sign, 2, 1/2, N, 1/N, zero."""
    c = _factor(got, expected)
    if c is None or np.isclose(c, 1.0):
        return []
    named = [(-1.0, "the answer has the wrong sign: check the order (y_hat - y vs y - y_hat) or a missing minus"),
             (2.0, "the answer is exactly 2 times too large: a missing factor 1/2?"),
             (0.5, "the answer is exactly half the right size: a factor 1/2 too many, or 2 missing?")]
    if batch_size:
        named += [(batch_size, f"the answer is N = {batch_size} times too large: check the 1/N factor "
                               "(the loss is a mean over the batch)"),
                  (1.0 / batch_size, f"the answer is N = {batch_size} times too small: check the 1/N factor "
                                     "(divided by N twice, or mean where a sum is needed?)")]
    for factor, hint in named:
        if np.isclose(c, factor):
            return [hint]
    if np.all(got == 0):
        return ["the answer is all zeros: is the computation still a placeholder?"]
    if got.size > 1:
        return [f"the answer is the right one times a constant ({c:.3g}): check the scalar factors "
                "(1/N, 1/2, a learning rate)"]
    return []


def _index_hint(got, expected, wrong):
    """A hint when the answer is transposed, wrong only at one edge of an axis, or shifted by one."""
    if got.ndim == 2 and got.shape[0] == got.shape[1] and np.allclose(got, expected.T):
        return ["the answer equals the right answer transposed: did you forget .T?"]
    for axis in range(got.ndim):
        for edge in (0, got.shape[axis] - 1):
            if got.shape[axis] > 1 and wrong.sum() == np.take(wrong, [edge], axis=axis).sum():
                return [f"every wrong entry is at index {edge} of axis {axis}: check the range "
                        "of a loop or slice there (off by one?)"]
    for axis in range(got.ndim):
        head, tail = range(got.shape[axis] - 1), range(1, got.shape[axis])
        if got.shape[axis] > 2 and (np.allclose(np.take(got, tail, axis), np.take(expected, head, axis))
                                    or np.allclose(np.take(got, head, axis), np.take(expected, tail, axis))):
            return [f"the answer looks shifted by one along axis {axis}: check an index (i vs i + 1)"]
    return []


def _compare(got, expected, name, rtol, atol, batch_size):
    """Raise CheckFailed unless ``got`` is the array ``expected`` up to tolerance."""
    expected = np.asarray(expected)
    got = _as_answer_array(got, name)
    _check_shape(got, expected, name, batch_size)
    _check_dtype_and_finite(got, expected, name)
    wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not wrong.any():
        return
    ftype = np.result_type(got.dtype, expected.dtype, np.float64)
    diff = np.abs(got.astype(ftype) - expected.astype(ftype))
    rel = float(np.nanmax(diff)) / max(float(np.max(np.abs(expected), initial=0.0)), atol)
    hints = _factor_hint(got, expected, batch_size) + _index_hint(got, expected, wrong)
    if got.ndim == 0:
        _fail(name, f"wrong value: relative error {rel:.1e}", hints)
    ratio = np.where(wrong, diff / (atol + rtol * np.abs(expected)), -1.0)
    worst = tuple(int(i) for i in np.unravel_index(int(np.nanargmax(ratio)), got.shape))
    n = int(wrong.sum())
    _fail(name, f"wrong values: {n} of {got.size} entries ({100 * n / got.size:.0f}%) differ, "
                f"the worst at index {worst}; relative error {rel:.1e}", hints)


def array(got, expected, name="answer", rtol=1e-6, atol=1e-9, batch_size=None):
    """Check that the array ``got`` equals ``expected`` (shape, dtype kind and values).

    Args:
        got: the learner's answer.
        expected: the right answer (never shown in the feedback).
        name: what the answer is called in the messages, e.g. ``"grad_W"``.
        rtol, atol: tolerances of ``np.isclose``.
        batch_size: the batch size ``N`` of the exercise, if any: enables the hints about
            the batch axis and the ``1/N`` factor.

    Raises:
        CheckFailed: with what is wrong and a hint, never the expected values.
    """
    _compare(got, expected, name, rtol, atol, batch_size)
    print(f"✓ {name}: correct (shape {np.shape(got)})")


def _compare_scalar(got, expected, name, rtol, atol, batch_size):
    if got is None:
        _fail(name, "got None instead of a number", ["did the function forget to `return` its result?"])
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.number, np.ndarray)):
        _fail(name, f"got a {type(got).__name__}, expected a number")
    if np.ndim(got) != 0:
        _fail(name, f"got an array of shape {np.shape(got)}, expected a single number",
              ["reduce it (np.sum / np.mean over every axis), or take the number out with float(x)"])
    _compare(np.asarray(got, dtype=np.float64), np.float64(expected), name, rtol, atol, batch_size)


def scalar(got, expected, name="answer", rtol=1e-6, atol=1e-9, batch_size=None):
    """Check that the number ``got`` equals ``expected`` up to ``rtol``/``atol`` (see :func:`array`)."""
    _compare_scalar(got, expected, name, rtol, atol, batch_size)
    print(f"✓ {name}: correct")


def _describe(args):
    return ", ".join(f"shape {np.shape(a)}" if isinstance(a, np.ndarray) else type(a).__name__ for a in args)


def function(fn, reference, inputs, name=None, rtol=1e-6, atol=1e-9, batch_size=None):
    """Check ``fn(*args) == reference(*args)`` for every ``args`` tuple in ``inputs``.

    ``NotImplementedError`` from ``fn`` (an exercise not done yet) propagates unchanged; any
    other exception, and a function that changes its arguments in place, fails the check.
    Each answer is compared like :func:`array` (or :func:`scalar` when the reference returns
    a number). Prints one line when every input gives the right answer.
    """
    name = name or getattr(fn, "__name__", "function")
    inputs = [args if isinstance(args, tuple) else (args,) for args in inputs]
    for k, args in enumerate(inputs):
        copies = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
        expected = reference(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
        where = f"{name} on input {k} ({_describe(args)})"
        try:
            got = fn(*args)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise CheckFailed(f"{where}: raised {type(exc).__name__}: {exc}") from exc
        for i, (a, c) in enumerate(zip(args, copies)):
            if isinstance(a, np.ndarray) and not np.array_equal(a, c, equal_nan=True):
                _fail(where, f"changed its argument {i} in place",
                      ["compute a new array (e.g. grad = grad_out * mask) instead of writing into an input"])
        if isinstance(expected, np.ndarray) and expected.ndim > 0:
            _compare(got, expected, where, rtol, atol, batch_size)
        else:
            _compare_scalar(got, expected, where, rtol, atol, batch_size)
    print(f"✓ {name}: correct on {len(inputs)} input(s)")

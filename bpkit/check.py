r"""Self-checks a learner calls after an exercise.

A check prints one short line when the answer is right and raises :class:`CheckFailed`
(an ``AssertionError``) when it is wrong. The message says *what* is wrong (type, number of
axes, which axis has the wrong length, NaN, which entries differ, by what relative error, an
argument changed in place, a missing ``return``) and hints at the usual cause (a forgotten
``.T``, the $1/N$ of the batch mean, a sign, ``keepdims``), but it never shows the expected
values, so it can be read without spoiling the exercise.

- ``check.array``, ``check.scalar``: one answer against the right one;
- ``check.function``: a function against a reference on several inputs (and that it leaves its
  arguments alone);
- ``check.call``, ``check.unpack``, ``check.instance``: run a learner's function and take its result
  apart, turning an exception, a changed argument or a wrong kind of result into a message;
- ``check.names``, ``check.shapes``: a collection of names, a dict of shapes and counts;
- ``check.count_calls``, ``RecordingGenerator``: what a check needs to see how an answer was
  computed (how many sweeps it ran, which random direction it drew).

An exercise can replace the generic hints by its own: every check takes ``hints``, a dict from a
*symptom* to a hint (or to ``None``, which drops the generic hint). The symptoms of a wrong value
are ``"nonfinite"``, ``"sign"``, ``"twice"`` (2 times the right answer), ``"half"``, ``"times_n"``,
``"over_n"`` (the batch size $N$ too large or too small), ``"factor"`` (another constant),
``"zeros"``, ``"transposed"``, ``"edge"`` (wrong only at one end of an axis), ``"shifted"``, and
``"wrong"``, the hint given when none of the others applies. ``"shape"`` adds a hint to a wrong
shape, ``"raised"`` to an exception, ``"in_place"`` replaces the hint for a changed argument.
``check.names`` takes ``"container"``, ``"not_str"``, ``"extra"``, ``"missing"``, ``"repeated"`` and
``"order"``; ``check.shapes`` a hint per key of the dict.

The relative error a message reports is the one of chapter 5's gradient checker,
``bk.rel_error(g, e, floor=atol)`` $= \lVert g - e\rVert_\infty / \max(\lVert g\rVert_\infty, \lVert e\rVert_\infty, \text{atol})$,
for an answer $g$ and the expected $e$.
"""

import contextlib
import inspect

import numpy as np

from .gradcheck import rel_error


class CheckFailed(AssertionError):
    """The answer to an exercise is wrong; the message says how, without giving the answer away."""


def _fail(name, problem, hints=()):
    text = f"{name}: {problem}"
    for hint in hints:
        text += f"\n  hint: {hint}"
    raise CheckFailed(text)


def _hint(hints, key, default=None):
    """``[the exercise's hint for key]`` if it gives one, ``[]`` if it drops it, else ``[default]``."""
    if hints and key in hints:
        return [] if hints[key] is None else [hints[key]]
    return [] if default is None else [default]


_NO_RETURN = "did the function forget to `return` its result?"


def _a(kind):
    """``kind`` with its article, as it is read aloud: "a float", "an int", "an ndarray"."""
    return f"{'an' if kind[:1].lower() in 'aeiou' or kind == 'ndarray' else 'a'} {kind}"


def _as_answer_array(got, name):
    """Refuse anything that is not a numpy array, naming what it is instead."""
    if got is None:
        _fail(name, "got None instead of an array", [_NO_RETURN])
    if isinstance(got, (list, tuple)):
        _fail(name, f"got a Python {type(got).__name__}, expected a numpy array",
              ["build it with np.array(...) or, better, with numpy operations on whole arrays"])
    if not isinstance(got, np.ndarray):
        hint = (["convert a tensor with .detach().numpy()"] if type(got).__module__.startswith("torch") else [])
        _fail(name, f"got {_a(type(got).__name__)}, expected a numpy array", hint)
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


def _check_shape(got, expected, name, batch_size, hints):
    if got.shape == expected.shape:
        return
    found = _shape_hints(got.shape, expected.shape, batch_size) + _hint(hints, "shape")
    if got.ndim != expected.ndim:
        _fail(name, f"has {got.ndim} ax{'i' if got.ndim == 1 else 'e'}s (shape {got.shape}), "
                    f"expected {expected.ndim} (shape {expected.shape})", found)
    axes = [i for i in range(got.ndim) if got.shape[i] != expected.shape[i]]
    which = "; ".join(f"axis {i} has length {got.shape[i]}, expected {expected.shape[i]}" for i in axes)
    _fail(name, f"has shape {got.shape}, expected {expected.shape}: {which}", found)


def _check_dtype_and_finite(got, expected, name, hints):
    if got.dtype.kind in "biu" and expected.dtype.kind in "fc":
        _fail(name, f"has integer dtype {got.dtype}, expected floating point numbers",
              ["an integer array truncates every value: start from a float array "
               "(np.zeros(shape) not np.zeros(shape, dtype=int)) and avoid //"])
    bad = ~np.isfinite(got) & np.isfinite(expected)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        n_nan, n_inf = int(np.isnan(got[bad]).sum()), int(np.isinf(got[bad]).sum())
        _fail(name, f"contains {n_nan} NaN and {n_inf} inf value(s), the first at index {first}",
              _hint(hints, "nonfinite", "look for log(0), 0/0 or exp of a large number; a stable form "
                                        "(log-sum-exp, np.logaddexp, logits) avoids them"))


def _factor(got, expected):
    """The constant c with got == c * expected, if there is one (else None)."""
    g, e = got.ravel().astype(np.float64), expected.ravel().astype(np.float64)
    ee = float(e @ e)
    if ee == 0.0:
        return None
    c = float(g @ e) / ee
    return c if np.allclose(g, c * e, rtol=1e-6, atol=1e-12 * np.sqrt(ee)) else None


def _factor_hint(got, expected, batch_size, hints):
    """A hint when the answer is the right one times a constant: sign, 2, 1/2, N, 1/N, zero."""
    if np.all(got == 0) and np.any(expected != 0):
        return _hint(hints, "zeros", "the answer is all zeros: is the computation still a placeholder?")
    c = _factor(got, expected)
    if c is None or np.isclose(c, 1.0):
        return []
    named = [(-1.0, "sign", "the answer has the wrong sign: check the order (y_hat - y vs y - y_hat) or a "
                            "missing minus"),
             (2.0, "twice", "the answer is exactly 2 times too large: a missing factor 1/2?"),
             (0.5, "half", "the answer is exactly half the right size: a factor 1/2 too many, or 2 missing?")]
    if batch_size:
        named += [(batch_size, "times_n", f"the answer is N = {batch_size} times too large: check the 1/N "
                                          "factor (the loss is a mean over the batch)"),
                  (1.0 / batch_size, "over_n", f"the answer is N = {batch_size} times too small: check the "
                                               "1/N factor (divided by N twice, or mean where a sum is needed?)")]
    for factor, key, hint in named:
        if np.isclose(c, factor):
            return _hint(hints, key, hint)
    if got.size > 1 or (hints and "factor" in hints):
        return _hint(hints, "factor", f"the answer is the right one times a constant ({c:.3g}): check the "
                                      "scalar factors (1/N, 1/2, a learning rate)")
    return []


def _index_hint(got, expected, wrong, hints):
    """A hint when the answer is transposed, wrong only at one edge of an axis, or shifted by one."""
    if got.ndim == 2 and got.shape[0] == got.shape[1] and np.allclose(got, expected.T):
        return _hint(hints, "transposed", "the answer equals the right answer transposed: did you forget .T?")
    for axis in range(got.ndim):
        for edge in (0, got.shape[axis] - 1):
            if got.shape[axis] > 1 and wrong.sum() == np.take(wrong, [edge], axis=axis).sum():
                return _hint(hints, "edge", f"every wrong entry is at index {edge} of axis {axis}: check the "
                                            "range of a loop or slice there (off by one?)")
    for axis in range(got.ndim):
        head, tail = range(got.shape[axis] - 1), range(1, got.shape[axis])
        if got.shape[axis] > 2 and (np.allclose(np.take(got, tail, axis), np.take(expected, head, axis))
                                    or np.allclose(np.take(got, head, axis), np.take(expected, tail, axis))):
            return _hint(hints, "shifted", f"the answer looks shifted by one along axis {axis}: check an "
                                           "index (i vs i + 1)")
    return []


def _compare(got, expected, name, rtol, atol, batch_size, hints=None):
    """Raise CheckFailed unless ``got`` is the array ``expected`` up to tolerance."""
    expected = np.asarray(expected)
    got = _as_answer_array(got, name)
    _check_shape(got, expected, name, batch_size, hints)
    _check_dtype_and_finite(got, expected, name, hints)
    wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not wrong.any():
        return
    ftype = np.result_type(got.dtype, expected.dtype, np.float64)
    diff = np.abs(got.astype(ftype) - expected.astype(ftype))
    finite = np.isfinite(got) & np.isfinite(expected)          # matching NaN/inf entries are not errors
    rel = rel_error(got[finite].astype(ftype), expected[finite].astype(ftype), floor=atol)
    found = _factor_hint(got, expected, batch_size, hints) + _index_hint(got, expected, wrong, hints)
    found = found or _hint(hints, "wrong")
    if got.ndim == 0:
        _fail(name, f"wrong value: relative error {rel:.1e}", found)
    ratio = np.where(wrong, diff / (atol + rtol * np.abs(expected)), -1.0)
    worst = tuple(int(i) for i in np.unravel_index(int(np.nanargmax(ratio)), got.shape))
    n = int(wrong.sum())
    _fail(name, f"wrong values: {n} of {got.size} entries ({100 * n / got.size:.0f}%) differ, "
                f"the worst at index {worst}; relative error {rel:.1e}", found)


def array(got, expected, name="answer", rtol=1e-6, atol=1e-9, batch_size=None, hints=None, quiet=False):
    """Check that the array ``got`` equals ``expected`` (shape, dtype kind and values).

    Args:
        got: the learner's answer.
        expected: the right answer (never shown in the feedback).
        name: what the answer is called in the messages, e.g. ``"grad_W"``.
        rtol, atol: tolerances of ``np.isclose``.
        batch_size: the batch size ``N`` of the exercise, if any: enables the hints about
            the batch axis and the ``1/N`` factor.
        hints: the exercise's own hints by symptom (see the module's docstring).
        quiet: print nothing when the answer is right (for a check inside a loop).

    Raises:
        CheckFailed: with what is wrong and a hint, never the expected values.
    """
    _compare(got, expected, name, rtol, atol, batch_size, hints)
    if not quiet:
        print(f"✓ {name}: correct (shape {np.shape(got)})")


def _compare_scalar(got, expected, name, rtol, atol, batch_size, hints=None):
    if got is None:
        _fail(name, "got None instead of a number", [_NO_RETURN])
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.number, np.ndarray)):
        hint = ["take the number out of a tensor with .item()"] if type(got).__module__.startswith("torch") else []
        _fail(name, f"got {_a(type(got).__name__)}, expected a number", hint)
    if np.ndim(got) != 0:
        _fail(name, f"got an array of shape {np.shape(got)}, expected a single number",
              ["reduce it (np.sum / np.mean over every axis), or take the number out with float(x)"])
    _compare(np.asarray(got, dtype=np.float64), np.float64(expected), name, rtol, atol, batch_size, hints)


def scalar(got, expected, name="answer", rtol=1e-6, atol=1e-9, batch_size=None, hints=None, quiet=False):
    """Check that the number ``got`` equals ``expected`` up to ``rtol``/``atol`` (see :func:`array`)."""
    _compare_scalar(got, expected, name, rtol, atol, batch_size, hints)
    if not quiet:
        print(f"✓ {name}: correct")


def _describe(args):
    def one(a):
        if isinstance(a, np.ndarray):
            return f"shape {a.shape}"
        if isinstance(a, type):
            return a.__name__
        if isinstance(a, (list, tuple)):
            return f"{type(a).__name__} of {len(a)}"
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            return f"{a:g}"
        return type(a).__name__
    return ", ".join(map(one, args))


def _snapshot(a):
    """A copy of the arrays in ``a`` (an array, or a list or tuple of them), to detect changes in place."""
    if isinstance(a, np.ndarray):
        return np.copy(a)
    if isinstance(a, (list, tuple)):
        return [_snapshot(x) for x in a]
    return None


def _changed(a, snap):
    if isinstance(a, np.ndarray):
        return a.shape != snap.shape or not np.array_equal(a, snap, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return len(a) != len(snap) or any(_changed(x, s) for x, s in zip(a, snap))
    return False


def _arg_names(fn, n):
    """The names of the first ``n`` parameters of ``fn`` (or ``None`` each, if they cannot be read)."""
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    return (names + [None] * n)[:n]


def _check_unchanged(fn, name, args, snaps, hints):
    for i, (a, s, arg) in enumerate(zip(args, snaps, _arg_names(fn, len(args)))):
        if s is not None and _changed(a, s):
            which = f"argument {i}" + (f" ({arg})" if arg else "")
            _fail(name, f"changed its {which} in place",
                  _hint(hints, "in_place", "compute a new array instead of writing into an argument (x *= ..., "
                                           "x[...] = ... and out=x all change the caller's array)"))


def call(fn, *args, name=None, hints=None, **kwargs):
    """Run the learner's ``fn(*args, **kwargs)`` and return its result.

    ``NotImplementedError`` (an exercise not done yet) propagates unchanged; any other exception
    becomes a :class:`CheckFailed` that names the function and the exception, and so does an array
    argument (or an array in a list argument) that ``fn`` changed in place.
    """
    name = name or getattr(fn, "__name__", "function")
    snaps = [_snapshot(a) for a in args]
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:
        raise CheckFailed(f"{name}: raised {type(exc).__name__}: {exc}"
                          + "".join(f"\n  hint: {h}" for h in _hint(hints, "raised"))) from exc
    _check_unchanged(fn, name, args, snaps, hints)
    return result


def instance(got, kind, name, hint=None):
    """``got`` if it is a ``kind`` (a class), else a :class:`CheckFailed` that says what it is instead."""
    if got is None:
        _fail(name, f"got None instead of {_a(kind.__name__)}", [_NO_RETURN])
    if not isinstance(got, kind):
        _fail(name, f"got {_a(type(got).__name__)}, expected {_a(kind.__name__)}", [hint] if hint else [])
    return got


def unpack(got, n, name, what=""):
    """``got`` as a tuple of ``n`` results, or a :class:`CheckFailed` that says what it is instead.

    ``what`` names the results in the message, e.g. ``"(dw, db)"``.
    """
    what = f" {what}" if what else ""
    if got is None:
        _fail(name, f"got None instead of {n} results{what}", [_NO_RETURN])
    if not isinstance(got, (tuple, list)):
        _fail(name, f"got {_a(type(got).__name__)}, expected a tuple of {n} results{what}",
              [f"return all {n} results, separated by commas: return {', '.join('abcdefgh'[:n])}"])
    if len(got) != n:
        _fail(name, f"got {_a(type(got).__name__)} of {len(got)} results, expected {n}{what}")
    return tuple(got)


def function(fn, reference, inputs, name=None, rtol=1e-6, atol=1e-9, batch_size=None, hints=None, outputs=None):
    """Check ``fn(*args) == reference(*args)`` for every ``args`` tuple in ``inputs``.

    ``NotImplementedError`` from ``fn`` (an exercise not done yet) propagates unchanged; any
    other exception, and a function that changes its arguments in place, fails the check.
    Each answer is compared like :func:`array` (or :func:`scalar` when the reference returns
    a number); when the reference returns a tuple, ``fn`` must return a tuple of the same length,
    whose results ``outputs`` names (e.g. ``("w", "m", "v")``). ``batch_size`` may be a function
    of the arguments (``lambda z, y: len(z)``) when the inputs have different batch sizes.
    Prints one line when every input gives the right answer.
    """
    name = name or getattr(fn, "__name__", "function")
    inputs = [args if isinstance(args, tuple) else (args,) for args in inputs]
    for k, args in enumerate(inputs):
        expected = reference(*[_copy_arg(a) for a in args])
        where = f"{name} on input {k} ({_describe(args)})"
        got = call(fn, *args, name=where, hints=hints)
        n = batch_size(*args) if callable(batch_size) else batch_size
        if isinstance(expected, tuple):
            labels = outputs or [f"result {j}" for j in range(len(expected))]
            got = unpack(got, len(expected), where, "(" + ", ".join(labels) + ")")
            pairs = [(g, e, f"{where}, {label}") for g, e, label in zip(got, expected, labels)]
        else:
            pairs = [(got, expected, where)]
        for g, e, label in pairs:
            if isinstance(e, np.ndarray) and e.ndim > 0:
                _compare(g, e, label, rtol, atol, n, hints)
            else:
                _compare_scalar(g, e, label, rtol, atol, n, hints)
    print(f"✓ {name}: correct on {len(inputs)} input(s)")


def _copy_arg(a):
    if isinstance(a, np.ndarray):
        return np.copy(a)
    if isinstance(a, list):
        return [_copy_arg(x) for x in a]
    return a


def names(got, expected, name="answer", kind=list, hints=None):
    """Check a collection of names (strings): the right ones, in a ``list`` (in order) or a ``set``.

    The message says which of the learner's names should not be there and whether some are missing,
    never which ones or how many.
    """
    what = "a list" if kind is list else "a set"
    if got is None:
        _fail(name, f"got None instead of {what} of names", [_NO_RETURN])
    if kind is set and isinstance(got, (list, tuple)):
        _fail(name, f"got {_a(type(got).__name__)}, expected a set of names",
              _hint(hints, "container", "the exercise asks for a set (no order, no repeats): set(...) makes one"))
    if kind is list and isinstance(got, (set, frozenset)):
        _fail(name, f"got {_a(type(got).__name__)}, expected a list of names",
              _hint(hints, "container", "the exercise asks for a list, in a given order: build it with [...]"))
    if not isinstance(got, kind):
        _fail(name, f"got {_a(type(got).__name__)}, expected {what} of names")
    not_names = [g for g in got if not isinstance(g, str)]
    if not_names:
        _fail(name, f"holds {_a(type(not_names[0]).__name__)}, expected names (str) only", _hint(hints, "not_str"))
    extra = [g for g in got if g not in expected]
    missing = [e for e in expected if e not in got]
    if extra:
        _fail(name, f"holds {', '.join(map(repr, extra))}, which should not be there"
                    + (", and misses others" if missing else ""), _hint(hints, "extra"))
    if missing:
        _fail(name, "misses names that should be there", _hint(hints, "missing"))
    if kind is list and len(got) != len(expected):
        _fail(name, "holds a name more than once", _hint(hints, "repeated"))
    if kind is list and list(got) != list(expected):
        _fail(name, "has the right names in the wrong order", _hint(hints, "order"))
    print(f"✓ {name}: correct")


def _shape_problem(got, expected):
    """``(what is wrong with the shape got, whether it is the kind of value)``; ``(None, False)`` if it is right."""
    if isinstance(got, list) and all(isinstance(d, (int, np.integer)) for d in got):
        return "is a list; write a shape as a tuple, e.g. (3, 4), as numpy's .shape gives it", True
    if not isinstance(got, tuple):
        return f"is {_a(type(got).__name__)}, expected a shape: a tuple of ints such as (3, 4)", True
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in got):
        return "holds something other than ints; a shape is a tuple of ints such as (3, 4)", True
    if got == tuple(expected):
        return None, False
    if len(got) != len(expected):
        return f"{got} has {len(got)} ax{'i' if len(got) == 1 else 'e'}s, expected {len(expected)}", False
    if got == tuple(expected)[::-1]:
        return f"{got} looks transposed", False
    return f"{got} is wrong", False


def shapes(got, expected, name="answer", hints=None):
    """Check a dict that maps names to shapes (tuples of ints) or to counts (ints).

    ``hints`` maps a key to a hint for a wrong value there. The message names the first wrong entry
    and the learner's value there, never the expected one.
    """
    if got is None:
        _fail(name, "got None instead of a dict", [_NO_RETURN])
    if not isinstance(got, dict):
        _fail(name, f"got {_a(type(got).__name__)}, expected a dict")
    missing = [key for key in expected if key not in got]
    if missing:
        _fail(name, f"has no entry {', '.join(map(repr, missing))}")
    extra = [key for key in got if key not in expected]
    if extra:
        _fail(name, f"has unexpected entries {', '.join(map(repr, extra))}")
    problems = []
    for key, exp in expected.items():
        value = got[key]
        if isinstance(exp, tuple):
            problem, kind = _shape_problem(value, exp)
        elif isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            problem, kind = f"is {_a(type(value).__name__)}, expected an int", True
        else:
            problem, kind = (None if value == exp else f"{value} is wrong"), False
        if problem:
            problems.append((key, problem, kind))
    if problems:
        key, problem, kind = problems[0]
        more = len(problems) - 1
        more = f" ({more} more wrong entr{'y' if more == 1 else 'ies'})" if more else ""
        _fail(name, f"entry {key!r}: {problem}{more}", [] if kind else _hint(hints, key))
    print(f"✓ {name}: all {len(expected)} entries correct")


class _Counter:
    count = 0


@contextlib.contextmanager
def count_calls(owner, attribute):
    """Count the calls of ``owner.attribute`` (or ``owner[attribute]`` for a dict, e.g. ``globals()``).

    ::

        with check.count_calls(Value, "backward") as backward:
            J = jacobian_reverse(outputs, inputs)
        backward.count   # the backward passes it ran
    """
    is_dict = isinstance(owner, dict)
    original = owner[attribute] if is_dict else inspect.getattr_static(owner, attribute)
    function = owner[attribute] if is_dict else getattr(owner, attribute)
    counter = _Counter()

    def counted(*args, **kwargs):
        counter.count += 1
        return (function if is_dict or not isinstance(owner, type) else original)(*args, **kwargs)

    if is_dict:
        owner[attribute] = counted
    else:
        setattr(owner, attribute, counted)
    try:
        yield counter
    finally:
        if is_dict:
            owner[attribute] = original
        else:
            setattr(owner, attribute, original)


class RecordingGenerator:
    """A ``np.random.default_rng(seed)`` that keeps every array it draws in ``draws``.

    A check hands it to the learner's function in place of a generator, then rebuilds what the
    function drew (a random direction, say) to compute the right answer for that draw.
    """

    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)
        self.draws = []

    def __getattr__(self, attribute):
        method = getattr(self._rng, attribute)
        if not callable(method):
            return method

        def recorded(*args, **kwargs):
            out = method(*args, **kwargs)
            self.draws.append(np.array(out, dtype=np.float64) if np.ndim(out) else out)
            return out

        return recorded

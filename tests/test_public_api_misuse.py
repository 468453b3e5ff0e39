"""A property test over the public API: whatever a learner passes, bpkit answers clearly.

Hypothesis draws misuse for every public callable: arrays of wrong shapes (0-D, 1-D, 3-D, empty,
wrong widths), wrong dtypes (int, bool, complex, object, str), non-finite and huge values, and
values of the wrong type (None, str, list, dict). Each call must either return a finite result or
raise one of bpkit's clear errors (TypeError, ValueError, FloatingPointError, OverflowError,
ZeroDivisionError, RuntimeError) whose message names the object that refused. It must never raise
another exception (an IndexError from numpy, an AttributeError of Python) and never emit a
RuntimeWarning (pytest turns every warning into an error).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpkit as bk
from bpkit import data, optim, train

CLEAR = (TypeError, ValueError, FloatingPointError, OverflowError, ZeroDivisionError, RuntimeError)
#: misuse drawn per call of each callable, in the "ci" profile
EXAMPLES = 60


def _array(shape, kind, fill):
    if kind == "str":
        return np.full(shape, "a")
    if kind == "object":
        return np.full(shape, None, dtype=object)
    if kind == "bool":
        return np.ones(shape, dtype=bool)
    if kind == "int":
        return np.ones(shape, dtype=np.int64)
    if kind == "complex":
        return np.full(shape, 1 + 1j)
    with np.errstate(over="ignore"):  # 1e300 in float32 is inf: one more non-finite case
        return np.full(shape, fill).astype(np.float32 if kind == "float32" else np.float64)


shapes = st.sampled_from([(), (0,), (3,), (0, 2), (4, 0), (4, 1), (4, 2), (4, 3), (5, 2), (2, 2, 2)])
kinds = st.sampled_from(["float64", "float64", "float32", "int", "bool", "complex", "object", "str"])
fills = st.sampled_from([0.5, -2.0, 0.0, 1e300, -1e300, np.nan, np.inf, -np.inf])
arrays_ = st.builds(_array, shapes, kinds, fills)
others = st.sampled_from([None, "x", [1.0, 2.0], {"a": 1}, 3, 0.5, -1, True, float("nan")])
anything = st.one_of(arrays_, arrays_, others)


def clear_or_finite(call, *names):
    """Run ``call()``: it returns a finite result, or raises a clear error whose message names one of ``names``
    (the object called, or the part of it that refused, e.g. a model's first layer)."""
    try:
        result = call()
    except CLEAR as err:
        assert any(n in str(err) for n in names), f"the error names none of {names}: {type(err).__name__}: {err}"
        return None
    for value in result if isinstance(result, tuple) else (result,):
        if isinstance(value, (float, np.ndarray)) and np.asarray(value).dtype.kind == "f":
            assert np.isfinite(value).all(), f"{names[0]} returned a non-finite result {value!r}"
    return result


def _model():
    return bk.MLP([2, 3, 2], "tanh", rng=np.random.default_rng(0))


@settings(max_examples=EXAMPLES)
@given(anything)
def test_model_forward_and_predict(x):
    model = _model()
    clear_or_finite(lambda: model.forward(x), "MLP(", "Dense(2->3)")
    clear_or_finite(lambda: model.predict(x), "MLP(", "Dense(2->3)")


@settings(max_examples=EXAMPLES)
@given(anything)
def test_model_backward(g):
    model = _model()
    model.forward(np.ones((4, 2)))
    clear_or_finite(lambda: model.backward(g), "MLP(")
    clear_or_finite(lambda: model.backward(g, input_grad=True), "MLP(")


@settings(max_examples=EXAMPLES)
@given(st.sampled_from([bk.MSE, bk.BCEWithLogits, bk.SoftmaxCrossEntropy]), anything, anything)
def test_losses(cls, y_hat, y):
    loss = cls()
    clear_or_finite(lambda: loss.forward(y_hat, y), repr(loss))


@settings(max_examples=EXAMPLES)
@given(st.sampled_from([bk.softmax, bk.log_softmax]), anything)
def test_softmax(fn, z):
    clear_or_finite(lambda: fn(z), "log_softmax")


@settings(max_examples=EXAMPLES)
@given(anything, anything)
def test_rel_error_and_accuracy(a, b):
    clear_or_finite(lambda: bk.rel_error(a, b), "rel_error")
    clear_or_finite(lambda: train.accuracy(a, b), "accuracy")


@settings(max_examples=EXAMPLES)
@given(st.sampled_from(["SGD", "Momentum", "RMSprop", "Adam", "AdamW"]), st.one_of(others, st.just(0.1)),
       st.one_of(others, st.just(None)))
def test_optimizers(name, lr, params_or_none):
    model = _model()
    params = model.parameters() if params_or_none is None else params_or_none
    cls = getattr(optim, name)
    clear_or_finite(lambda: cls(params, lr=lr), name)


@settings(max_examples=EXAMPLES)
@given(anything, st.one_of(others, st.just(1.0)))
def test_clip_grad_norm(grad, max_norm):
    p = bk.Parameter(np.zeros((4, 2)), "w")
    if isinstance(grad, np.ndarray):
        p.grad = grad
    clear_or_finite(lambda: optim.clip_grad_norm([p], max_norm), "clip_grad_norm")


@settings(max_examples=EXAMPLES)
@given(anything, anything, st.one_of(others, st.just(2)))
def test_data_helpers(X, y, n):
    rng = np.random.default_rng(0)
    # these two only reorder rows: a NaN in the data comes out as it went in, so only the errors are checked
    clear_or_finite(lambda: list(data.minibatches(X, y, n, rng)) and None, "minibatches")
    clear_or_finite(lambda: data.train_test_split(X, y, n, rng) and None, "train_test_split")
    clear_or_finite(lambda: data.standardize(X, y), "standardize")
    clear_or_finite(lambda: data.one_hot(X, n), "one_hot")


@settings(max_examples=EXAMPLES)
@given(anything)
def test_gradient_checker(x):
    clear_or_finite(lambda: bk.numerical_gradient(lambda: 1.0, x), "numerical_gradient")
    clear_or_finite(lambda: bk.gradcheck(lambda: x, [bk.Parameter(np.ones(2), "w")]), "gradcheck")


@settings(max_examples=EXAMPLES)
@given(st.one_of(others, st.sampled_from([1e-320, 0.0, -1.0, 1e308, 710.0])),
       st.one_of(others, st.sampled_from([1e-320, 0.0, -1.0, 1e308, 2.0])))
def test_engine(a, b):
    clear_or_finite(lambda: bk.Value(a), "Value")
    v = bk.Value(1.5)
    for op in (lambda: v / b, lambda: v * b, lambda: v + b, lambda: v - b, lambda: v ** b):
        clear_or_finite(lambda: op().data, "Value")
    if isinstance(a, float) and np.isfinite(a):
        w = bk.Value(a)
        for op in (w.log, w.exp, w.tanh, w.sigmoid, w.relu):
            clear_or_finite(lambda: op().data, "Value")


@settings(max_examples=EXAMPLES)
@given(st.fixed_dictionaries({}, optional={
    "epochs": st.one_of(others, st.just(1)), "batch_size": st.one_of(others, st.just(2)),
    "clip_norm": others, "val": st.one_of(others, st.just((np.ones((2, 2)), np.ones((2, 2))))),
    "rng": others}), anything, anything)
def test_fit(kwargs, X, y):
    model = _model()
    args = {"epochs": 1, "batch_size": 2, "rng": np.random.default_rng(0), "progress": False, **kwargs}
    opt = optim.SGD(model.parameters(), lr=0.1)
    # fit itself, or the part that refused: the model's first layer, or the loss
    clear_or_finite(lambda: train.fit(model, bk.MSE(), opt, X, y, **args) and None, "fit", "Dense(2->3)", "MSE()")


"""Tests for bpkit.gradcheck: the checker passes correct gradients and catches planted bugs.

Hypothesis examples per property: test_rel_error_properties 60 (the profile's default),
test_numerical_gradient_matches_a_known_gradient 30; the planted-bug tests are
parametrized cases (5 bugs x 2 checkers on an MLP, 4 bugs on a bare gradcheck), not
hypothesis properties.
"""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import bpkit as bk
from strategies import batch_sizes, widths

# ----------------------------------------------------------------------------- a model with planted bugs

SIZES = [4, 5, 5, 3]  # W2 is square (5 x 5), so a transposed gradient has the right shape
N = 8


def setup(seed=0):
    rng = np.random.default_rng(seed)
    model = bk.MLP(SIZES, "tanh", rng=rng)
    for layer in model.dense_layers:
        layer.b.value[...] = 0.5 * rng.normal(size=layer.b.value.shape)
    return model, rng.normal(size=(N, SIZES[0])), rng.normal(size=(N, SIZES[-1]))


def plant_in_second_layer(model, corrupt):
    """Replace Dense 2's backward by one that runs the real one, then corrupts its result."""
    dense = model.dense_layers[1]
    real_backward = dense.backward

    def buggy_backward(delta):
        return corrupt(dense, real_backward(delta))

    dense.backward = buggy_backward


def scale_W(dense, grad_in):
    dense.W.grad *= 1.01
    return grad_in


def zero_one_coordinate(dense, grad_in):
    dense.W.grad[1, 2] = 0.0
    return grad_in


def transpose_W(dense, grad_in):
    dense.W.grad[...] = dense.W.grad.T.copy()
    return grad_in


def flip_sign_downstream(dense, grad_in):
    return -grad_in  # the delta handed to the layers below has the wrong sign


class MSEWithoutOneOverN(bk.MSE):
    """MSE whose gradient forgets the 1/N of the batch mean."""

    def _grad(self, diff):
        return diff


#: bug name -> (how to plant it, loss to use, parameters whose gradient it breaks)
BUGS = {
    "scaled by 1.01": (scale_W, bk.MSE, {"W2"}),
    "one coordinate zeroed": (zero_one_coordinate, bk.MSE, {"W2"}),
    "transposed W gradient": (transpose_W, bk.MSE, {"W2"}),
    "wrong sign": (flip_sign_downstream, bk.MSE, {"W1", "b1"}),
    "missing 1/N": (None, MSEWithoutOneOverN, {"W1", "b1", "W2", "b2", "W3", "b3"}),
}


def test_correct_model_passes_both_checkers():
    model, X, y = setup()
    full = bk.check_model(model, bk.MSE(), X, y)
    cheap = bk.directional_check(model, bk.MSE(), X, y, np.random.default_rng(1))
    assert full.passed and full.max_error < 1e-8, full
    assert cheap.passed and cheap.max_error < 1e-7, cheap
    assert [r.name for r in cheap.results] == ["dir:all", "dir:W1", "dir:b1", "dir:W2", "dir:b2", "dir:W3", "dir:b3"]


@pytest.mark.parametrize("bug", list(BUGS))
def test_check_model_catches_and_localises_each_planted_bug(bug):
    plant, loss_cls, broken = BUGS[bug]
    model, X, y = setup()
    if plant:
        plant_in_second_layer(model, plant)
    report = bk.check_model(model, loss_cls(), X, y)
    assert not report.passed
    assert {r.name for r in report.results if not r.passed} == broken, report
    assert "gradient check FAILED" in repr(report)


@pytest.mark.parametrize("bug", list(BUGS))
def test_directional_check_catches_and_localises_each_planted_bug(bug):
    plant, loss_cls, broken = BUGS[bug]
    model, X, y = setup()
    if plant:
        plant_in_second_layer(model, plant)
    report = bk.directional_check(model, loss_cls(), X, y, np.random.default_rng(1))
    assert not report.passed
    assert {r.name for r in report.results if not r.passed} == {"dir:all"} | {"dir:" + b for b in broken}, report


@pytest.mark.parametrize("seed", range(5))
def test_directional_check_catches_a_small_bug_for_any_direction_seed(seed):
    model, X, y = setup()
    plant_in_second_layer(model, scale_W)
    assert not bk.directional_check(model, bk.MSE(), X, y, np.random.default_rng(seed)).passed


def test_directional_check_keeps_every_slope_of_an_array_and_names_the_worst_direction():
    model, X, y = setup()
    plant_in_second_layer(model, zero_one_coordinate)
    report = bk.directional_check(model, bk.MSE(), X, y, np.random.default_rng(1), directions=3)
    assert report.results[0].analytic.shape == ()                  # dir:all: one direction
    assert all(r.analytic.shape == r.numeric.shape == (3,) for r in report.results[1:])
    W2 = next(r for r in report.results if r.name == "dir:W2")
    j = int(np.argmax(np.abs(W2.analytic - W2.numeric)))
    assert W2.worst_index == (j,) and f"worst at ({j},)" in repr(W2)


@pytest.mark.parametrize("directions", [0, -1, 2.5, True])
def test_directional_check_refuses_fewer_than_one_direction(directions):
    model, X, y = setup()
    with pytest.raises(ValueError, match=r"directions >= 1"):
        bk.directional_check(model, bk.MSE(), X, y, np.random.default_rng(1), directions=directions)


def test_checkers_leave_the_parameters_exactly_as_they_were():
    model, X, y = setup()
    before = [p.value.copy() for p in model.parameters()]
    bk.check_model(model, bk.MSE(), X, y)
    bk.directional_check(model, bk.MSE(), X, y, np.random.default_rng(2))
    for p, old in zip(model.parameters(), before):
        assert p.value.tobytes() == old.tobytes()


# ----------------------------------------------------------------------------- gradcheck on its own


def smooth_problem():
    """f(W, b) = sum(sin(X W + b)), with W and b Parameters and grads filled by hand."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 4))
    W, b = bk.Parameter(rng.normal(size=(4, 4)), "W"), bk.Parameter(rng.normal(size=4), "b")

    def f():
        return float(np.sum(np.sin(X @ W.value + b.value)))

    c = np.cos(X @ W.value + b.value)
    W.grad[...] = X.T @ c
    b.grad[...] = c.sum(axis=0)
    return f, W, b


def test_gradcheck_passes_a_correct_gradient():
    f, W, b = smooth_problem()
    report = bk.gradcheck(f, [W, b])
    assert report.passed and report.max_error < 1e-8, report
    assert [r.name for r in report.results] == ["W", "b"]


@pytest.mark.parametrize("plant", [
    lambda W: W.grad.__imul__(1.01),
    lambda W: W.grad.__setitem__((2, 1), 0.0),
    lambda W: W.grad.__setitem__(Ellipsis, W.grad.T.copy()),
    lambda W: W.grad.__imul__(-1),
], ids=["scaled by 1.01", "one coordinate zeroed", "transposed", "wrong sign"])
def test_gradcheck_fails_a_planted_bug(plant):
    f, W, b = smooth_problem()
    plant(W)
    report = bk.gradcheck(f, [W, b])
    assert not report.passed
    assert [r.passed for r in report.results] == [False, True]


def test_report_names_the_worst_coordinate_and_both_values():
    f, W, b = smooth_problem()
    true_value = W.grad[2, 3]
    W.grad[2, 3] += 0.5
    report = bk.gradcheck(f, [W, b])
    worst = report.worst
    assert worst.name == "W" and tuple(int(i) for i in worst.worst_index) == (2, 3)
    assert worst.analytic[2, 3] == true_value + 0.5
    assert worst.numeric[2, 3] == pytest.approx(true_value, rel=1e-8, abs=1e-9)
    text = repr(report)
    line = next(s for s in text.splitlines() if "W " in s)
    assert line.strip().startswith("FAIL W")
    assert "worst at (2, 3)" in line
    assert f"analytic {worst.analytic[2, 3]:+.6e}" in line
    assert f"numeric {worst.numeric[2, 3]:+.6e}" in line
    scale = max(np.abs(worst.analytic).max(), np.abs(worst.numeric).max())
    assert report.max_error == worst.error == pytest.approx(0.5 / scale, rel=1e-6)


def test_tolerance_is_respected():
    f, W, b = smooth_problem()
    W.grad *= 1 + 1e-5
    assert not bk.gradcheck(f, [W, b]).passed
    assert bk.gradcheck(f, [W, b], tol=1e-4).passed


# ----------------------------------------------------------------------------- float32 is refused


def test_gradcheck_refuses_float32_parameters():
    p = bk.Parameter(np.zeros(3, dtype=np.float32), "W7")
    with pytest.raises(TypeError, match=r"gradcheck needs float64 parameters; W7 is float32"):
        bk.gradcheck(lambda: float(np.sum(p.value)), [p])


def float32_problem():
    rng = np.random.default_rng(4)
    model = bk.MLP([3, 4, 2], "tanh", rng=rng, dtype=np.float32)
    return model, rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32)


def test_check_model_refuses_a_float32_model():
    model, X, y = float32_problem()
    with pytest.raises(TypeError, match=r"needs float64 parameters; W1 is float32"):
        bk.check_model(model, bk.MSE(), X, y)


def test_directional_check_refuses_a_float32_model():
    model, X, y = float32_problem()
    with pytest.raises(TypeError, match=r"needs float64 parameters; W1 is float32"):
        bk.directional_check(model, bk.MSE(), X, y, np.random.default_rng(0))


# ----------------------------------------------------------------------------- numerical_gradient


def test_numerical_gradient_restores_the_array_exactly():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 4))
    # undoing the steps arithmetically (+eps, -2 eps, +eps) would not give these values back
    assert any(((v + 1e-6) - 2e-6) + 1e-6 != v for v in x.ravel())
    before = x.copy()
    seen = []

    def f():
        seen.append(x.copy())
        return float(np.sum(np.sin(x)))

    bk.numerical_gradient(f, x)
    assert x.tobytes() == before.tobytes()
    assert len(seen) == 2 * x.size
    assert all(np.count_nonzero(s != before) == 1 for s in seen)  # one coordinate at a time


@settings(max_examples=30)
@given(arrays(np.float64, st.tuples(batch_sizes, widths), elements=st.floats(-3, 3)))
def test_numerical_gradient_matches_a_known_gradient(x):
    def f():
        return float(np.sum(np.sin(x) + x ** 2 / 2))

    grad = bk.numerical_gradient(f, x)
    assert grad.shape == x.shape and grad.dtype == np.float64
    # rounding in f (about 1e-16 times the sum of the magnitudes of its terms, which can be far
    # larger than |f| when they cancel) divided by the step 2e-6, with room to spare
    terms = np.sum(np.abs(np.sin(x) + x ** 2 / 2))
    np.testing.assert_allclose(grad, np.cos(x) + x, rtol=0, atol=1e-9 * max(1.0, terms))


def test_central_differences_beat_forward_differences():
    x = np.random.default_rng(6).normal(size=5)
    exact = np.cos(x) * np.exp(np.sin(x))

    def f():
        return float(np.sum(np.exp(np.sin(x))))

    central, forward = {}, {}
    for eps in (1e-2, 1e-3):
        central[eps] = np.max(np.abs(bk.numerical_gradient(f, x, eps) - exact))
        f0 = f()
        fwd = np.empty_like(x)
        for i in range(x.size):
            old = x[i]
            x[i] = old + eps
            fwd[i] = (f() - f0) / eps
            x[i] = old
        forward[eps] = np.max(np.abs(fwd - exact))
        assert central[eps] < forward[eps] / 10
    # error ~ eps^2 for central, ~ eps for forward: a tenth of the step gives 1/100 and 1/10
    assert 30 < central[1e-2] / central[1e-3] < 300
    assert 3 < forward[1e-2] / forward[1e-3] < 30


# ----------------------------------------------------------------------------- rel_error

finite = st.floats(-1e6, 1e6, allow_subnormal=False)


@st.composite
def two_arrays(draw):
    shape = draw(st.tuples(batch_sizes, widths))
    return draw(arrays(np.float64, shape, elements=finite)), draw(arrays(np.float64, shape, elements=finite))


@given(two_arrays(), st.integers(0, 30), st.floats(1.0, 1e3))
def test_rel_error_properties(pair, k, c):
    a, n = pair
    assert bk.rel_error(a, a) == 0.0
    assert bk.rel_error(a, n) == bk.rel_error(n, a)
    assert 0.0 <= bk.rel_error(a, n) <= 2.0
    assert bk.rel_error(2.0 ** k * a, 2.0 ** k * n) == bk.rel_error(a, n)  # exact for powers of two
    assert bk.rel_error(-c * a, -c * n) == pytest.approx(bk.rel_error(a, n), rel=1e-9, abs=1e-15)


def test_rel_error_values():
    assert bk.rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert bk.rel_error([1.0, 2.0], [1.0, 2.2]) == pytest.approx(0.2 / 2.2)
    assert bk.rel_error([1.0, 0.0], [-1.0, 0.0]) == 2.0
    # normalised by the gradient's scale, not per coordinate: a tiny coordinate cannot blow it up
    assert bk.rel_error([1.0, 1e-12], [1.0, 2e-12]) < 1e-11

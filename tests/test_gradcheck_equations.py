"""Every labelled equation of the gradient-checking chapter, checked numerically."""

from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import bpkit as bk
from strategies import seeds

U64 = np.finfo(np.float64).eps
U32 = np.finfo(np.float32).eps


def tanh_set_up(seed, sizes=(3, 4, 4, 2), n=5):
    rng = np.random.default_rng(seed)
    model = bk.MLP(list(sizes), "tanh", rng=rng)
    X, y = rng.normal(size=(n, sizes[0])), rng.normal(size=(n, sizes[-1]))
    return model, bk.MSE(), X, y, rng


def backprop(model, loss, X, y):
    model.zero_grad()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    return model.parameters()


class CountingMSE(bk.MSE):
    calls = 0

    def forward(self, y_hat, y):
        self.calls += 1
        return super().forward(y_hat, y)


# --- eq-gradcheck-central -------------------------------------------------------------------

@settings(max_examples=15)
@given(seeds)
def test_eq_gradcheck_central_one_coordinate_at_a_time(seed):
    """eq-gradcheck-central: g~_i = (L(theta + eps e_i) - L(theta - eps e_i)) / 2 eps for every i of every array."""
    model, loss, X, y, _ = tanh_set_up(seed)
    params = backprop(model, loss, X, y)
    eps = 1e-6
    for p in params:
        by_formula = np.zeros(p.value.shape)
        for i in np.ndindex(p.value.shape):
            e_i = np.zeros(p.value.shape)
            e_i[i] = eps
            p.value += e_i
            L_plus = loss.forward(model.predict(X), y)
            p.value -= 2 * e_i
            L_minus = loss.forward(model.predict(X), y)
            p.value += e_i
            by_formula[i] = (L_plus - L_minus) / (2 * eps)
        bpkit_numeric = bk.numerical_gradient(lambda: loss.forward(model.predict(X), y), p.value, eps)
        assert np.allclose(by_formula, bpkit_numeric, rtol=1e-6, atol=1e-9)
        assert bk.rel_error(p.grad, by_formula) < 1e-7


# --- eq-gradcheck-error-forward / -central / -best-step --------------------------------------

XS = np.linspace(-2, 2, 41)


def forward_error(x, eps):
    return abs((np.exp(x + eps) - np.exp(x)) / eps - np.exp(x))


def central_error(x, eps):
    return abs((np.exp(x + eps) - np.exp(x - eps)) / (2 * eps) - np.exp(x))


def forward_model(x, eps, u=U64):
    return eps / 2 * np.exp(x) + 2 * u * np.exp(x) / eps       # eq-gradcheck-error-forward, L = L'' = exp


def central_model(x, eps, u=U64):
    return eps**2 / 6 * np.exp(x) + u * np.exp(x) / eps       # eq-gradcheck-error-central, L = L''' = exp


@given(st.floats(-2, 2, allow_nan=False))
def test_eq_gradcheck_error_forward_bounds_the_measured_error(x):
    """eq-gradcheck-error-forward: measured error <= a few times (eps/2)|L''| + 2u|L|/eps at every step,
    and equal to the truncation term where that dominates."""
    for eps in np.logspace(-13, -1, 25):
        assert forward_error(x, eps) <= 3 * forward_model(x, eps)
    for eps in (1e-3, 1e-4):
        assert np.isclose(forward_error(x, eps), eps / 2 * np.exp(x), rtol=2e-3)


@given(st.floats(-2, 2, allow_nan=False))
def test_eq_gradcheck_error_central_bounds_the_measured_error(x):
    """eq-gradcheck-error-central: measured error <= a few times (eps^2/6)|L'''| + u|L|/eps,
    and equal to the truncation term where that dominates."""
    for eps in np.logspace(-13, -1, 25):
        assert central_error(x, eps) <= 3 * central_model(x, eps)
    for eps in (1e-1, 3e-2):
        assert np.isclose(central_error(x, eps), eps**2 / 6 * np.exp(x), rtol=2e-3)


def test_eq_gradcheck_error_roundoff_grows_as_one_over_h():
    """The u|L|/eps term: shrinking eps 100-fold below the best step multiplies the typical error ~100-fold."""
    for err, h_small, h_big in ((central_error, 1e-10, 1e-8), (forward_error, 1e-12, 1e-10)):
        small = np.median([err(x, h_small) for x in XS])
        big = np.median([err(x, h_big) for x in XS])
        assert 20 < small / big < 500


def test_eq_gradcheck_best_step_minimises_the_model():
    """eq-gradcheck-best-step: eps* is the minimiser of each error model, and eps* ~ u^(1/2), u^(1/3)."""
    L, L2, L3 = 1.3, 0.7, 2.1
    h_fwd = 2 * np.sqrt(U64 * L / L2)
    h_ctr = (3 * U64 * L / L3) ** (1 / 3)
    grid = np.logspace(-12, -1, 20001)
    E_fwd = grid / 2 * L2 + 2 * U64 * L / grid
    E_ctr = grid**2 / 6 * L3 + U64 * L / grid
    assert np.isclose(grid[np.argmin(E_fwd)], h_fwd, rtol=2e-3)
    assert np.isclose(grid[np.argmin(E_ctr)], h_ctr, rtol=2e-3)
    assert 0.1 < h_fwd / np.sqrt(U64) < 10 and 0.1 < h_ctr / U64 ** (1 / 3) < 10
    assert 0.1 < E_fwd.min() / np.sqrt(U64) < 10 and 0.1 < E_ctr.min() / U64 ** (2 / 3) < 10


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_eq_gradcheck_best_step_measured(dtype):
    """At eps*, the measured error (typical over many points) is at the predicted E*, and far below
    the error 100 times closer to zero; in float32 E* stays above the 1e-7 tolerance."""
    u = np.finfo(dtype).eps
    h_star = float((3 * u) ** (1 / 3))                     # |L| = |L'''| for exp
    xs = XS.astype(dtype)

    def err(eps):
        f = lambda t: np.exp(t.astype(dtype))  # noqa: E731
        step = dtype(eps)
        numeric = (f(xs + step).astype(np.float64) - f(xs - step).astype(np.float64)) / (2 * float(step))
        return np.abs(numeric - np.exp(xs.astype(np.float64))) / np.exp(xs.astype(np.float64))

    E_star = h_star**2 / 6 + u / h_star                    # relative form of eq-gradcheck-error-central
    assert np.median(err(h_star)) <= 3 * E_star
    assert np.median(err(h_star / 100)) > 10 * np.median(err(h_star))
    if dtype == np.float32:
        assert np.median(err(h_star)) > 1e-7
        assert np.median(err(1e-6)) > 1e-3


# --- eq-gradcheck-rel-error ------------------------------------------------------------------

normal_floats = st.floats(-5, 5, allow_nan=False).filter(lambda v: v == 0 or abs(v) > 1e-200)
gradients = arrays(np.float64, (3, 4), elements=normal_floats)


@given(gradients, gradients, st.integers(-20, 20))
def test_eq_gradcheck_rel_error_formula_and_properties(g, g_num, k):
    """eq-gradcheck-rel-error: max|g - g~| / max(max|g|, max|g~|); symmetric, scale-free, in [0, 2]."""
    scale = max(np.abs(g).max(), np.abs(g_num).max())
    expected = np.abs(g - g_num).max() / scale if scale > 0 else 0.0
    e = bk.rel_error(g, g_num)
    assert e == pytest.approx(expected, rel=1e-12, abs=0)
    assert e == bk.rel_error(g_num, g)
    assert bk.rel_error(2.0**k * g, 2.0**k * g_num) == pytest.approx(e, rel=1e-12, abs=0)
    assert 0 <= e <= 2
    assert bk.rel_error(g, g) == 0
    floor = 10 * max(scale, 1e-3)
    assert bk.rel_error(g, g_num, floor=floor) == pytest.approx(np.abs(g - g_num).max() / floor, rel=1e-12, abs=0)


class _Param:
    def __init__(self, value, grad, name):
        self.value, self.grad, self.name = value, grad, name


def test_eq_gradcheck_rel_error_floor_in_gradcheck():
    """eq-gradcheck-rel-error, floor s0 = 10 u |L| / (eps tol): an array whose whole gradient is far
    below s0 is compared at s0, so round-off alone cannot fail it."""
    x = np.linspace(0.5, 1.5, 6)
    f = lambda: float(2.0 + 1e-9 * np.sum(np.sin(x)))  # noqa: E731
    p = _Param(x, 1e-9 * np.cos(x), "x")
    eps, tol = 1e-6, 1e-7
    result = bk.gradcheck(f, [p], eps=eps, tol=tol).results[0]
    s0 = 10 * U64 * abs(f()) / (eps * tol)
    assert np.abs(p.grad).max() < 1e-6 * s0
    assert result.error == pytest.approx(np.abs(result.analytic - result.numeric).max() / s0, rel=1e-9)
    assert result.passed
    assert bk.rel_error(result.analytic, result.numeric) > 10 * tol     # without the floor: a false alarm


# --- eq-gradcheck-percoord -------------------------------------------------------------------

@given(seeds)
def test_eq_gradcheck_percoord_blows_up_for_small_gradients(seed):
    """eq-gradcheck-percoord: with a fixed absolute error Delta, r_i = Delta / (2|g_i|) approximately,
    large where g_i is small, while the scale-normalised error stays Delta / max|g|."""
    rng = np.random.default_rng(seed)
    g = rng.choice([-1, 1], size=50) * np.logspace(-6, 0, 50)
    abs_err = 1e-11
    g_num = g + abs_err * rng.choice([-1, 1], size=50)
    r = np.abs(g - g_num) / (np.abs(g) + np.abs(g_num))
    assert np.allclose(r, abs_err / (2 * np.abs(g)), rtol=1e-4)
    assert r.max() > 1e-6 > 1e-7
    assert bk.rel_error(g, g_num) == pytest.approx(abs_err / np.abs(g).max(), rel=1e-4)
    assert bk.rel_error(g, g_num) < 1e-10


# --- eq-gradcheck-kink -----------------------------------------------------------------------

@given(st.floats(-3, 3, allow_nan=False), st.sampled_from([1e-3, 1e-6, 1e-8]))
def test_eq_gradcheck_kink_relu_difference_is_the_average_slope(t, eps):
    """eq-gradcheck-kink: (ReLU(z+eps) - ReLU(z-eps))/(2 eps) is 0, (z+eps)/(2 eps) or 1; 1/2 at z = 0."""
    z = np.array([t * eps])
    estimate = (bk.relu(z + eps) - bk.relu(z - eps)) / (2 * eps)
    expected = 0.0 if z[0] <= -eps else 1.0 if z[0] >= eps else (z[0] + eps) / (2 * eps)
    assert abs(estimate[0] - expected) < 1e-6
    assert (bk.relu(np.array([eps])) - bk.relu(np.array([-eps])))[0] / (2 * eps) == 0.5


def test_eq_gradcheck_kink_fails_a_correct_network_and_is_avoided():
    """A zero example with zero biases puts every ReLU at its kink: the check fails on the biases;
    with biases off zero, or with GELU, the same code passes."""
    rng = np.random.default_rng(0)
    model = bk.MLP([4, 6, 5, 2], "relu", rng=rng)
    X, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))
    X[0] = 0.0
    report = bk.check_model(model, bk.MSE(), X, y)
    failing = {r.name for r in report.results if not r.passed}
    assert failing and failing <= {"b1", "b2"}
    for layer in model.dense_layers:
        layer.b.value[...] = 0.1
    assert bk.check_model(model, bk.MSE(), X, y).passed
    smooth = bk.MLP([4, 6, 5, 2], "gelu", rng=np.random.default_rng(0))
    assert bk.check_model(smooth, bk.MSE(), X, y).passed


# --- eq-gradcheck-cost -----------------------------------------------------------------------

def count_evaluations(sizes, rng):
    model = bk.MLP(sizes, "tanh", rng=rng)
    X, y = rng.normal(size=(3, sizes[0])), rng.normal(size=(3, sizes[-1]))
    counter = CountingMSE()
    bk.check_model(model, counter, X, y)
    full, counter.calls = counter.calls, 0
    bk.directional_check(model, counter, X, y, rng)
    return model, full, counter.calls


@settings(max_examples=20)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=4), seeds)
def test_eq_gradcheck_cost_parameter_count_and_evaluations(sizes, seed):
    """eq-gradcheck-cost: P = sum (n_{l-1} + 1) n_l, and the full check costs exactly 2 loss
    evaluations per parameter (plus a fixed overhead of at most 3, the same for every network);
    the directional check 2 per direction, 1 + 2L k directions (k = 12 per array), whatever the widths."""
    P = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    model, full, direc = count_evaluations(sizes, np.random.default_rng(seed))
    assert P == sum(p.value.size for p in model.parameters())
    _, full_ref, direc_ref = count_evaluations([1, 1], np.random.default_rng(seed))   # P = 2, L = 1
    assert full - full_ref == 2 * (P - 2)
    assert 0 <= full - 2 * P <= 3
    k, L = 12, len(sizes) - 1                                        # directional_check's default directions
    n_directions = 1 + 2 * L * k                                     # "all" + k in each of the 2L arrays
    assert direc - direc_ref == 2 * (n_directions - (1 + 2 * k))
    assert 0 <= direc - 2 * n_directions <= 2


# --- eq-gradcheck-directional ----------------------------------------------------------------

@settings(max_examples=20)
@given(seeds)
def test_eq_gradcheck_directional_derivative_is_g_dot_v(seed):
    """eq-gradcheck-directional: g . v = central difference along v, to ~1e-9 of ||g||; and
    bk.directional_check's first result is exactly this comparison, normalised by ||g||."""
    model, loss, X, y, _ = tanh_set_up(seed)
    params = backprop(model, loss, X, y)
    g_norm = np.sqrt(sum(np.sum(p.grad**2) for p in params))
    v_rng = np.random.default_rng(seed + 1)
    v = [v_rng.normal(size=p.value.shape) for p in params]
    norm = np.sqrt(sum(np.sum(vi**2) for vi in v))
    v = [vi / norm for vi in v]
    slope = sum(np.sum(p.grad * vi) for p, vi in zip(params, v))

    def L_at(t):
        saved = [p.value.copy() for p in params]
        for p, vi in zip(params, v):
            p.value += t * vi
        value = loss.forward(model.predict(X), y)
        for p, old in zip(params, saved):
            p.value[...] = old
        return value

    eps = 1e-6
    numeric = (L_at(eps) - L_at(-eps)) / (2 * eps)
    assert abs(slope - numeric) < 1e-8 * g_norm
    first = bk.directional_check(model, loss, X, y, np.random.default_rng(seed + 1)).results[0]
    assert first.name == "dir:all"
    assert np.isclose(float(first.analytic), slope, rtol=1e-12, atol=1e-15)
    assert np.isclose(float(first.numeric), numeric, rtol=1e-9, atol=1e-12)
    assert first.error == pytest.approx(abs(float(first.analytic) - float(first.numeric)) / g_norm, rel=1e-9)


def test_eq_gradcheck_directional_sees_any_bug_along_a_random_direction():
    """A wrong gradient g + d differs from g . v by d . v, nonzero for (almost) every random v."""
    rng = np.random.default_rng(0)
    d = np.zeros(100)
    d[7] = 1e-3                                  # a bug in one coordinate only
    dots = [abs(d @ (w / np.linalg.norm(w))) for w in rng.normal(size=(500, 100))]
    assert min(dots) > 0
    assert np.median(dots) > 1e-3 / np.sqrt(100) / 3


# --- eq-gradcheck-miss -----------------------------------------------------------------------

@pytest.mark.parametrize("P, m, k", [(119, 5, 10), (50, 2, 5), (1000, 10, 20)])
def test_eq_gradcheck_miss_probability(P, m, k):
    """eq-gradcheck-miss: Pr[k random coordinates avoid m buggy ones] = C(P-m, k) / C(P, k) <= (1 - m/P)^k."""
    exact = comb(P - m, k) / comb(P, k)
    assert exact == pytest.approx(np.prod([(P - m - i) / (P - i) for i in range(k)]), rel=1e-12)
    approx = (1 - m / P) ** k
    assert exact <= approx and approx - exact < 0.05
    rng = np.random.default_rng(1)
    trials = 20000
    missed = sum(not np.any(rng.choice(P, size=k, replace=False) < m) for _ in range(trials))
    assert abs(missed / trials - exact) < 4 * np.sqrt(exact * (1 - exact) / trials) + 1e-3

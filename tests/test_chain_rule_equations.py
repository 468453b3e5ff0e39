"""Every labelled equation of chapter 1 (the chain rule), checked numerically or symbolically."""

import numpy as np
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import bpkit as bk
from bpkit.activations import sigmoid_prime

moderate = st.floats(-6, 6, allow_nan=False)


@given(moderate)
def test_eq_chain_derivative_difference_quotient_converges(x):
    """eq-chain-derivative: the difference quotient tends to f'(x) as h -> 0."""
    errors = [abs((np.sin(x + h) - np.sin(x)) / h - np.cos(x)) for h in (1e-2, 1e-3, 1e-4)]
    assert errors[2] < errors[1] < errors[0] or errors[0] < 1e-12


@given(moderate)
def test_eq_chain_linear_remainder_is_second_order(x):
    """eq-chain-linear: f(x+h) - f(x) - f'(x) h = O(h^2): halving h quarters the remainder."""
    def remainder(h):
        return bk.sigmoid(np.array(x + h)) - bk.sigmoid(np.array(x)) - sigmoid_prime(np.array(x)) * h
    r1, r2 = remainder(1e-3), remainder(5e-4)
    if abs(r1) > 1e-12:  # skip only the inflection point where the h^2 term vanishes
        assert 2.5 < r1 / r2 < 5.5 or abs(r1) < 1e-10


def test_eq_chain_rule_symbolic():
    """eq-chain-rule: d f(g(x))/dx = f'(g(x)) g'(x), for a few compositions."""
    x, u = sp.symbols("x u")
    for f, g in [(sp.exp(u), x**2), (sp.log(u), 1 + x**2), (sp.sin(u), sp.exp(x))]:
        lhs = sp.diff(f.subs(u, g), x)
        rhs = sp.diff(f, u).subs(u, g) * sp.diff(g, x)
        assert sp.simplify(lhs - rhs) == 0


def test_eq_chain_sigmoid_symbolic_and_numeric():
    """eq-chain-sigmoid: sigma'(z) = sigma(z)(1 - sigma(z))."""
    z = sp.symbols("z")
    s = 1 / (1 + sp.exp(-z))
    assert sp.simplify(sp.diff(s, z) - s * (1 - s)) == 0
    zz = np.linspace(-20, 20, 401)
    numeric = (bk.sigmoid(zz + 1e-6) - bk.sigmoid(zz - 1e-6)) / 2e-6
    assert bk.rel_error(sigmoid_prime(zz), numeric) < 1e-7


def test_eq_chain_forward_diff_error_is_first_order():
    """eq-chain-forward-diff: error ~ f''(x) h / 2."""
    x = 0.7
    for h in (1e-3, 1e-4):
        err = (np.exp(x + h) - np.exp(x)) / h - np.exp(x)
        assert np.isclose(err, 0.5 * np.exp(x) * h, rtol=1e-2)


def test_eq_chain_central_diff_error_is_second_order():
    """eq-chain-central-diff: error ~ f'''(x) h^2 / 6, far below the forward error."""
    x = 0.7
    for h in (1e-2, 1e-3):
        err = (np.exp(x + h) - np.exp(x - h)) / (2 * h) - np.exp(x)
        assert np.isclose(err, np.exp(x) * h**2 / 6, rtol=1e-2)


@given(st.floats(-3, 3, allow_nan=False))
def test_eq_chain_multivar_sum_over_paths(x0):
    """eq-chain-multivar: L = u v, u = sin x, v = x^2 -> dL/dx = v cos x + u 2x."""
    x = np.array([x0])
    numeric = bk.numerical_gradient(lambda: float(np.sin(x[0]) * x[0] ** 2), x)
    analytic = x**2 * np.cos(x) + np.sin(x) * 2 * x
    assert abs(analytic[0] - numeric[0]) < 1e-7 * max(1.0, abs(analytic[0]))


def test_eq_chain_neuron_matches_bpkit_and_finite_differences(rng):
    """eq-chain-neuron: dl/dw = (a - y) sigma'(z) x and dl/db = (a - y) sigma'(z), batch-averaged."""
    X, y = rng.normal(size=(10, 1)), rng.uniform(size=(10, 1))
    dense, act, loss = bk.Dense(1, 1, rng=rng), bk.Activation("sigmoid"), bk.MSE()
    z = dense.forward(X)
    a = act.forward(z)
    loss.forward(a, y)
    dense.backward(act.backward(loss.backward()))
    assert np.isclose(dense.W.grad[0, 0], np.mean((a - y) * sigmoid_prime(z) * X), rtol=1e-12)
    assert np.isclose(dense.b.grad[0], np.mean((a - y) * sigmoid_prime(z)), rtol=1e-12)
    neuron = bk.Sequential(dense, act)
    report = bk.gradcheck(lambda: loss.forward(neuron.predict(X), y), [dense.W, dense.b])
    assert report.passed, report

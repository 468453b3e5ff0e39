"""Every labelled equation of chapter 3 (the output-layer delta), checked numerically, symbolically
with SymPy, and against PyTorch autograd where a PyTorch counterpart exists."""

import numpy as np
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import away_from_kinks, batch_sizes, float_arrays, seeds, widths

import bpkit as bk
from bpkit.activations import sigmoid_prime
from bpkit.gradcheck import roundoff_floor

z_sym, y_sym = sp.symbols("z y", real=True)
sigma_sym = 1 / (1 + sp.exp(-z_sym))


def shapes(max_width=5):
    return st.tuples(batch_sizes, st.integers(1, max_width))


def numeric_delta(loss_of_z, z):
    """Central differences of the scalar ``loss_of_z(z)`` with respect to every entry of ``z``."""
    return bk.numerical_gradient(lambda: loss_of_z(z), z)


def torch_delta(loss_fn, z):
    """``dL/dz`` by PyTorch autograd for ``L = loss_fn(z_torch)`` (float64)."""
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    loss_fn(zt).backward()
    return zt.grad.numpy()


def sigmoid_mse_delta(z, y):
    """bpkit's delta for a sigmoid output under MSE: the loss's backward, then the activation's."""
    act, mse = bk.Activation("sigmoid"), bk.MSE()
    mse.forward(act.forward(z), y)
    return act.backward(mse.backward())


def fused_delta(loss, z, y):
    loss.forward(z, y)
    return loss.backward()


def simplifies_to_zero(expr):
    return sp.simplify(expr) == 0


# --------------------------------------------------------------------------- set-up and definition

@given(seeds, shapes(), st.integers(1, 4))
def test_eq_outdelta_setup_forward_and_batch_mean(seed, shape, n_prev):
    """eq-outdelta-setup: z = a_prev W + b, a = f(z), L = mean over the batch of per-example losses."""
    rng = np.random.default_rng(seed)
    N, n_L = shape
    a_prev, y = rng.normal(size=(N, n_prev)), rng.uniform(size=(N, n_L))
    dense, act, mse = bk.Dense(n_prev, n_L, rng=rng), bk.Activation("sigmoid"), bk.MSE()
    dense.b.value[...] = rng.normal(size=n_L)
    z = dense.forward(a_prev)
    a = act.forward(z)
    assert np.allclose(z, a_prev @ dense.W.value + dense.b.value, rtol=1e-13, atol=1e-14)
    assert np.array_equal(a, bk.sigmoid(z))
    per_example = [0.5 * np.sum((a[n] - y[n]) ** 2) for n in range(N)]
    assert np.isclose(mse.forward(a, y), np.mean(per_example), rtol=1e-12)


@given(seeds, shapes(), st.sampled_from(["identity", "sigmoid", "tanh", "gelu"]))
def test_eq_outdelta_def_each_entry_is_a_partial_derivative(seed, shape, name):
    """eq-outdelta-def: delta has the shape (N, n_L) of z, and entry (n, j) is dL/dz_nj."""
    rng = np.random.default_rng(seed)
    z, y = rng.normal(scale=2.0, size=shape), rng.normal(size=shape)
    act, mse = bk.Activation(name), bk.MSE()
    value = mse.forward(act.forward(z), y)
    delta = act.backward(mse.backward())
    assert delta.shape == z.shape == shape
    numeric = numeric_delta(lambda v: mse.forward(bk.Sequential(act).predict(v), y), z)
    # a saturated tanh or sigmoid makes delta tiny; the difference quotient then resolves it only to
    # the rounding of the loss itself, u |L| / eps
    assert bk.rel_error(delta, numeric, roundoff_floor(value, 1e-6, 1e-7)) < 1e-7


# --------------------------------------------------------------------------- the general form

def test_eq_outdelta_general_symbolic():
    """eq-outdelta-general: for an elementwise f, dL/dz = dL/da * f'(z) (one path, chain rule)."""
    f, ell = sp.Function("f"), sp.Function("ell")
    lhs = sp.diff(ell(f(z_sym)), z_sym)
    a = sp.Symbol("a")
    rhs = sp.diff(ell(a), a).subs(a, f(z_sym)) * sp.diff(f(z_sym), z_sym)
    assert simplifies_to_zero(lhs - rhs.doit())


@given(float_arrays(st.tuples(batch_sizes, widths)), st.sampled_from(sorted(bk.ACTIVATIONS)), seeds)
def test_eq_outdelta_general_every_activation(z, name, seed):
    """eq-outdelta-general: Activation.backward(grad_a) = grad_a * f'(z), and it matches central differences."""
    z = away_from_kinks(z)
    rng = np.random.default_rng(seed)
    y = rng.normal(size=z.shape)
    act, mse = bk.Activation(name), bk.MSE()
    mse.forward(act.forward(z), y)
    grad_a = mse.backward()
    delta = act.backward(grad_a)
    f_prime = bk.ACTIVATIONS[name][1]
    assert np.array_equal(delta, grad_a * f_prime(z))
    numeric = numeric_delta(lambda v: mse.forward(bk.Sequential(act).predict(v), y), z)
    assert np.max(np.abs(delta - numeric)) < 1e-7 * max(1.0, np.max(np.abs(numeric)))


# --------------------------------------------------------------------------- MSE + sigmoid

def test_eq_outdelta_mse_grad_a_symbolic():
    """eq-outdelta-mse-grad-a: d/da of (1/2N) sum (a - y)^2 = (a - y)/N, for N = 2 examples."""
    a1, a2, y1, y2 = sp.symbols("a1 a2 y1 y2", real=True)
    L = ((a1 - y1) ** 2 + (a2 - y2) ** 2) / (2 * 2)
    assert simplifies_to_zero(sp.diff(L, a1) - (a1 - y1) / 2)
    assert simplifies_to_zero(sp.diff(L, a2) - (a2 - y2) / 2)


@given(seeds, shapes())
def test_eq_outdelta_mse_grad_a_bpkit(seed, shape):
    """eq-outdelta-mse-grad-a: MSE.backward() = (y_hat - y)/N = central differences."""
    rng = np.random.default_rng(seed)
    y_hat, y = rng.normal(size=shape), rng.normal(size=shape)
    mse = bk.MSE()
    mse.forward(y_hat, y)
    grad = mse.backward()
    assert np.allclose(grad, (y_hat - y) / shape[0], rtol=1e-14, atol=0)
    assert bk.rel_error(grad, numeric_delta(lambda v: mse.forward(v, y), y_hat)) < 1e-7


def test_eq_outdelta_mse_sigmoid_symbolic():
    """eq-outdelta-mse-sigmoid: d/dz (1/2)(sigma(z) - y)^2 = (sigma - y) sigma (1 - sigma)."""
    ell = (sigma_sym - y_sym) ** 2 / 2
    assert simplifies_to_zero(sp.diff(ell, z_sym) - (sigma_sym - y_sym) * sigma_sym * (1 - sigma_sym))


@given(seeds, shapes())
def test_eq_outdelta_mse_sigmoid_bpkit_formula_numeric_torch(seed, shape):
    """eq-outdelta-mse-sigmoid: bpkit = (a - y) a (1 - a)/N = central differences = torch autograd."""
    rng = np.random.default_rng(seed)
    z, y = rng.normal(scale=3.0, size=shape), rng.uniform(size=shape)
    N = shape[0]
    delta = sigmoid_mse_delta(z, y)
    a = bk.sigmoid(z)
    assert bk.rel_error(delta, (a - y) * a * (1 - a) / N) < 1e-12
    numeric = numeric_delta(lambda v: bk.MSE().forward(bk.sigmoid(v), y), z)
    assert bk.rel_error(delta, numeric) < 1e-7
    yt = torch.tensor(y)
    expected = torch_delta(lambda zt: 0.5 * torch.sum((torch.sigmoid(zt) - yt) ** 2) / N, z)
    assert bk.rel_error(delta, expected) < 1e-12


# --------------------------------------------------------------------------- BCE + sigmoid

def test_eq_outdelta_bce_grad_a_symbolic():
    """eq-outdelta-bce-grad-a: d/da of -[y log a + (1-y) log(1-a)] = (a - y)/(a (1 - a))."""
    a = sp.Symbol("a", positive=True)
    ell = -(y_sym * sp.log(a) + (1 - y_sym) * sp.log(1 - a))
    assert simplifies_to_zero(sp.diff(ell, a) - (a - y_sym) / (a * (1 - a)))


@given(seeds, shapes())
def test_eq_outdelta_bce_grad_a_numeric(seed, shape):
    """eq-outdelta-bce-grad-a against central differences of the BCE on probabilities."""
    rng = np.random.default_rng(seed)
    a, y = rng.uniform(0.05, 0.95, size=shape), rng.uniform(size=shape)
    N = shape[0]

    def bce_on_probabilities(p):
        return float(-np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / N)

    formula = (a - y) / (a * (1 - a)) / N
    assert bk.rel_error(formula, numeric_delta(bce_on_probabilities, a)) < 1e-7


def test_eq_outdelta_bce_symbolic():
    """eq-outdelta-bce: d/dz of -[y log sigma(z) + (1-y) log(1 - sigma(z))] = sigma(z) - y (sigma' cancels)."""
    ell = -(y_sym * sp.log(sigma_sym) + (1 - y_sym) * sp.log(1 - sigma_sym))
    assert simplifies_to_zero(sp.diff(ell, z_sym) - (sigma_sym - y_sym))


@given(seeds, shapes())
def test_eq_outdelta_bce_bpkit_formula_numeric_torch(seed, shape):
    """eq-outdelta-bce: BCEWithLogits.backward() = (sigma(z) - y)/N = two-step route = numeric = torch."""
    rng = np.random.default_rng(seed)
    z, y = rng.normal(scale=3.0, size=shape), (rng.uniform(size=shape) < 0.5).astype(np.float64)
    N = shape[0]
    delta = fused_delta(bk.BCEWithLogits(), z, y)
    a = bk.sigmoid(z)
    assert bk.rel_error(delta, (a - y) / N) < 1e-12
    act = bk.Activation("sigmoid")
    act.forward(z)
    two_step = act.backward((a - y) / (a * (1 - a)) / N)        # eq-outdelta-bce-grad-a, then sigma'
    assert bk.rel_error(delta, two_step) < 1e-10
    assert bk.rel_error(delta, numeric_delta(lambda v: bk.BCEWithLogits().forward(v, y), z)) < 1e-7
    yt = torch.tensor(y)
    expected = torch_delta(lambda zt: torch.nn.functional.binary_cross_entropy_with_logits(zt, yt, reduction="sum") / N, z)
    assert bk.rel_error(delta, expected) < 1e-12


def test_eq_outdelta_bce_logits_symbolic():
    """eq-outdelta-bce-logits: BCE of sigma(z) = log(1 + e^z) - y z, and its derivative is sigma(z) - y.

    Two functions with equal derivatives that agree at one point are equal.
    """
    bce_of_sigma = -(y_sym * sp.log(sigma_sym) + (1 - y_sym) * sp.log(1 - sigma_sym))
    logit_form = sp.log(1 + sp.exp(z_sym)) - y_sym * z_sym
    assert simplifies_to_zero(sp.diff(logit_form, z_sym) - (sigma_sym - y_sym))
    assert simplifies_to_zero(sp.diff(bce_of_sigma - logit_form, z_sym))
    assert simplifies_to_zero((bce_of_sigma - logit_form).subs(z_sym, 0))


@given(st.floats(-12, 12), st.floats(0, 1))
def test_eq_outdelta_bce_logits_numeric(z0, y0):
    """eq-outdelta-bce-logits: BCEWithLogits equals the textbook BCE where the textbook form is accurate.

    The textbook form loses digits as z grows: 1 - sigma(z) carries an absolute rounding error of
    about 1e-16, so its relative error is about 1e-16 e^z (already 5e-8 at z = 20).
    """
    z, y = np.array([[z0]]), np.array([[y0]])
    a = float(bk.sigmoid(z)[0, 0])
    textbook = -(y0 * np.log(a) + (1 - y0) * np.log1p(-a))
    assert np.isclose(bk.BCEWithLogits().forward(z, y), textbook, rtol=1e-9, atol=1e-12)


def test_eq_outdelta_bce_logits_is_stable_where_the_textbook_form_fails():
    """eq-outdelta-bce-logits: at z = +-1000 the fused loss and delta are exact; sigma(40) rounds to 1.0."""
    assert bk.sigmoid(np.array(40.0)) == 1.0
    z, y = np.array([[1000.0], [-1000.0], [40.0], [40.0]]), np.array([[0.0], [1.0], [0.0], [1.0]])
    loss = bk.BCEWithLogits()
    value = loss.forward(z, y)                    # filterwarnings = error: any overflow would fail here
    assert np.isclose(value, (1000 + 1000 + 40 + 0) / 4, rtol=1e-12)
    assert np.allclose(loss.backward() * 4, [[1.0], [-1.0], [1.0], [0.0]], atol=1e-15)


# --------------------------------------------------------------------------- softmax + cross-entropy

def softmax_symbols(C=3):
    zs = sp.symbols(f"z0:{C}", real=True)
    S = sum(sp.exp(zk) for zk in zs)
    return zs, [sp.exp(zk) / S for zk in zs]


def test_eq_outdelta_softmax_symbolic_rows_sum_to_one():
    """eq-outdelta-softmax: the probabilities sum to 1 and are unchanged by adding a constant to every logit."""
    zs, p = softmax_symbols()
    m = sp.Symbol("m", real=True)
    assert simplifies_to_zero(sum(p) - 1)
    shifted = [pc.subs({zk: zk + m for zk in zs}, simultaneous=True) for pc in p]
    assert all(simplifies_to_zero(ps - pc) for ps, pc in zip(shifted, p))


@given(float_arrays(st.tuples(batch_sizes, st.integers(2, 6)), lo=-50.0, hi=50.0))
def test_eq_outdelta_softmax_numeric(z):
    """eq-outdelta-softmax: bk.softmax = exp(z)/sum exp(z) row by row, rows sum to 1, entries in [0, 1]."""
    p = bk.softmax(z)
    direct = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert np.allclose(p, direct, rtol=1e-12, atol=1e-300)
    assert np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert ((p >= 0) & (p <= 1)).all()


def test_eq_outdelta_softmax_jacobian_symbolic():
    """eq-outdelta-softmax-jacobian: dp_c/dz_k = p_c([c = k] - p_k), i.e. J = diag(p) - p p^T, for 3 classes."""
    zs, p = softmax_symbols(3)
    for c in range(3):
        for k in range(3):
            expected = p[c] * ((1 if c == k else 0) - p[k])
            assert simplifies_to_zero(sp.diff(p[c], zs[k]) - expected)


@given(float_arrays(st.integers(2, 6), lo=-8.0, hi=8.0))
def test_eq_outdelta_softmax_jacobian_numeric(z0):
    """eq-outdelta-softmax-jacobian against central differences and torch.autograd.functional.jacobian."""
    z0 = z0.copy()
    C = len(z0)
    p = bk.softmax(z0.reshape(1, -1))[0]
    J = np.diag(p) - np.outer(p, p)
    numeric = np.array([bk.numerical_gradient(lambda: bk.softmax(z0.reshape(1, -1))[0, c], z0) for c in range(C)])
    assert np.max(np.abs(J - numeric)) < 1e-8
    J_torch = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, dim=0), torch.tensor(z0)).numpy()
    assert np.allclose(J, J_torch, rtol=1e-10, atol=1e-15)


def test_eq_outdelta_softmax_ce_symbolic():
    """eq-outdelta-softmax-ce: the gradient of -log softmax(z)_y is p - e_y, for each of 3 labels."""
    zs, p = softmax_symbols(3)
    for label in range(3):
        ell = -sp.log(p[label])
        for k in range(3):
            assert simplifies_to_zero(sp.diff(ell, zs[k]) - (p[k] - (1 if k == label else 0)))


def test_eq_outdelta_softmax_ce_symbolic_probability_targets():
    """eq-outdelta-softmax-ce: for any target row with Y_0 + Y_1 + Y_2 = 1, the gradient is p - Y."""
    zs, p = softmax_symbols(3)
    Y0, Y1 = sp.symbols("Y0 Y1", real=True)
    Y = [Y0, Y1, 1 - Y0 - Y1]
    ell = -sum(Yc * sp.log(pc) for Yc, pc in zip(Y, p))
    for k in range(3):
        assert simplifies_to_zero(sp.diff(ell, zs[k]) - (p[k] - Y[k]))


@given(seeds, batch_sizes, st.integers(2, 6))
def test_eq_outdelta_softmax_ce_bpkit_formula_numeric_torch(seed, N, C):
    """eq-outdelta-softmax-ce: bpkit (integer labels and one-hot) = (P - Y)/N = numeric = torch cross_entropy."""
    rng = np.random.default_rng(seed)
    z, labels = rng.normal(scale=2.0, size=(N, C)), rng.integers(0, C, size=N)
    Y = np.eye(C)[labels]
    delta = fused_delta(bk.SoftmaxCrossEntropy(), z, labels)
    assert np.array_equal(delta, fused_delta(bk.SoftmaxCrossEntropy(), z, Y))
    assert bk.rel_error(delta, (bk.softmax(z) - Y) / N) < 1e-12
    # the loss is computed from terms as large as the logits, so a central difference is only as
    # good as the round-off of those terms (a confident, correct prediction has a loss near 0)
    floor = roundoff_floor(np.abs(z).max(), 1e-6, 1e-7)
    assert bk.rel_error(delta, numeric_delta(lambda v: bk.SoftmaxCrossEntropy().forward(v, labels), z), floor) < 1e-7
    lt = torch.tensor(labels)
    expected = torch_delta(lambda zt: torch.nn.functional.cross_entropy(zt, lt, reduction="mean"), z)
    assert bk.rel_error(delta, expected) < 1e-12


@given(seeds, batch_sizes, st.integers(2, 6))
def test_eq_outdelta_softmax_ce_through_the_jacobian(seed, N, C):
    """eq-outdelta-softmax-ce from eq-outdelta-softmax-jacobian: (-Y/p) J = p - Y, row by row."""
    rng = np.random.default_rng(seed)
    z, Y = rng.normal(size=(N, C)), rng.dirichlet(np.ones(C), size=N)
    P = bk.softmax(z)
    long_way = np.array([(-Y[n] / P[n]) @ (np.diag(P[n]) - np.outer(P[n], P[n])) for n in range(N)]) / N
    assert bk.rel_error(long_way, fused_delta(bk.SoftmaxCrossEntropy(), z, Y)) < 1e-10


def test_eq_outdelta_logsumexp_symbolic():
    """eq-outdelta-logsumexp: z_c - log sum e^z = (z_c - m) - log sum e^(z - m) for any m."""
    zs, _ = softmax_symbols(3)
    m = sp.Symbol("m", real=True)
    lhs = zs[0] - sp.log(sum(sp.exp(zk) for zk in zs))
    rhs = (zs[0] - m) - sp.log(sum(sp.exp(zk - m) for zk in zs))
    assert simplifies_to_zero(sp.expand_log(sp.simplify(sp.exp(lhs - rhs)), force=True) - 1)


@given(float_arrays(st.tuples(batch_sizes, st.integers(2, 6)), lo=-1e4, hi=1e4))
def test_eq_outdelta_logsumexp_numeric_and_stable(z):
    """eq-outdelta-logsumexp: bk.log_softmax equals the shifted formula and torch, with no overflow at |z| = 1e4."""
    m = z.max(axis=1, keepdims=True)
    shifted = (z - m) - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    logp = bk.log_softmax(z)
    assert np.isfinite(logp).all()
    assert np.allclose(logp, shifted, rtol=1e-12, atol=1e-9)
    assert np.allclose(logp, torch.log_softmax(torch.tensor(z), dim=1).numpy(), rtol=1e-12, atol=1e-9)


# --------------------------------------------------------------------------- parameter gradients

@given(seeds, batch_sizes, st.integers(1, 5), st.integers(2, 5))
def test_eq_outdelta_param_grads(seed, N, n_prev, C):
    """eq-outdelta-param-grads: W.grad = a_prev^T delta (n_prev, C), b.grad = sum_n delta_n (C,); gradcheck; torch."""
    rng = np.random.default_rng(seed)
    a_prev, labels = rng.normal(size=(N, n_prev)), rng.integers(0, C, size=N)
    dense, ce = bk.Dense(n_prev, C, rng=rng), bk.SoftmaxCrossEntropy()
    ce.forward(dense.forward(a_prev), labels)
    delta = ce.backward()
    dense.backward(delta)
    assert dense.W.grad.shape == (n_prev, C) and dense.b.grad.shape == (C,)
    assert np.allclose(dense.W.grad, a_prev.T @ delta, rtol=1e-13, atol=1e-16)
    assert np.allclose(dense.b.grad, delta.sum(axis=0), rtol=1e-13, atol=1e-16)
    report = bk.gradcheck(lambda: ce.forward(bk.Sequential(dense).predict(a_prev), labels), [dense.W, dense.b])
    assert report.passed, report
    W = torch.tensor(dense.W.value, requires_grad=True)
    b = torch.tensor(dense.b.value, requires_grad=True)
    torch.nn.functional.cross_entropy(torch.tensor(a_prev) @ W + b, torch.tensor(labels)).backward()
    assert np.allclose(dense.W.grad, W.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert np.allclose(dense.b.grad, b.grad.numpy(), rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------- saturation

def test_eq_outdelta_saturation_symbolic():
    """eq-outdelta-saturation: for y = 1, delta_MSE = -(1 - sigma)^2 sigma ~ -e^z and delta_BCE = -(1 - sigma) -> -1."""
    delta_mse = (sigma_sym - 1) * sigma_sym * (1 - sigma_sym)
    assert simplifies_to_zero(delta_mse + (1 - sigma_sym) ** 2 * sigma_sym)
    assert sp.limit(delta_mse / sp.exp(z_sym), z_sym, -sp.oo) == -1
    assert sp.limit(sigma_sym - 1, z_sym, -sp.oo) == -1
    s = sp.Symbol("s", positive=True)                  # s = sigma(z) in (0, 1)
    critical = sp.solve(sp.diff((1 - s) ** 2 * s, s), s)
    assert sp.Rational(1, 3) in critical and ((1 - s) ** 2 * s).subs(s, sp.Rational(1, 3)) == sp.Rational(4, 27)


def test_eq_outdelta_saturation_bpkit():
    """eq-outdelta-saturation with bpkit's backward passes: |delta_MSE| <= 4/27, ~e^z far left; delta_BCE -> -1."""
    z = np.linspace(-30, 10, 801).reshape(-1, 1)
    ones = np.ones_like(z)
    M = len(z)
    delta_mse = sigmoid_mse_delta(z, ones) * M
    delta_bce = fused_delta(bk.BCEWithLogits(), z, ones) * M
    assert np.allclose(delta_mse, -(1 - bk.sigmoid(z)) ** 2 * bk.sigmoid(z), rtol=1e-12, atol=1e-300)
    assert np.abs(delta_mse).max() <= 4 / 27 + 1e-15
    far = z[:, 0] < -15
    assert np.allclose(delta_mse[far] / np.exp(z[far]), -1, rtol=1e-6)
    assert np.allclose(delta_bce[far], -1, rtol=1e-6)
    assert np.all(np.abs(delta_bce) >= np.abs(delta_mse))
    assert np.allclose(sigmoid_prime(z) * delta_bce, delta_mse, rtol=1e-12, atol=1e-300)

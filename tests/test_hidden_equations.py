"""Every labelled equation of chapter 4 (hidden-layer deltas), checked numerically:
against central differences, against PyTorch autograd, and against bpkit's own backward."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bpkit as bk
from bpkit.activations import ACTIVATIONS
from bpkit.layers import init_std

from strategies import away_from_kinks, seeds

SMOOTH = ("identity", "sigmoid", "tanh", "gelu")
ALL = sorted(ACTIVATIONS)
small = st.integers(min_value=1, max_value=4)


def _agree(analytic, numeric):
    """Analytic and central-difference gradients agree: relative error 1e-6, or both round-off sized."""
    return bk.rel_error(analytic, numeric) < 1e-6 or np.abs(analytic - numeric).max() < 1e-8


def _layer_arrays(rng, N, n_prev, n_l, n_next):
    """Random a^(l-1), W^(l), b^(l), W^(l+1), b^(l+1) and regression targets for a two-layer piece."""
    return dict(a_prev=rng.normal(size=(N, n_prev)), W=rng.normal(size=(n_prev, n_l)), b=rng.normal(size=n_l),
                W_next=rng.normal(size=(n_l, n_next)), b_next=rng.normal(size=n_next), y=rng.normal(size=(N, n_next)))


def _piece_loss(p, f, z=None):
    r"""L = MSE(f(z^(l)) W^(l+1) + b^(l+1), y), with z^(l) = a^(l-1) W^(l) + b^(l) unless given."""
    z = p["a_prev"] @ p["W"] + p["b"] if z is None else z
    return bk.MSE().forward(f(z) @ p["W_next"] + p["b_next"], p["y"])


def _piece_delta_next(p, f):
    """delta^(l+1) = (z^(l+1) - y) / N for the MSE piece (chapter 3)."""
    z_next = f(p["a_prev"] @ p["W"] + p["b"]) @ p["W_next"] + p["b_next"]
    return (z_next - p["y"]) / len(z_next)


def _forward_backward(model, loss, X, y):
    """Run bpkit's forward and backward; return {l: z^(l)}, {l: a^(l)} (a^(0) = X) and {l: delta^(l)}."""
    model.zero_grad()
    loss.forward(model.forward(X), y)
    dense = model.dense_layers
    a = {l: layer.a_prev for l, layer in enumerate(dense)}         # Dense l+1 kept a^(l)
    grad, delta, l = loss.backward(), {}, len(dense)
    for layer in reversed(model.layers):
        if isinstance(layer, bk.Dense):
            delta[l] = grad                                         # Dense.backward receives delta^(l)
            l -= 1
        grad = layer.backward(grad)
    z = {l: layer.a_prev @ layer.W.value + layer.b.value for l, layer in enumerate(dense, start=1)}
    return z, a, delta


# ------------------------------------------------------------------ index forms

@given(seeds, small, small, small)
def test_eq_hidden_forward_index_matches_dense(seed, N, n_l, n_next):
    """eq-hidden-forward-index: z^(l+1)_nk = sum_j a^(l)_nj W^(l+1)_jk + b^(l+1)_k."""
    rng = np.random.default_rng(seed)
    dense = bk.Dense(n_l, n_next, rng=rng)
    dense.b.value[:] = rng.normal(size=n_next)
    a = rng.normal(size=(N, n_l))
    z = dense.forward(a)
    W, b = dense.W.value, dense.b.value
    for n in range(N):
        for k in range(n_next):
            assert np.isclose(z[n, k], sum(a[n, j] * W[j, k] for j in range(n_l)) + b[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", SMOOTH)
@given(seed=seeds, N=small, n_l=small, n_next=small)
def test_eq_hidden_grad_a_index_is_the_sum_over_next_units(name, seed, N, n_l, n_next):
    """eq-hidden-grad-a-index: dL/da^(l)_nj = sum_k delta^(l+1)_nk W^(l+1)_jk, against central differences."""
    rng = np.random.default_rng(seed)
    p = _layer_arrays(rng, N, 2, n_l, n_next)
    a = np.tanh(rng.normal(size=(N, n_l)))
    delta_next = (a @ p["W_next"] + p["b_next"] - p["y"]) / N
    numeric = bk.numerical_gradient(lambda: bk.MSE().forward(a @ p["W_next"] + p["b_next"], p["y"]), a)
    by_index = np.array([[sum(delta_next[n, k] * p["W_next"][j, k] for k in range(n_next)) for j in range(n_l)]
                         for n in range(N)])
    assert _agree(by_index, numeric)


@pytest.mark.parametrize("name", ALL)
@given(seed=seeds, N=small, n_l=small, n_next=small)
def test_eq_hidden_delta_index_matches_central_differences(name, seed, N, n_l, n_next):
    """eq-hidden-delta-index: delta^(l)_nj = (sum_k delta^(l+1)_nk W^(l+1)_jk) f'(z^(l)_nj), for every activation."""
    rng = np.random.default_rng(seed)
    f, f_prime = ACTIVATIONS[name]
    p = _layer_arrays(rng, N, 2, n_l, n_next)
    z = away_from_kinks(p["a_prev"] @ p["W"] + p["b"], margin=1e-2)
    delta_next = (f(z) @ p["W_next"] + p["b_next"] - p["y"]) / N
    by_index = np.array([[sum(delta_next[n, k] * p["W_next"][j, k] for k in range(n_next)) * f_prime(z[n, j])
                          for j in range(n_l)] for n in range(N)])
    numeric = bk.numerical_gradient(lambda: _piece_loss(p, f, z), z)
    assert _agree(by_index, numeric)


@pytest.mark.parametrize("name", SMOOTH)
@given(seed=seeds, N=small, n_prev=small, n_l=small)
def test_eq_hidden_params_index_sums_over_the_batch(name, seed, N, n_prev, n_l):
    """eq-hidden-params-index: dL/dW^(l)_ij = sum_n a^(l-1)_ni delta^(l)_nj and dL/db^(l)_j = sum_n delta^(l)_nj."""
    rng = np.random.default_rng(seed)
    f, f_prime = ACTIVATIONS[name]
    p = _layer_arrays(rng, N, n_prev, n_l, 2)
    z = p["a_prev"] @ p["W"] + p["b"]
    delta = (_piece_delta_next(p, f) @ p["W_next"].T) * f_prime(z)
    grad_W = np.array([[sum(p["a_prev"][n, i] * delta[n, j] for n in range(N)) for j in range(n_l)] for i in range(n_prev)])
    grad_b = np.array([sum(delta[n, j] for n in range(N)) for j in range(n_l)])
    assert _agree(grad_W, bk.numerical_gradient(lambda: _piece_loss(p, f), p["W"]))
    assert _agree(grad_b, bk.numerical_gradient(lambda: _piece_loss(p, f), p["b"]))


# ------------------------------------------------------------------ matrix forms

@given(seeds, small, small, small)
def test_eq_hidden_grad_a_is_what_dense_backward_returns(seed, N, n_l, n_next):
    """eq-hidden-grad-a: dL/da^(l) = delta^(l+1) W^(l+1)^T, shape (N, n_l)."""
    rng = np.random.default_rng(seed)
    dense = bk.Dense(n_l, n_next, rng=rng)
    a, y = rng.normal(size=(N, n_l)), rng.normal(size=(N, n_next))
    loss = bk.MSE()
    loss.forward(dense.forward(a), y)
    delta_next = loss.backward()
    grad_a = dense.backward(delta_next)
    assert grad_a.shape == (N, n_l)
    np.testing.assert_allclose(grad_a, delta_next @ dense.W.value.T, rtol=1e-13)
    numeric = bk.numerical_gradient(lambda: loss.forward(bk.Sequential(dense).predict(a), y), a)
    assert bk.rel_error(grad_a, numeric) < 1e-7


def _torch_deltas(model, X, y):
    """delta^(l) = dL/dz^(l) and dL/dW^(l) from torch autograd, for an MLP with identity output and BCE on logits."""
    acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda t: t}
    names = [layer.name for layer in model.layers if isinstance(layer, bk.Activation)]
    a = torch.tensor(X)
    zs, Ws = [], []
    for l, layer in enumerate(model.dense_layers):
        W = torch.tensor(layer.W.value, requires_grad=True)
        z = a @ W + torch.tensor(layer.b.value)
        z.retain_grad()
        zs.append(z)
        Ws.append(W)
        a = acts[names[l]](z) if l < len(names) else z
    torch.nn.functional.binary_cross_entropy_with_logits(a, torch.tensor(y), reduction="sum").div(len(X)).backward()
    return {l: z.grad.numpy() for l, z in enumerate(zs, start=1)}, {l: W.grad.numpy() for l, W in enumerate(Ws, start=1)}


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@given(seed=seeds)
def test_eq_hidden_delta_recursion_matches_torch_autograd(activation, seed):
    """eq-hidden-delta: delta^(l) = (delta^(l+1) W^(l+1)^T) * f'(z^(l)), for every layer of a 3-5-4-3-1 MLP."""
    rng = np.random.default_rng(seed)
    model = bk.MLP([3, 5, 4, 3, 1], activation, rng=rng)
    X, y = rng.normal(size=(6, 3)), (rng.uniform(size=(6, 1)) < 0.5).astype(np.float64)
    z, _, delta = _forward_backward(model, bk.BCEWithLogits(), X, y)
    f_prime = ACTIVATIONS[activation][1]
    for l in range(1, 4):
        W_next = model.dense_layers[l].W.value
        np.testing.assert_allclose(delta[l], (delta[l + 1] @ W_next.T) * f_prime(z[l]), rtol=1e-12, atol=1e-15)
    torch_delta, _ = _torch_deltas(model, X, y)
    for l in delta:
        np.testing.assert_allclose(delta[l], torch_delta[l], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@settings(max_examples=20)                                          # each example runs a full 2P gradient check
@given(seed=seeds)
def test_eq_hidden_grad_w_matches_torch_and_central_differences(activation, seed):
    """eq-hidden-grad-w: dL/dW^(l) = a^(l-1)^T delta^(l), for every layer."""
    rng = np.random.default_rng(seed)
    model = bk.MLP([3, 5, 4, 1], activation, rng=rng)
    X, y = rng.normal(size=(7, 3)), (rng.uniform(size=(7, 1)) < 0.5).astype(np.float64)
    _, a, delta = _forward_backward(model, bk.BCEWithLogits(), X, y)
    _, torch_grad_W = _torch_deltas(model, X, y)
    for l, layer in enumerate(model.dense_layers, start=1):
        np.testing.assert_allclose(layer.W.grad, a[l - 1].T @ delta[l], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer.W.grad, torch_grad_W[l], rtol=1e-10, atol=1e-14)
    if activation != "relu":                                        # central differences straddle no kink
        assert bk.check_model(model, bk.BCEWithLogits(), X, y, tol=1e-6).passed


@settings(max_examples=20)
@given(seeds)
def test_eq_hidden_grad_b_is_the_column_sum_of_delta(seed):
    """eq-hidden-grad-b: dL/db^(l) = 1^T delta^(l), shape (n_l,), for every layer."""
    rng = np.random.default_rng(seed)
    model = bk.MLP([2, 4, 3, 2], "tanh", rng=rng)
    X, y = rng.normal(size=(5, 2)), rng.integers(0, 2, size=5)
    loss = bk.SoftmaxCrossEntropy()
    _, _, delta = _forward_backward(model, loss, X, y)
    for l, layer in enumerate(model.dense_layers, start=1):
        assert layer.b.grad.shape == (model.sizes[l],)
        np.testing.assert_allclose(layer.b.grad, np.ones(len(X)) @ delta[l], rtol=1e-12, atol=1e-15)
    assert bk.check_model(model, loss, X, y, tol=1e-6).passed


# ------------------------------------------------------------------ Nielsen's notation

def test_eq_hidden_nielsen_per_example_columns_give_our_gradients(rng):
    """eq-hidden-nielsen: w^l = W^(l)^T, delta^l_x = N delta^(l)_n^T, dL/dW^(l) = mean_x (delta^l_x a^{l-1}_x^T)^T."""
    model = bk.MLP([2, 4, 3, 1], "sigmoid", rng=rng)
    X, y = rng.normal(size=(5, 2)), (rng.uniform(size=(5, 1)) < 0.5).astype(np.float64)
    _, _, delta = _forward_backward(model, bk.BCEWithLogits(), X, y)
    N, L = len(X), len(model.dense_layers)
    w = {l: layer.W.value.T for l, layer in enumerate(model.dense_layers, start=1)}
    b = {l: layer.b.value.reshape(-1, 1) for l, layer in enumerate(model.dense_layers, start=1)}
    grad_W = {l: np.zeros_like(w[l].T) for l in w}
    for n in range(N):
        acts, zs = {0: X[n].reshape(-1, 1)}, {}
        for l in range(1, L + 1):
            zs[l] = w[l] @ acts[l - 1] + b[l]
            acts[l] = bk.sigmoid(zs[l]) if l < L else zs[l]
        d = bk.sigmoid(zs[L]) - y[n].reshape(-1, 1)
        for l in range(L, 0, -1):
            np.testing.assert_allclose(d, N * delta[l][n].reshape(-1, 1), rtol=1e-12, atol=1e-15)
            grad_W[l] += (d @ acts[l - 1].T).T / N
            if l > 1:
                d = (w[l].T @ d) * bk.activations.sigmoid_prime(zs[l - 1])
    for l, layer in enumerate(model.dense_layers, start=1):
        np.testing.assert_allclose(layer.W.grad, grad_W[l], rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ vanishing and exploding gradients

@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@given(seed=seeds)
def test_eq_hidden_product_of_w_transposed_and_diagonal_factors(activation, seed):
    """eq-hidden-product: delta^(l)_n = delta^(D)_n W^(D)^T Phi^(D-1)_n ... W^(l+1)^T Phi^(l)_n, Phi = diag f'(z_n)."""
    rng = np.random.default_rng(seed)
    model = bk.MLP([3, 4, 5, 4, 2], activation, rng=rng)
    X, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    z, _, delta = _forward_backward(model, bk.MSE(), X, y)
    f_prime, L = ACTIVATIONS[activation][1], len(model.dense_layers)
    for n in range(len(X)):
        row = delta[L][n]
        for l in range(L - 1, 0, -1):
            row = row @ model.dense_layers[l].W.value.T @ np.diag(f_prime(z[l][n]))
            np.testing.assert_allclose(row, delta[l][n], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name, max_slope", [("sigmoid", 0.25), ("tanh", 1.0), ("relu", 1.0), ("identity", 1.0)])
@given(seed=seeds, n_l=small, n_next=small)
def test_eq_hidden_bound_one_layer_shrinks_delta_by_at_most_max_slope_times_spectral_norm(name, max_slope, seed, n_l, n_next):
    """eq-hidden-bound: ||delta^(l)_n|| <= max|f'| ||W^(l+1)||_2 ||delta^(l+1)_n||."""
    rng = np.random.default_rng(seed)
    f_prime = ACTIVATIONS[name][1]
    W_next = rng.normal(size=(n_l, n_next)) * rng.uniform(0.1, 3)
    delta_next, z = rng.normal(size=(8, n_next)), rng.normal(size=(8, n_l)) * 3
    delta = (delta_next @ W_next.T) * f_prime(z)
    bound = max_slope * np.linalg.norm(W_next, 2) * np.linalg.norm(delta_next, axis=1)
    assert np.all(np.linalg.norm(delta, axis=1) <= bound * (1 + 1e-12))
    zz = np.linspace(-20, 20, 40001)
    assert np.isclose(np.abs(f_prime(zz)).max(), max_slope, rtol=1e-6)  # the max slope is what the table says


def test_eq_hidden_var_relu_layer_variance_matches_formula():
    """eq-hidden-var: Var(z^(l)) = n_{l-1} Var(W) E[a^2]; for ReLU inputs E[a^2] = Var(z^(l-1)) / 2."""
    rng = np.random.default_rng(7)
    n_in, n_out, N, std = 64, 64, 4000, 0.3
    z_prev = rng.normal(size=(N, n_in)) * 1.5
    a = bk.relu(z_prev)
    W = rng.normal(scale=std, size=(n_in, n_out))
    z = a @ W
    predicted = n_in * std**2 * np.mean(a**2)
    assert abs(np.var(z) / predicted - 1) < 0.05
    assert abs(np.mean(a**2) / (np.var(z_prev) / 2) - 1) < 0.05


def test_eq_hidden_init_xavier_and_he_formulas_and_what_they_preserve():
    """eq-hidden-init: Var(W) = 2/(n_in + n_out) (Xavier), 2/n_in (He); He keeps Var(z) steady through ReLU layers."""
    assert np.isclose(init_std(30, 50, "xavier") ** 2, 2 / 80) and np.isclose(init_std(30, 50, "he") ** 2, 2 / 30)
    W = bk.Dense(200, 300, rng=np.random.default_rng(1), init="he").W.value
    assert abs(W.std() / np.sqrt(2 / 200) - 1) < 0.02

    def variances(init):
        model = bk.MLP([128] * 11 + [1], "relu", rng=np.random.default_rng(2), init=init)
        out = np.random.default_rng(3).normal(size=(512, 128))
        result = []
        for layer in model.layers:
            out = layer.forward(out)
            if isinstance(layer, bk.Dense):
                result.append(np.var(out))
        return np.array(result)

    he, big, tiny = (variances(init)[:-1] for init in ("he", 1.0, 0.01))   # the hidden layers
    assert he.max() / he.min() < 3                                   # steady
    assert big[-1] / big[0] > 1e10 and tiny[-1] / tiny[0] < 1e-10    # explodes / vanishes


@pytest.mark.parametrize("lr", [1e-3, 1e-4])
def test_eq_hidden_gd_step_lowers_the_loss_by_lr_times_squared_gradient(lr):
    """eq-hidden-gd-step: theta <- theta - lr dL/dtheta changes L by -lr ||g||^2 + O(lr^2)."""
    rng = np.random.default_rng(11)
    model = bk.MLP([2, 6, 1], "tanh", rng=rng)
    X, y = rng.normal(size=(16, 2)), (rng.uniform(size=(16, 1)) < 0.5).astype(np.float64)
    loss = bk.BCEWithLogits()
    before = loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    g2 = sum(float(np.sum(p.grad**2)) for p in model.parameters())
    for p in model.parameters():
        p.value -= lr * p.grad
    after = loss.forward(model.predict(X), y)
    assert after < before
    assert abs((before - after) / (lr * g2) - 1) < 50 * lr

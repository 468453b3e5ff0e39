"""Every labelled equation of chapter 8 (layers beyond Dense), checked numerically: against central differences,
against PyTorch's autograd and layers in float64, and against bpkit's own layers. The last test makes sure that
every label of the chapter has its test here."""

import re
from itertools import combinations
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bpkit as bk

from strategies import seeds

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "08_layers_beyond_dense.ipynb"
T = torch.tensor                                     # numpy float64 -> torch float64


def _grads(model, loss, X, y):
    """One forward and backward pass; copies of every .grad, in the order of model.parameters()."""
    model.zero_grad()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    return [p.grad.copy() for p in model.parameters()]


# --- symmetry ----------------------------------------------------------------------------------------------

def _twin_units(seed, widths, activation):
    """An MLP whose hidden units 0 and 1 of the first hidden layer have equal in- and outgoing weights and bias."""
    rng = np.random.default_rng(seed)
    model = bk.MLP(widths, activation, rng=rng)
    first, second = model.dense_layers[0], model.dense_layers[1]
    first.W.value[:, 1] = first.W.value[:, 0]
    first.b.value[:] = rng.normal(size=first.b.value.shape)
    first.b.value[1] = first.b.value[0]
    second.W.value[1] = second.W.value[0]
    return model, rng


@settings(max_examples=30)
@given(seeds, st.integers(2, 5), st.integers(1, 3), st.sampled_from(["tanh", "sigmoid", "gelu"]))
def test_eq_beyond_symmetry_equal_units_have_equal_pre_activations_and_deltas(seed, hidden, n_out, activation):
    """eq-beyond-symmetry: units with equal incoming weights, bias and outgoing weights have equal z and delta."""
    model, rng = _twin_units(seed, [3, hidden, n_out], activation)
    X, y = rng.normal(size=(7, 3)), rng.normal(size=(7, n_out))
    dense1, act = model.layers[0], model.layers[1]
    mse = bk.MSE()
    mse.forward(model.forward(X), y)
    grad = mse.backward()
    for layer in reversed(model.layers[1:]):
        grad = layer.backward(grad)                  # after the Activation: delta of the first hidden layer
    assert np.allclose(act.z, X @ dense1.W.value + dense1.b.value, rtol=1e-13, atol=1e-14)
    assert np.allclose(act.z[:, 0], act.z[:, 1], rtol=0, atol=1e-15)
    assert np.allclose(grad[:, 0], grad[:, 1], rtol=1e-13, atol=1e-16)


@settings(max_examples=20)
@given(seeds, st.integers(2, 5), st.sampled_from(["SGD", "Momentum", "Adam"]))
def test_eq_beyond_symmetry_grads_equal_units_get_equal_gradients_and_stay_equal(seed, hidden, optimizer_name):
    """eq-beyond-symmetry-grads: equal units get equal gradients, so every elementwise optimizer keeps them equal."""
    model, rng = _twin_units(seed, [2, hidden, 1], "tanh")
    X, y = rng.normal(size=(9, 2)), rng.normal(size=(9, 1))
    W1, b1, W2, _ = _grads(model, bk.MSE(), X, y)
    assert np.allclose(W1[:, 0], W1[:, 1], rtol=1e-12, atol=1e-16)
    assert np.isclose(b1[0], b1[1], rtol=1e-12, atol=1e-16)
    assert np.allclose(W2[0], W2[1], rtol=1e-12, atol=1e-16)
    optimizer = getattr(bk.optim, optimizer_name)(model.parameters(), lr=0.05)
    for _ in range(10):
        bk.train.train_step(model, bk.MSE(), optimizer, X, y)
    first, second = model.dense_layers
    scale = max(1.0, np.abs(first.W.value).max())
    assert np.allclose(first.W.value[:, 0], first.W.value[:, 1], rtol=0, atol=1e-12 * scale)
    assert np.allclose(second.W.value[0], second.W.value[1], rtol=0, atol=1e-12 * scale)


# --- the L2 penalty and weight decay ---------------------------------------------------------------------

def _l2_model(seed):
    rng = np.random.default_rng(seed)
    model = bk.Sequential(bk.Dense(3, 5, rng=rng, name=1), bk.BatchNorm(5), bk.Activation("tanh"),
                          bk.Dense(5, 2, rng=rng, name=2))
    return model, rng.normal(size=(6, 3)), rng.integers(0, 2, size=6)


@settings(max_examples=20)
@given(seeds, st.floats(0.0, 5.0))
def test_eq_beyond_l2_penalty_is_half_lambda_times_the_squared_weights(seed, lam):
    """eq-beyond-l2: L = L_data + lam/2 sum_l ||W^(l)||^2, the same number as PyTorch's, biases and gamma/beta free."""
    model, X, y = _l2_model(seed)
    W1, b1, gamma, beta, W2, b2 = (T(p.value) for p in model.parameters())
    z = torch.nn.functional.batch_norm(T(X) @ W1 + b1, None, None, gamma, beta, training=True, eps=1e-5)
    reference = torch.nn.functional.cross_entropy(torch.tanh(z) @ W2 + b2, torch.from_numpy(y)) \
        + lam / 2 * (W1.square().sum() + W2.square().sum())
    value = bk.L2Penalty(bk.SoftmaxCrossEntropy(), model, lam).forward(model.forward(X), y)
    assert value == pytest.approx(reference.item(), rel=1e-12, abs=1e-14)


@settings(max_examples=15)
@given(seeds, st.floats(0.0, 5.0))
def test_eq_beyond_l2_grad_adds_lambda_W_to_weights_and_nothing_to_vectors(seed, lam):
    """eq-beyond-l2-grad: dL/dW = dL_data/dW + lam W, dL/db = dL_data/db; and central differences agree."""
    model, X, y = _l2_model(seed)
    data = bk.SoftmaxCrossEntropy()
    penalised = bk.L2Penalty(data, model, lam)
    with_penalty, without = _grads(model, penalised, X, y), _grads(model, data, X, y)
    for p, g_pen, g_data in zip(model.parameters(), with_penalty, without):
        expected = g_data + (lam * p.value if p.value.ndim >= 2 else 0.0)
        np.testing.assert_allclose(g_pen, expected, rtol=1e-12, atol=1e-15)
    assert bk.check_model(model, penalised, X, y).passed


@pytest.mark.parametrize("lr, lam", [(0.1, 0.5), (0.01, 3.0), (0.5, 0.01)])
def test_eq_beyond_weight_decay_sgd_on_the_penalty_is_a_shrink_then_a_data_step(lr, lam):
    """eq-beyond-weight-decay: W - lr (g + lam W) = (1 - lr lam) W - lr g with SGD; with Adam the two differ."""
    def run(optimizer_class, decoupled):
        model, X, y = _l2_model(3)
        data = bk.SoftmaxCrossEntropy()
        loss = data if decoupled else bk.L2Penalty(data, model, lam)
        optimizer = optimizer_class(model.parameters(), lr=lr)
        for _ in range(5):
            optimizer.zero_grad()
            loss.forward(model.forward(X), y)
            model.backward(loss.backward())
            if decoupled:
                for p in model.parameters():
                    if p.value.ndim >= 2:
                        p.value *= 1 - lr * lam
            optimizer.step()
        return np.concatenate([p.value.ravel() for p in model.parameters()])

    np.testing.assert_allclose(run(bk.optim.SGD, False), run(bk.optim.SGD, True), rtol=1e-12, atol=1e-14)
    assert bk.rel_error(run(bk.optim.Adam, False), run(bk.optim.Adam, True)) > 1e-3


# --- dropout --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.4, 0.75])
def test_eq_beyond_dropout_forward_keeps_the_expected_value(p):
    """eq-beyond-dropout-forward: y = x M / (1 - p) with P(M = 1) = 1 - p, so E[y] = x (200,000 draws per entry)."""
    x = np.array([[-2.0, 0.5, 3.0]])
    layer = bk.Dropout(p, rng=np.random.default_rng(0))
    y = layer.forward(np.repeat(x, 200_000, axis=0))
    ratio = y / x
    assert np.all(np.isclose(ratio, 0.0) | np.isclose(ratio, 1 / (1 - p)))
    assert abs(np.mean(ratio != 0) - (1 - p)) < 0.005
    std_of_mean = np.abs(x[0]) * np.sqrt(p / (1 - p)) / np.sqrt(200_000)
    assert np.all(np.abs(y.mean(axis=0) - x[0]) < 5 * std_of_mean)
    assert np.array_equal(layer.eval().forward(x), x)


@settings(max_examples=25)
@given(seeds, st.integers(1, 5), st.integers(1, 5), st.sampled_from([0.0, 0.2, 0.5, 0.9]))
def test_eq_beyond_dropout_backward_is_the_same_mask_and_matches_central_differences(seed, N, n, p):
    """eq-beyond-dropout-backward: dL/dx = dL/dy * M / (1 - p) with the forward's mask."""
    rng = np.random.default_rng(seed)
    layer = bk.Dropout(p, rng=np.random.default_rng(seed))
    x, G = rng.normal(size=(N, n)), rng.normal(size=(N, n))
    y = layer.forward(x)
    kept = layer.mask != 0
    grad_x = layer.backward(G)
    np.testing.assert_allclose(grad_x, G * kept / (1 - p), rtol=1e-15, atol=0)
    np.testing.assert_allclose(y, x * kept / (1 - p), rtol=1e-15, atol=0)

    def f():
        layer.rng = np.random.default_rng(seed)      # the same mask at every evaluation
        return float(np.sum(layer.forward(x) * G))
    assert bk.rel_error(grad_x, bk.numerical_gradient(f, x)) < 1e-8


# --- batch normalisation ------------------------------------------------------------------------------------

def _bn_case(seed, N, n):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=2.0, scale=3.0, size=(N, n))
    gamma, beta, G = rng.uniform(0.5, 2.0, size=n), rng.normal(size=n), rng.normal(size=(N, n))
    return x, gamma, beta, G


def _torch_bn_grad(x, gamma, G, eps=1e-5, cut_mean=False, cut_var=False):
    """dL/dx by autograd for L = sum(y * G), the paths through mu or sigma^2 cut with .detach() if asked."""
    x_t = T(x).requires_grad_()
    mu = x_t.mean(dim=0)
    mu = mu.detach() if cut_mean else mu
    var = ((x_t - mu) ** 2).mean(dim=0)
    var = var.detach() if cut_var else var
    (T(gamma) * (x_t - mu) / torch.sqrt(var + eps) * T(G)).sum().backward()
    return x_t.grad.numpy()


def _with(layer, gamma, beta):
    """A normalisation layer with the given scale and shift."""
    layer.gamma.value[...], layer.beta.value[...] = gamma, beta
    return layer


def _bn_pieces(x, gamma, G, eps=1e-5):
    N = len(x)
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    s = np.sqrt(var + eps)
    x_hat = (x - mu) / s
    return N, mu, var, s, x_hat, G * gamma


@settings(max_examples=30)
@given(seeds, st.integers(2, 8), st.integers(1, 4))
def test_eq_beyond_bn_forward_matches_torch_and_normalises_each_feature(seed, N, n):
    """eq-beyond-bn-forward: per-feature batch mean and (biased) variance, then gamma x_hat + beta."""
    x, gamma, beta, _ = _bn_case(seed, N, n)
    layer = _with(bk.BatchNorm(n), gamma, beta)
    y = layer.forward(x)
    _, _, var, _, x_hat, _ = _bn_pieces(x, gamma, np.zeros_like(x))
    reference = torch.nn.functional.batch_norm(T(x), None, None, T(gamma), T(beta), training=True, eps=1e-5)
    np.testing.assert_allclose(y, reference.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, gamma * x_hat + beta, rtol=1e-12, atol=1e-12)
    assert np.allclose(x_hat.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose((x_hat**2).mean(axis=0), var / (var + 1e-5), rtol=1e-10)


@settings(max_examples=20)
@given(seeds, st.integers(2, 7), st.floats(0.0, 1.0), st.integers(1, 6))
def test_eq_beyond_bn_running_averages_match_batchnorm1d(seed, N, momentum, steps):
    """eq-beyond-bn-running: r <- (1 - alpha) r + alpha stat, the variance unbiased, as torch's BatchNorm1d; and evaluation."""
    rng = np.random.default_rng(seed)
    ours = bk.BatchNorm(3, momentum=momentum)
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    r_mu, r_var = np.zeros(3), np.ones(3)
    for step in range(steps):
        x = rng.normal(loc=step, scale=1.5, size=(N, 3))
        ours.forward(x)
        theirs(T(x))
        r_mu = (1 - momentum) * r_mu + momentum * x.mean(axis=0)
        r_var = (1 - momentum) * r_var + momentum * x.var(axis=0) * N / (N - 1)
    np.testing.assert_allclose(ours.running_mean, r_mu, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.running_var, r_var, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12, atol=1e-14)
    ours.eval(), theirs.eval()
    x = rng.normal(size=(1, 3))
    np.testing.assert_allclose(ours.forward(x), (x - r_mu) / np.sqrt(r_var + 1e-5), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.forward(x), theirs(T(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


@settings(max_examples=30)
@given(seeds, st.integers(2, 8), st.integers(1, 4))
def test_eq_beyond_bn_params_gamma_beta_gradients_and_g(seed, N, n):
    """eq-beyond-bn-params: dL/dgamma = sum_n dL/dy x_hat, dL/dbeta = sum_n dL/dy, g = dL/dx_hat = gamma dL/dy."""
    x, gamma, beta, G = _bn_case(seed, N, n)
    layer = _with(bk.BatchNorm(n), gamma, beta)
    layer.forward(x)
    layer.backward(G)
    _, _, _, _, x_hat, g = _bn_pieces(x, gamma, G)
    x_t, gamma_t, beta_t = T(x), T(gamma).requires_grad_(), T(beta).requires_grad_()
    x_hat_t = torch.nn.functional.batch_norm(x_t, None, None, None, None, training=True, eps=1e-5).requires_grad_()
    ((gamma_t * x_hat_t + beta_t) * T(G)).sum().backward()
    np.testing.assert_allclose(layer.gamma.grad, gamma_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.beta.grad, beta_t.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.gamma.grad, (G * x_hat).sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, x_hat_t.grad.numpy(), rtol=1e-12, atol=1e-14)


@settings(max_examples=30)
@given(seeds, st.integers(2, 8), st.integers(1, 4))
def test_eq_beyond_bn_stats_grads_match_autograd_with_mu_and_var_as_nodes(seed, N, n):
    """eq-beyond-bn-stats-grads: dL/dsigma^2 = -sum g x_hat / (2 s^2), dL/dmu = -sum g / s (the route mu -> sigma^2
    adds nothing), with mu and sigma^2 as nodes of PyTorch's graph."""
    x, gamma, _, G = _bn_case(seed, N, n)
    _, mu, var, s, x_hat, g = _bn_pieces(x, gamma, G)
    mu_t = T(mu).requires_grad_()
    var_t = ((T(x) - mu_t) ** 2).mean(dim=0)              # sigma^2 depends on mu as in the forward pass
    var_t.retain_grad()
    x_hat_t = (T(x) - mu_t) / torch.sqrt(var_t + 1e-5)
    (T(g) * x_hat_t).sum().backward()                     # L as a function of x_hat, with dL/dx_hat = g
    np.testing.assert_allclose(var_t.grad.numpy(), -(g * x_hat).sum(axis=0) / (2 * s**2), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mu_t.grad.numpy(), -g.sum(axis=0) / s, rtol=1e-9, atol=1e-9 * np.abs(g / s).sum())


@settings(max_examples=30)
@given(seeds, st.integers(2, 8), st.integers(1, 4))
def test_eq_beyond_bn_paths_each_path_is_autograd_with_the_others_cut(seed, N, n):
    """eq-beyond-bn-paths: the direct, mean and variance paths, each equal to PyTorch's gradient with the other
    paths detached, and their sum equal to bk.BatchNorm.backward."""
    x, gamma, beta, G = _bn_case(seed, N, n)
    N, mu, var, s, x_hat, g = _bn_pieces(x, gamma, G)
    direct = g / s
    via_mean = -g.sum(axis=0) / (N * s) + 0 * x
    via_var = -x_hat * (g * x_hat).sum(axis=0) / (N * s)
    scale = np.abs(direct).max()
    for ours, cuts in ((direct, (True, True)), (direct + via_mean, (False, True)), (direct + via_var, (True, False)),
                       (direct + via_mean + via_var, (False, False))):
        assert np.abs(ours - _torch_bn_grad(x, gamma, G, cut_mean=cuts[0], cut_var=cuts[1])).max() <= 1e-9 * scale
    layer = _with(bk.BatchNorm(n), gamma, beta)
    layer.forward(x)
    assert np.abs(layer.backward(G) - (direct + via_mean + via_var)).max() <= 1e-9 * scale


@settings(max_examples=30)
@given(seeds, st.integers(2, 8), st.integers(1, 4))
def test_eq_beyond_bn_backward_compact_form_matches_torch_and_bpkit(seed, N, n):
    """eq-beyond-bn-backward: dL/dx = (N g - sum g - x_hat sum g x_hat) / (N s) = (g - mean g - x_hat mean(g x_hat)) / s."""
    x, gamma, beta, G = _bn_case(seed, N, n)
    N, mu, var, s, x_hat, g = _bn_pieces(x, gamma, G)
    compact = (N * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0)) / (N * s)
    with_means = (g - g.mean(axis=0) - x_hat * (g * x_hat).mean(axis=0)) / s
    x_t = T(x).requires_grad_()
    y_t = torch.nn.functional.batch_norm(x_t, None, None, T(gamma), T(beta), training=True, eps=1e-5)
    (y_t * T(G)).sum().backward()
    layer = _with(bk.BatchNorm(n), gamma, beta)
    layer.forward(x)
    # with N = 2 the terms cancel to about eps/var and what is left is round-off: measure against the terms' size
    scale = np.abs(g / s).max()
    for other in (with_means, x_t.grad.numpy(), layer.backward(G)):
        assert np.abs(compact - other).max() <= 1e-9 * scale


@settings(max_examples=30)
@given(seeds, st.integers(2, 8), st.integers(1, 4), st.sampled_from([1e-5, 1e-2, 1.0]))
def test_eq_beyond_bn_zero_sum_each_feature_sums_to_zero_and_is_nearly_orthogonal_to_x_hat(seed, N, n, eps):
    """eq-beyond-bn-zero-sum: sum_n dL/dx_nj = 0 and sum_n x_hat_nj dL/dx_nj = N mean(g x_hat) / s * eps / (var + eps)."""
    x, gamma, beta, G = _bn_case(seed, N, n)
    layer = _with(bk.BatchNorm(n, eps=eps), gamma, beta)
    layer.forward(x)
    grad_x = layer.backward(G)
    N, mu, var, s, x_hat, g = _bn_pieces(x, gamma, G, eps)
    scale = np.abs(g / s).max() * N
    assert np.abs(grad_x.sum(axis=0)).max() <= 1e-12 * scale
    predicted = N * (g * x_hat).mean(axis=0) / s * eps / (var + eps)
    assert np.abs((x_hat * grad_x).sum(axis=0) - predicted).max() <= 1e-12 * scale


# --- layer normalisation ------------------------------------------------------------------------------------

@settings(max_examples=30)
@given(seeds, st.integers(1, 6), st.integers(2, 6))
def test_eq_beyond_ln_same_formula_over_the_features_matches_torch_layernorm(seed, N, n):
    """eq-beyond-ln: mean and variance over each example's features, and the backward of eq. beyond-bn-backward
    with the sums over the features; equal to torch.nn.LayerNorm."""
    rng = np.random.default_rng(seed)
    x, G = rng.normal(loc=1.0, scale=2.0, size=(N, n)), rng.normal(size=(N, n))
    gamma, beta = rng.uniform(0.5, 2.0, size=n), rng.normal(size=n)
    mu = x.mean(axis=1, keepdims=True)
    s = np.sqrt(((x - mu) ** 2).mean(axis=1, keepdims=True) + 1e-5)
    x_hat, g = (x - mu) / s, G * gamma
    formula = (n * g - g.sum(axis=1, keepdims=True) - x_hat * (g * x_hat).sum(axis=1, keepdims=True)) / (n * s)
    layer = _with(bk.LayerNorm(n), gamma, beta)
    y = layer.forward(x)
    grad_x = layer.backward(G)
    theirs = torch.nn.LayerNorm(n, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(T(gamma))
        theirs.bias.copy_(T(beta))
    x_t = T(x).requires_grad_()
    y_t = theirs(x_t)
    y_t.backward(T(G))
    scale = np.abs(g / s).max()
    np.testing.assert_allclose(y, gamma * x_hat + beta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    assert np.abs(grad_x - formula).max() <= 1e-9 * scale
    assert np.abs(grad_x - x_t.grad.numpy()).max() <= 1e-9 * scale
    np.testing.assert_allclose(layer.gamma.grad, theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-12)


# --- embedding ----------------------------------------------------------------------------------------------

@settings(max_examples=30)
@given(seeds, st.integers(1, 6), st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4)))
def test_eq_beyond_embedding_forward_is_a_product_with_a_one_hot_matrix(seed, V, d, shape):
    """eq-beyond-embedding-forward: y = O E with O the one-hot matrix of the ids; equal to torch.nn.Embedding."""
    rng = np.random.default_rng(seed)
    layer = bk.Embedding(V, d, rng=rng)
    ids = rng.integers(0, V, size=shape)
    O = (ids.reshape(-1, 1) == np.arange(V)).astype(np.float64)
    y = layer.forward(ids)
    np.testing.assert_array_equal(y.reshape(-1, d), O @ layer.E.value)
    theirs = torch.nn.Embedding(V, d, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(T(layer.E.value))
    np.testing.assert_array_equal(y, theirs(torch.from_numpy(ids)).detach().numpy())


@settings(max_examples=30)
@given(seeds, st.integers(1, 5), st.integers(1, 4), st.tuples(st.integers(1, 5), st.integers(1, 4)))
def test_eq_beyond_embedding_grad_is_a_scatter_add_of_every_repeat(seed, V, d, shape):
    """eq-beyond-embedding-grad: dL/dE = O^T G, row i the sum over the positions holding id i (repeats add);
    equal to torch.nn.Embedding and to central differences."""
    rng = np.random.default_rng(seed)
    layer = bk.Embedding(V, d, rng=rng)
    ids = rng.integers(0, V, size=shape)
    G = rng.normal(size=shape + (d,))
    layer.forward(ids)
    layer.backward(G)
    O = (ids.reshape(-1, 1) == np.arange(V)).astype(np.float64)
    np.testing.assert_allclose(layer.E.grad, O.T @ G.reshape(-1, d), rtol=1e-12, atol=1e-14)
    for i in range(V):
        np.testing.assert_allclose(layer.E.grad[i], G[ids == i].sum(axis=0), rtol=1e-12, atol=1e-14)
    theirs = torch.nn.Embedding(V, d, dtype=torch.float64)
    theirs(torch.from_numpy(ids)).backward(T(G))
    np.testing.assert_allclose(layer.E.grad, theirs.weight.grad.numpy(), rtol=1e-12, atol=1e-14)
    report = bk.gradcheck(lambda: float(np.sum(layer.forward(ids) * G)), layer.parameters())
    assert report.passed, report


# --- residual blocks ------------------------------------------------------------------------------------------

@settings(max_examples=30)
@given(seeds, st.integers(1, 4), st.integers(1, 4), st.sampled_from(["tanh", "sigmoid", "gelu"]))
def test_eq_beyond_residual_block_gradient_is_identity_plus_block_jacobian(seed, N, n, activation):
    """eq-beyond-residual: for y = x + F(x), dL/dx = dL/dy (I + J_F), J_F by central differences, one example at a
    time; and bk.Residual.backward gives it."""
    rng = np.random.default_rng(seed)
    block = bk.Residual(bk.Activation(activation), bk.Dense(n, n, rng=rng))
    x, G = rng.normal(size=(N, n)), rng.normal(size=(N, n))
    block.forward(x)
    grad_x = block.backward(G)
    F = block.inner
    for example in range(N):
        row = x[example:example + 1].copy()
        J_F = np.stack([bk.numerical_gradient(lambda: float(F.predict(row)[0, c]), row)[0] for c in range(n)])
        np.testing.assert_allclose(grad_x[example], G[example] @ (np.eye(n) + J_F), rtol=1e-6, atol=1e-8)


def _jacobian(F, row):
    """J[c, i] = dF_c/dx_i at one example ``row`` (1, n), by reverse mode: one backward per output."""
    n = row.shape[1]
    rows = []
    for c in range(n):
        F.forward(row)
        rows.append(F.backward(np.eye(n)[c:c + 1], input_grad=True)[0])
    return np.stack(rows)


@pytest.mark.parametrize("K", [1, 2, 3, 5])
def test_eq_beyond_residual_unrolled_product_and_its_expansion(K):
    """eq-beyond-residual-unrolled: dL/dx^(0) = dL/dx^(K) (I + J_K) ... (I + J_1), which expands into the identity
    plus the sum of every ordered product of distinct J_k; bpkit's backward through K blocks equals it."""
    rng = np.random.default_rng(K)
    n = 3
    blocks = [bk.Residual(bk.Dense(n, n, rng=rng), bk.Activation("tanh")) for _ in range(K)]
    stack = bk.Sequential(*blocks)
    x, G = rng.normal(size=(1, n)), rng.normal(size=(1, n))
    inputs, a = [], x
    for block in blocks:
        inputs.append(a)
        a = a + block.inner.predict(a)
    J = [_jacobian(block.inner, x_k) for block, x_k in zip(blocks, inputs)]
    product = np.eye(n)
    for J_k in reversed(J):                               # (I + J_K) ... (I + J_1), J_K first
        product = product @ (np.eye(n) + J_k)
    expansion = np.eye(n)
    for size in range(1, K + 1):
        for subset in combinations(range(K), size):       # J_k J_k' ... with k > k' > ..., the later block first
            term = np.eye(n)
            for k in sorted(subset, reverse=True):
                term = term @ J[k]
            expansion = expansion + term
    np.testing.assert_allclose(product, expansion, rtol=1e-12, atol=1e-12)
    stack.forward(x)
    grad_x = stack.backward(G, input_grad=True)
    np.testing.assert_allclose(grad_x, G @ product, rtol=1e-12, atol=1e-12)


# --- every label of the chapter has its test ------------------------------------------------------------------

def test_every_labelled_equation_of_the_chapter_has_a_test():
    """For each ``:label: eq-beyond-x-y`` (or ``$$ ... $$ (eq-beyond-x-y)``) in the chapter, a test here is named
    ``test_eq_beyond_x_y`` or ``test_eq_beyond_x_y_...`` and its docstring starts with the label."""
    text = "\n".join(cell.source for cell in nbformat.read(CHAPTER, as_version=4).cells if cell.cell_type == "markdown")
    labels = re.findall(r"^:label:\s*(eq-[\w-]+)", text, re.M) + re.findall(r"\$\$\s*\((eq-[\w-]+)\)", text)
    assert len(labels) >= 10 and len(set(labels)) == len(labels), labels
    tests = {name: obj for name, obj in globals().items() if name.startswith("test_eq_") and callable(obj)}
    missing = []
    for label in labels:
        stem = "test_eq_" + label[len("eq-"):].replace("-", "_")
        named = [obj for name, obj in tests.items() if name == stem or name.startswith(stem + "_")]
        if not any((obj.__doc__ or "").startswith(label + ":") for obj in named):
            missing.append(label)
    assert not missing, f"labels without a test named after them (and a docstring starting with the label): {missing}"

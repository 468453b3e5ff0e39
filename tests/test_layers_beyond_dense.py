"""Dropout, Embedding, Flatten, Residual and the L2 penalty: gradient checks over drawn shapes, PyTorch parity
in forward, backward and parameter gradients, and the misuse each must refuse. (BatchNorm and LayerNorm:
tests/test_norms.py.)"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bpkit as bk

seeds = st.integers(0, 2**31 - 1)


def _t(a):
    return torch.from_numpy(np.array(a, dtype=np.float64))


def _max_diff(pairs):
    return max(float(np.max(np.abs(np.asarray(a) - b.detach().numpy()))) for a, b in pairs)


# --- Dropout ----------------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from([0.0, 0.1, 0.5, 0.9]), seeds)
def test_dropout_passes_the_gradient_check_for_drawn_shapes(N, n, p, seed):
    rng = np.random.default_rng(seed)
    layer = bk.Dropout(p, rng=np.random.default_rng(seed))
    x, G = rng.normal(size=(N, n)), rng.normal(size=(N, n))
    layer.forward(x)
    grad_x = layer.backward(G)

    def f():
        layer.rng = np.random.default_rng(seed)  # the same mask at every evaluation
        return float(np.sum(layer.forward(x) * G))
    assert bk.rel_error(grad_x, bk.numerical_gradient(f, x)) < 1e-7


def test_dropout_matches_pytorch_with_the_same_mask():
    rng = np.random.default_rng(0)
    layer = bk.Dropout(0.3, rng=rng)
    x, g = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    y = layer.forward(x)
    dx = layer.backward(g)
    keep = _t(layer.mask != 0)
    xt = _t(x).requires_grad_()
    yt = xt * keep / (1 - 0.3)  # PyTorch's dropout is this product; its mask cannot be given, so it is written out
    yt.backward(_t(g))
    assert _max_diff([(y, yt), (dx, xt.grad)]) < 1e-15
    torch_drop = torch.nn.Dropout(0.3)
    torch_drop.eval()
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), torch_drop(_t(x)).numpy())


def test_dropout_keeps_the_expected_value():
    layer = bk.Dropout(0.4, rng=np.random.default_rng(1))
    y = layer.forward(np.full((400, 500), 2.0))
    assert abs(y.mean() - 2.0) < 0.01  # E[y] = x: 200,000 entries, std of the mean ~ 0.004


# --- Embedding --------------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(st.integers(1, 5), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), seeds)
def test_embedding_passes_the_gradient_check_with_repeated_ids(num, dim, N, T, seed):
    rng = np.random.default_rng(seed)
    layer = bk.Embedding(num, dim, rng=rng)
    ids = rng.integers(0, num, size=(N, T))  # with num small, ids repeat
    G = rng.normal(size=(N, T, dim))
    layer.forward(ids)
    layer.backward(G)
    report = bk.gradcheck(lambda: float(np.sum(layer.forward(ids) * G)), layer.parameters())
    assert report.passed, report


def test_embedding_adds_the_gradient_of_every_repeat():
    layer = bk.Embedding(4, 2, rng=np.random.default_rng(0))
    layer.forward(np.array([1, 3, 1, 1]))
    layer.backward(np.array([[1.0, 0.0], [5.0, 5.0], [2.0, 0.0], [4.0, 1.0]]))
    np.testing.assert_array_equal(layer.E.grad, [[0, 0], [7, 1], [0, 0], [5, 5]])
    wrong = np.zeros((4, 2))
    wrong[[1, 3, 1, 1]] += [[1.0, 0.0], [5.0, 5.0], [2.0, 0.0], [4.0, 1.0]]  # fancy-index += keeps one repeat
    assert not np.array_equal(wrong, layer.E.grad)


def test_embedding_matches_pytorch():
    rng = np.random.default_rng(0)
    ours = bk.Embedding(7, 3, rng=rng)
    theirs = torch.nn.Embedding(7, 3, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(_t(ours.E.value))
    ids = rng.integers(0, 7, size=(6, 4))
    g = rng.normal(size=(6, 4, 3))
    y = ours.forward(ids)
    ours.backward(g)
    yt = theirs(torch.from_numpy(ids))
    yt.backward(_t(g))
    assert _max_diff([(y, yt), (ours.E.grad, theirs.weight.grad)]) < 1e-15


@pytest.mark.parametrize("ids, error, words", [
    (np.array([0, 5]), IndexError, r"Embedding\(5, 2\) got id 5 at index \(1,\): ids must be in 0\.\.4"),
    (np.array([[0, 1], [-1, 2]]), IndexError, r"got id -1 at index \(1, 0\)"),
    (np.array([0.0, 1.0]), TypeError, r"integer ids, got an array of dtype float64.*astype\(int\)"),
    (np.array([True, False]), TypeError, r"integer ids, got an array of dtype bool"),
    (np.array(3), ValueError, r"needs a batch of ids, got shape \(\)"),
    (np.array([], dtype=int), ValueError, r"needs a batch of ids, got shape \(0,\)"),
])
def test_embedding_refuses_bad_ids_by_name(ids, error, words):
    layer = bk.Embedding(5, 2, rng=np.random.default_rng(0))
    model = bk.Sequential(layer, bk.Flatten())
    for call in (layer.forward, model.forward):
        with pytest.raises(error, match=words):
            call(ids)


@pytest.mark.parametrize("args, words", [((0, 2), "positive integer num"), ((3, 2.0), "positive integer dim")])
def test_embedding_refuses_bad_sizes(args, words):
    with pytest.raises(ValueError, match=words):
        bk.Embedding(*args, rng=np.random.default_rng(0))


def test_an_embedding_model_trains_with_fit_and_passes_check_model():
    rng = np.random.default_rng(0)
    model = bk.Sequential(bk.Embedding(6, 3, rng=rng), bk.Flatten(), bk.Dense(6, 8, rng=rng),
                          bk.Activation("tanh"), bk.Dense(8, 6, rng=rng))
    ids = rng.integers(0, 6, size=(40, 2))
    y = (ids[:, 0] + ids[:, 1]) % 6
    loss = bk.SoftmaxCrossEntropy()
    assert bk.check_model(model, loss, ids[:8], y[:8]).passed
    history = bk.train.fit(model, loss, bk.optim.Adam(model.parameters(), lr=0.05), ids, y,
                           epochs=60, batch_size=10, rng=rng, progress=False)
    assert history.train_loss[-1] < 0.2 * history.train_loss[0]


# --- Flatten and Residual ---------------------------------------------------------------------------------


@settings(max_examples=15)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), seeds)
def test_flatten_passes_the_gradient_check_and_restores_the_shape(N, a, b, seed):
    rng = np.random.default_rng(seed)
    layer = bk.Flatten()
    x = rng.normal(size=(N, a, b))
    assert layer.forward(x).shape == (N, a * b)
    assert bk.check_layer(layer, x, rng).passed


@settings(max_examples=20)
@given(st.integers(1, 5), st.integers(1, 5), st.sampled_from(["tanh", "sigmoid", "gelu"]), seeds)
def test_residual_passes_the_gradient_check_for_drawn_shapes(N, n, act, seed):
    rng = np.random.default_rng(seed)
    block = bk.Residual(bk.Dense(n, n, rng=rng), bk.Activation(act), bk.Dense(n, n, rng=rng))
    report = bk.check_layer(block, rng.normal(size=(N, n)), rng)
    assert report.passed, report


def test_residual_matches_pytorch():
    rng = np.random.default_rng(0)
    d1, d2 = bk.Dense(4, 4, rng=rng), bk.Dense(4, 4, rng=rng)
    block = bk.Residual(d1, bk.Activation("tanh"), d2)
    x, g = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    y = block.forward(x)
    dx = block.backward(g)
    xt = _t(x).requires_grad_()
    W1, b1, W2, b2 = (_t(p.value).requires_grad_() for p in (d1.W, d1.b, d2.W, d2.b))
    yt = xt + torch.tanh(xt @ W1 + b1) @ W2 + b2
    yt.backward(_t(g))
    pairs = [(y, yt), (dx, xt.grad), (d1.W.grad, W1.grad), (d1.b.grad, b1.grad), (d2.W.grad, W2.grad),
             (d2.b.grad, b2.grad)]
    assert _max_diff(pairs) < 1e-13


# --- L2 penalty -------------------------------------------------------------------------------------------


def _l2_case(seed, lam):
    rng = np.random.default_rng(seed)
    model = bk.Sequential(bk.Dense(3, 5, rng=rng), bk.BatchNorm(5), bk.Activation("tanh"), bk.Dense(5, 2, rng=rng))
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 2, size=6)
    return model, bk.L2Penalty(bk.SoftmaxCrossEntropy(), model, lam), X, y


@settings(max_examples=15)
@given(seeds, st.floats(0.0, 10.0))
def test_l2_penalty_passes_the_gradient_check(seed, lam):
    model, loss, X, y = _l2_case(seed, lam)
    report = bk.check_model(model, loss, X, y)
    assert report.passed, report


def test_l2_penalty_is_half_lambda_times_the_squared_weights_and_leaves_vectors_free():
    model, loss, X, y = _l2_case(0, 0.3)
    d1, bn, d2 = model.layers[0], model.layers[1], model.layers[3]
    assert loss.weights == [d1.W, d2.W]
    data = bk.SoftmaxCrossEntropy()
    expected = data.forward(model.forward(X), y) + 0.15 * (np.sum(d1.W.value**2) + np.sum(d2.W.value**2))
    assert loss.forward(model.forward(X), y) == pytest.approx(expected, rel=1e-14)
    model.zero_grad()
    model.backward(loss.backward())
    penalised = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    data.forward(model.forward(X), y)
    model.backward(data.backward())
    for p, g in zip(model.parameters(), penalised):
        extra = 0.3 * p.value if p.value.ndim == 2 else 0.0  # W gets lam W; b, gamma, beta nothing
        np.testing.assert_allclose(g, p.grad + extra, rtol=1e-13, atol=1e-15)
    assert not np.allclose(d1.W.grad, penalised[0])


def test_l2_penalty_matches_pytorch():
    model, loss, X, y = _l2_case(1, 0.7)
    model.zero_grad()
    value = loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    d1, bn, d2 = model.layers[0], model.layers[1], model.layers[3]
    ps = [_t(p.value).requires_grad_() for p in model.parameters()]
    W1, b1, gamma, beta, W2, b2 = ps
    z = _t(X) @ W1 + b1
    z = torch.nn.functional.batch_norm(z, None, None, gamma, beta, training=True, eps=bn.eps)
    logits = torch.tanh(z) @ W2 + b2
    total = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)) + 0.7 / 2 * (W1.square().sum() + W2.square().sum())
    total.backward()
    assert abs(value - total.item()) < 1e-14
    assert _max_diff([(p.grad, q.grad) for p, q in zip(model.parameters(), ps)]) < 1e-13


def test_l2_with_sgd_is_weight_decay_and_with_adam_differs_from_adamw():
    def one_step(make_opt, lam_in_loss):
        model, loss, X, y = _l2_case(2, lam_in_loss)
        opt = make_opt(model.parameters())
        bk.train.train_step(model, loss, opt, X, y)
        return model.layers[0].W.value.copy(), model.layers[0].b.value.copy()

    W_l2, _ = one_step(lambda ps: bk.optim.SGD(ps, lr=0.1), 0.5)
    W_0, _ = one_step(lambda ps: bk.optim.SGD(ps, lr=0.1), 0.0)
    model, _, _, _ = _l2_case(2, 0.0)
    W_init = model.layers[0].W.value
    np.testing.assert_allclose(W_l2, W_0 - 0.1 * 0.5 * W_init, rtol=1e-12, atol=1e-15)  # w - lr (g + lam w)

    W_adam_l2, _ = one_step(lambda ps: bk.optim.Adam(ps, lr=0.01), 0.5)
    W_adamw, _ = one_step(lambda ps: bk.optim.AdamW(ps, lr=0.01, weight_decay=0.5), 0.0)
    assert np.max(np.abs(W_adam_l2 - W_adamw)) > 1e-4  # Adam rescales lam w; AdamW subtracts lr lam w as is


@pytest.mark.parametrize("lam", [-1.0, float("nan"), float("inf"), True, "0.1"])
def test_l2_penalty_refuses_a_bad_lambda(lam):
    model, _, _, _ = _l2_case(0, 0.0)
    with pytest.raises(ValueError, match=r"L2Penalty needs a finite lam >= 0"):
        bk.L2Penalty(bk.MSE(), model, lam)


# --- composition ------------------------------------------------------------------------------------------


def test_an_mlp_style_model_of_every_layer_is_gradchecked_in_training_mode():
    rng = np.random.default_rng(4)
    model = bk.Sequential(bk.Embedding(5, 2, rng=rng), bk.Flatten(), bk.Dense(6, 6, rng=rng), bk.BatchNorm(6),
                          bk.Activation("gelu"), bk.Residual(bk.Dense(6, 6, rng=rng), bk.LayerNorm(6)),
                          bk.Dropout(0.0, rng=rng), bk.Dense(6, 3, rng=rng))
    ids, y = rng.integers(0, 5, size=(7, 3)), rng.integers(0, 3, size=7)
    report = bk.check_model(model, bk.L2Penalty(bk.SoftmaxCrossEntropy(), model, 0.1), ids, y)
    assert report.passed, report


def test_check_model_refuses_a_forward_that_draws_a_new_dropout_mask():
    rng = np.random.default_rng(0)
    model = bk.Sequential(bk.Dense(3, 4, rng=rng), bk.Dropout(0.5, rng=rng), bk.Dense(4, 1, rng=rng))
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    with pytest.raises(ValueError, match=r"different losses.*Dropout in training mode"):
        bk.check_model(model, bk.MSE(), X, y)
    model.layers[1].p = 0.0  # the message's first fix: no dropout, the same loss every time
    assert bk.check_model(model, bk.MSE(), X, y).passed


def test_the_layer_accuracy_report_covers_every_layer_within_its_bounds():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "scripts" / "layer_accuracy.py"
    spec = importlib.util.spec_from_file_location("layer_accuracy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.measure(cases=4, seed=1)
    assert set(figures) == {"Dense", "Dropout", "BatchNorm", "LayerNorm", "Embedding", "Flatten", "Residual", "L2Penalty"}
    for name, (error, diff) in figures.items():
        assert error < 1e-7 and diff < 1e-12, (name, error, diff)

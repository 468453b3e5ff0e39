"""BatchNorm, LayerNorm, Dropout and Residual: gradient checks, PyTorch parity, and the layer protocol."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bpkit as bk

shapes = st.tuples(st.integers(2, 6), st.integers(1, 5), st.integers(0, 2**31 - 1))


@settings(max_examples=25)
@given(shapes, st.sampled_from(["batch", "layer"]))
def test_norm_layers_pass_the_gradient_check(case, kind):
    N, n, seed = case
    rng = np.random.default_rng(seed)
    layer = bk.BatchNorm(n) if kind == "batch" else bk.LayerNorm(n)
    layer.gamma.value[...] = rng.normal(size=n)
    layer.beta.value[...] = rng.normal(size=n)
    x = rng.normal(size=(N, n)) * 3 + 1
    if kind == "layer" and n == 1:
        return  # one feature: x_hat is 0 whatever x, and the gradient is 0 (checked below)
    report = bk.check_layer(layer, x, rng)
    assert report.passed, report


def test_layer_norm_of_one_feature_has_a_zero_input_gradient():
    layer = bk.LayerNorm(1)
    layer.forward(np.array([[3.0], [-2.0]]))
    np.testing.assert_array_equal(layer.backward(np.array([[1.0], [5.0]])), 0.0)


def _torch_pair(kind, n, rng):
    ours = bk.BatchNorm(n, momentum=0.1) if kind == "batch" else bk.LayerNorm(n)
    theirs = torch.nn.BatchNorm1d(n, momentum=0.1, dtype=torch.float64) if kind == "batch" else \
        torch.nn.LayerNorm(n, dtype=torch.float64)
    gamma, beta = rng.normal(size=n), rng.normal(size=n)
    ours.gamma.value[...], ours.beta.value[...] = gamma, beta
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(gamma))
        theirs.bias.copy_(torch.from_numpy(beta))
    return ours, theirs


@pytest.mark.parametrize("kind", ["batch", "layer"])
def test_norm_layers_match_pytorch_forward_backward_and_running_statistics(kind):
    rng = np.random.default_rng(0)
    ours, theirs = _torch_pair(kind, 4, rng)
    worst = 0.0
    for step in range(3):
        x = rng.normal(size=(6, 4)) * 2 + step
        g = rng.normal(size=(6, 4))
        for p in ours.parameters():
            p.zero_grad()
        theirs.zero_grad()
        xt = torch.from_numpy(x.copy()).requires_grad_()
        yt = theirs(xt)
        yt.backward(torch.from_numpy(g))
        y = ours.forward(x)
        dx = ours.backward(g)
        for a, b in ((y, yt.detach()), (dx, xt.grad), (ours.gamma.grad, theirs.weight.grad), (ours.beta.grad, theirs.bias.grad)):
            worst = max(worst, float(np.max(np.abs(a - b.numpy()))))
    if kind == "batch":
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12, atol=1e-14)
        ours.eval(), theirs.eval()
        x = rng.normal(size=(5, 4))
        np.testing.assert_allclose(ours.forward(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)
    assert worst < 1e-12, worst


def test_batch_norm_refuses_a_training_batch_of_one_and_evaluates_one():
    layer = bk.BatchNorm(3)
    with pytest.raises(ValueError, match=r"BatchNorm\(3\) got a training batch of 1 example.*model\.eval\(\)"):
        layer.forward(np.ones((1, 3)))
    layer.eval()
    np.testing.assert_allclose(layer.forward(np.ones((1, 3))), 1 / np.sqrt(1 + 1e-5))


def test_batch_norm_in_evaluation_keeps_nothing_and_moves_no_statistic():
    layer = bk.BatchNorm(2)
    layer.forward(np.array([[1.0, 2.0], [3.0, 5.0]]))
    kept, stats = layer.x_hat.copy(), (layer.running_mean.copy(), layer.running_var.copy())
    layer.eval()
    layer.forward(np.array([[9.0, 9.0], [7.0, 1.0]]))
    np.testing.assert_array_equal(layer.x_hat, kept)
    np.testing.assert_array_equal(layer.running_mean, stats[0])
    np.testing.assert_array_equal(layer.running_var, stats[1])


def test_dropout_scales_the_kept_entries_and_backward_uses_the_same_mask():
    layer = bk.Dropout(0.25, rng=np.random.default_rng(0))
    x = np.ones((200, 50))
    y = layer.forward(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    assert abs(kept.mean() - 0.75) < 0.01
    g = np.random.default_rng(1).normal(size=x.shape)
    np.testing.assert_array_equal(layer.backward(g), g * (y / x))
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), x)


def test_dropout_passes_the_gradient_check_with_its_mask_fixed():
    rng = np.random.default_rng(3)
    layer = bk.Dropout(0.5, rng=np.random.default_rng(7))
    x, G = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    layer.forward(x)
    mask = layer.mask.copy()
    grad_x = layer.backward(G)

    def f():
        layer.rng = np.random.default_rng(7)  # the same draw: the function of x is fixed
        return float(np.sum(layer.forward(x) * G))
    np.testing.assert_allclose(bk.numerical_gradient(f, x), grad_x, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(layer.mask, mask)


@pytest.mark.parametrize("p", [-0.1, 1.0, "0.5"])
def test_dropout_refuses_a_bad_probability(p):
    with pytest.raises(ValueError, match=r"Dropout needs 0 <= p < 1"):
        bk.Dropout(p, rng=np.random.default_rng(0))


def test_residual_adds_the_identity_and_passes_the_gradient_check():
    rng = np.random.default_rng(0)
    block = bk.Residual(bk.Dense(3, 3, rng=rng), bk.Activation("tanh"), bk.Dense(3, 3, rng=rng))
    x = rng.normal(size=(5, 3))
    inner = bk.Sequential(*block.inner.layers)
    np.testing.assert_allclose(block.forward(x), x + inner.predict(x))
    assert bk.check_layer(block, x, rng).passed
    with pytest.raises(ValueError, match=r"a residual block needs the same shape"):
        bk.Residual(bk.Dense(3, 2, rng=rng)).forward(x)


def test_a_model_with_every_new_layer_composes_trains_and_switches_modes():
    rng = np.random.default_rng(0)
    model = bk.Sequential(bk.Dense(4, 6, rng=rng), bk.BatchNorm(6), bk.Activation("relu"),
                          bk.Residual(bk.Dense(6, 6, rng=rng), bk.LayerNorm(6)), bk.Dropout(0.2, rng=rng),
                          bk.Dense(6, 2, rng=rng))
    names = [p.name for p in model.parameters()]
    assert len(names) == 10
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 2, size=64)
    history = bk.train.fit(model, bk.SoftmaxCrossEntropy(), bk.optim.Adam(model.parameters(), lr=0.01), X, y,
                           epochs=30, batch_size=16, rng=rng, progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    model.eval()
    assert all(not layer.training for layer in model.layers) and not model.layers[3].inner.layers[1].training
    np.testing.assert_array_equal(model.forward(X[:3]), model.forward(X[:3]))  # no dropout, fixed statistics
    model.train()
    assert model.layers[3].inner.layers[1].training

"""Every labelled equation of the PyTorch chapter (07_pytorch_comparison), checked numerically.

All tensors are float64; torch's default dtype is never changed.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import bpkit as bk
from bpkit import optim

TORCH_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


def linear_from_dense(dense):
    """nn.Linear holding a copy of a Dense layer's weights: weight = W.T (eq-torch-layout)."""
    linear = torch.nn.Linear(dense.n_in, dense.n_out, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(dense.W.value.T))
        linear.bias.copy_(torch.from_numpy(dense.b.value))
    return linear


def torch_forward(linears, activations, x, keep_z=False):
    """The twin's forward pass; with keep_z, every pre-activation retains its gradient."""
    zs, a = [], x
    for l, linear in enumerate(linears):
        z = linear(a)
        if keep_z:
            z.retain_grad()
            zs.append(z)
        a = TORCH_ACTIVATIONS[activations[l]](z) if l < len(activations) else z
    return a, zs


def classification(rng, sizes, n):
    return rng.normal(size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n)


# --- eq-torch-layout, eq-torch-grad-layout ---------------------------------------------------------

@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_eq_torch_layout_linear_with_transposed_weight_equals_dense(n_in, n_out, n, seed):
    """eq-torch-layout: a W + b = a weight^T + bias with weight = W^T, shape (n_out, n_in)."""
    rng = np.random.default_rng(seed)
    dense = bk.Dense(n_in, n_out, rng=rng)
    dense.b.value[...] = rng.normal(size=n_out)
    linear = linear_from_dense(dense)
    a = rng.normal(size=(n, n_in))
    z = dense.forward(a)
    assert linear.weight.shape == (n_out, n_in)
    assert np.allclose(linear(torch.from_numpy(a)).detach().numpy(), z, rtol=1e-12, atol=1e-14)
    by_formula = torch.from_numpy(a) @ linear.weight.detach().T + linear.bias.detach()
    assert np.allclose(by_formula.numpy(), z, rtol=1e-12, atol=1e-14)
    # the untransposed W would not even fit unless the layer is square
    if n_in != n_out:
        with pytest.raises(RuntimeError):
            F.linear(torch.from_numpy(a), torch.from_numpy(dense.W.value))


def test_eq_torch_grad_layout_weight_grad_is_transposed_bpkit_grad(rng):
    """eq-torch-grad-layout: dL/dweight = (dL/dW)^T = delta^T a, dL/dbias = sum_n delta_n."""
    dense = bk.Dense(5, 3, rng=rng)
    linear = linear_from_dense(dense)
    a, delta = rng.normal(size=(7, 5)), rng.normal(size=(7, 3))
    dense.forward(a)
    dense.backward(delta)
    linear(torch.from_numpy(a)).backward(torch.from_numpy(delta))
    weight_grad, bias_grad = linear.weight.grad.numpy(), linear.bias.grad.numpy()
    assert weight_grad.shape == (3, 5) and dense.W.grad.shape == (5, 3)
    assert np.allclose(weight_grad, dense.W.grad.T, rtol=1e-12, atol=1e-14)
    assert np.allclose(weight_grad, delta.T @ a, rtol=1e-12, atol=1e-14)
    assert np.allclose(bias_grad, delta.sum(axis=0), rtol=1e-12, atol=1e-14)
    assert np.allclose(bias_grad, dense.b.grad, rtol=1e-12, atol=1e-14)


# --- eq-torch-reduction ---------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 5])
def test_eq_torch_reduction_elementwise_losses_differ_by_k(k, rng):
    """eq-torch-reduction: bpkit = k * torch mean for BCE; bpkit MSE = k/2 * F.mse_loss."""
    n = 9
    z, t = rng.normal(size=(n, k)), rng.integers(0, 2, size=(n, k)).astype(np.float64)
    bce_torch = F.binary_cross_entropy_with_logits(torch.from_numpy(z), torch.from_numpy(t)).item()
    assert math.isclose(bk.BCEWithLogits().forward(z, t), k * bce_torch, rel_tol=1e-12)
    y = rng.normal(size=(n, k))
    mse_torch = F.mse_loss(torch.from_numpy(z), torch.from_numpy(y)).item()
    assert math.isclose(bk.MSE().forward(z, y), k / 2 * mse_torch, rel_tol=1e-12)
    # and the per-entry definition of the mean: (1 / (N k)) sum of the elementwise terms
    per_entry = np.logaddexp(0, z) - t * z
    assert math.isclose(bce_torch, per_entry.sum() / (n * k), rel_tol=1e-12)


def test_eq_torch_reduction_cross_entropy_with_labels_needs_no_factor(rng):
    """eq-torch-reduction: one number per example, so F.cross_entropy's mean equals bpkit's loss."""
    z, labels = rng.normal(size=(11, 4)), rng.integers(0, 4, size=11)
    theirs = F.cross_entropy(torch.from_numpy(z), torch.from_numpy(labels)).item()
    assert math.isclose(bk.SoftmaxCrossEntropy().forward(z, labels), theirs, rel_tol=1e-12)


# --- eq-torch-momentum, eq-torch-rmsprop, eq-torch-adam -------------------------------------------

def run_three_ways(make_bpkit, make_torch, by_hand, rng, steps=6, shape=(3, 4)):
    """The same gradients fed to a bpkit optimizer, a torch optimizer and a hand formula."""
    w0 = rng.normal(size=shape)
    grads = [rng.normal(scale=s, size=shape) for s in np.geomspace(1e-2, 10, steps)]
    p = bk.Parameter(w0.copy(), "w")
    opt = make_bpkit([p])
    w_t = torch.tensor(w0, requires_grad=True)
    opt_t = make_torch([w_t])
    for g in grads:
        p.grad[...] = g
        opt.step()
        w_t.grad = torch.tensor(g)
        opt_t.step()
    return p.value, w_t.detach().numpy(), by_hand(w0, grads), w0


def test_eq_torch_momentum(rng):
    """eq-torch-momentum: v_t = beta v_{t-1} + g_t, w_t = w_{t-1} - lr v_t (torch.optim.SGD(momentum))."""
    lr, beta = 0.05, 0.9

    def by_hand(w, grads):
        v = np.zeros_like(w)
        for g in grads:
            v = beta * v + g
            w = w - lr * v
        return w

    ours, theirs, hand, w0 = run_three_ways(lambda ps: optim.Momentum(ps, lr=lr, beta=beta),
                                            lambda ps: torch.optim.SGD(ps, lr=lr, momentum=beta), by_hand, rng)
    assert np.abs(ours - hand).max() < 1e-12 and np.abs(theirs - hand).max() < 1e-12
    assert np.abs(hand - w0).max() > 1e-2


def test_eq_torch_momentum_other_form_agrees_only_for_a_constant_rate(rng):
    """eq-torch-momentum vs v = beta v + lr g, w -= v: equal with constant lr, different once lr changes."""
    beta, grads, w0 = 0.9, [rng.normal(size=5) for _ in range(6)], rng.normal(size=5)

    def torch_form(rates):
        w, v = w0.copy(), np.zeros(5)
        for lr, g in zip(rates, grads):
            v = beta * v + g
            w = w - lr * v
        return w

    def other_form(rates):
        w, v = w0.copy(), np.zeros(5)
        for lr, g in zip(rates, grads):
            v = beta * v + lr * g
            w = w - v
        return w

    constant, changed = [0.1] * 6, [0.1] * 3 + [0.01] * 3
    assert np.allclose(torch_form(constant), other_form(constant), rtol=1e-12, atol=1e-14)
    assert np.abs(torch_form(changed) - other_form(changed)).max() > 1e-3


def test_eq_torch_rmsprop(rng):
    """eq-torch-rmsprop: s_t = rho s + (1 - rho) g^2, w -= lr g / (sqrt(s) + eps) (torch alpha = rho)."""
    lr, rho, eps = 0.01, 0.9, 1e-6

    def by_hand(w, grads, eps_inside=False):
        s = np.zeros_like(w)
        for g in grads:
            s = rho * s + (1 - rho) * g * g
            w = w - lr * g / (np.sqrt(s + eps) if eps_inside else np.sqrt(s) + eps)
        return w

    ours, theirs, hand, w0 = run_three_ways(lambda ps: optim.RMSprop(ps, lr=lr, rho=rho, eps=eps),
                                            lambda ps: torch.optim.RMSprop(ps, lr=lr, alpha=rho, eps=eps),
                                            by_hand, rng)
    assert np.abs(ours - hand).max() < 1e-12 and np.abs(theirs - hand).max() < 1e-12
    # epsilon under the root is another update when g^2 is not much larger than eps
    small = [np.full(3, 1e-3)] * 4
    w = np.zeros(3)
    assert np.abs(by_hand(w, small) - by_hand(w, small, eps_inside=True)).max() > 1e-4


def test_eq_torch_adam(rng):
    """eq-torch-adam: bias-corrected moments, eps added to sqrt(v_t) / sqrt(1 - beta2^t)."""
    lr, beta1, beta2, eps = 0.01, 0.8, 0.99, 1e-8

    def by_hand(w, grads):
        m, v = np.zeros_like(w), np.zeros_like(w)
        for t, g in enumerate(grads, start=1):
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            w = w - lr / (1 - beta1**t) * m / (np.sqrt(v) / np.sqrt(1 - beta2**t) + eps)
        return w

    ours, theirs, hand, w0 = run_three_ways(lambda ps: optim.Adam(ps, lr=lr, betas=(beta1, beta2), eps=eps),
                                            lambda ps: torch.optim.Adam(ps, lr=lr, betas=(beta1, beta2), eps=eps),
                                            by_hand, rng)
    assert np.abs(ours - hand).max() < 1e-12 and np.abs(theirs - hand).max() < 1e-12
    # the first step moves every weight by about lr, whatever the size of its gradient
    g = rng.choice([-1.0, 1.0], size=(3, 4)) * np.geomspace(1e-3, 1e3, 12).reshape(3, 4)
    p = bk.Parameter(np.zeros((3, 4)), "w")
    adam = optim.Adam([p], lr=lr, betas=(beta1, beta2), eps=eps)
    p.grad[...] = g
    adam.step()
    assert np.allclose(p.value, -lr * np.sign(g), rtol=1e-4)
    assert np.allclose(p.value, by_hand(np.zeros((3, 4)), [g]), rtol=1e-12)


def test_eq_torch_adam_efficient_form_has_a_larger_effective_eps():
    """eq-torch-adam vs the paper's reordered form: equal iff eps_hat = eps * sqrt(1 - beta2^t)."""
    lr, beta1, beta2, eps, t = 0.01, 0.9, 0.999, 1e-3, 1
    g = np.array([1e-4, 1e-3, 1e-2])
    m, v = (1 - beta1) * g, (1 - beta2) * g * g
    torch_form = lr / (1 - beta1**t) * m / (np.sqrt(v) / np.sqrt(1 - beta2**t) + eps)

    def reordered(eps_hat):
        return lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + eps_hat)

    assert np.allclose(reordered(eps * np.sqrt(1 - beta2**t)), torch_form, rtol=1e-12)
    assert np.all(reordered(eps) < torch_form)  # same eps there means a larger eps here: smaller steps


# --- eq-torch-saved -------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes, activations", [
    ([5, 3], []),
    ([4, 6, 3], ["tanh"]),
    ([64, 32, 16, 10], ["tanh", "relu"]),
    ([3, 5, 4, 6, 2], ["sigmoid", "relu", "tanh"]),
])
def test_eq_torch_saved_counts_what_each_library_keeps(sizes, activations, rng):
    """eq-torch-saved: torch saves N(n_0 + sum hidden + n_L) floats, bpkit keeps N(n_0 + 2 sum hidden + n_L).

    Holds for activations whose derivative torch computes from their output (tanh, ReLU, sigmoid)
    and softmax cross-entropy with integer labels, with an input that does not require a gradient.
    """
    n = 7
    model = bk.MLP(sizes, activations, rng=rng)
    X, y = classification(rng, sizes, n)
    linears = [linear_from_dense(d) for d in model.dense_layers]
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = torch_forward(linears, activations, torch.from_numpy(X))
        F.cross_entropy(out, torch.from_numpy(y))
    weights = {p.untyped_storage().data_ptr() for lin in linears for p in lin.parameters()}
    floats = {t.untyped_storage().data_ptr(): t.numel() for t in saved
              if t.is_floating_point() and t.ndim == 2 and t.untyped_storage().data_ptr() not in weights}
    hidden = sum(sizes[1:-1])
    assert sum(floats.values()) == n * (sizes[0] + hidden + sizes[-1])

    loss = bk.SoftmaxCrossEntropy()
    loss.forward(model.forward(X), y)
    layers_keep = [layer.a_prev if isinstance(layer, bk.Dense) else layer.z for layer in model.layers]
    kept = {id(c): c.size for c in layers_keep + list(loss.cache) if c.dtype.kind == "f"}
    assert sum(kept.values()) == n * (sizes[0] + 2 * hidden + sizes[-1])
    assert loss.cache[1] is y  # the labels, shared, not copied


# --- eq-torch-retain-grad -------------------------------------------------------------------------

@pytest.mark.parametrize("activations", [["tanh", "relu"], ["sigmoid", "tanh"]])
def test_eq_torch_retain_grad_of_z_is_bpkit_delta(activations, rng):
    """eq-torch-retain-grad: z^(l).grad = delta^(l) = (delta^(l+1) W^(l+1)T) * f'(z^(l)), delta^(L) = dL/dy_hat."""
    sizes = [4, 6, 5, 3]
    model = bk.MLP(sizes, activations, rng=rng)
    X, y = classification(rng, sizes, 8)
    loss = bk.SoftmaxCrossEntropy()
    loss.forward(model.forward(X), y)
    grad = loss.backward()
    deltas = [grad]
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
        if isinstance(layer, bk.Activation):
            deltas.append(grad)
    deltas = deltas[::-1]

    linears = [linear_from_dense(d) for d in model.dense_layers]
    out, zs = torch_forward(linears, activations, torch.from_numpy(X), keep_z=True)
    F.cross_entropy(out, torch.from_numpy(y)).backward()
    for delta, z in zip(deltas, zs):
        assert np.allclose(z.grad.numpy(), delta, rtol=1e-10, atol=1e-14)

    # the recursion itself, from the retained gradients and bk's f'
    for l in range(len(zs) - 1):
        W_next = model.dense_layers[l + 1].W.value
        f_prime = bk.ACTIVATIONS[activations[l]][1]
        recursion = (zs[l + 1].grad.numpy() @ W_next.T) * f_prime(zs[l].detach().numpy())
        assert np.allclose(zs[l].grad.numpy(), recursion, rtol=1e-10, atol=1e-14)


# --- eq-torch-accumulate --------------------------------------------------------------------------

def test_eq_torch_accumulate_both_libraries_add_into_grad(rng):
    """eq-torch-accumulate: each backward adds dL_B/dtheta into .grad, in bpkit and in torch."""
    sizes, activations = [3, 5, 4], ["tanh"]
    model = bk.MLP(sizes, activations, rng=rng)
    linears = [linear_from_dense(d) for d in model.dense_layers]
    params_t = [p for lin in linears for p in (lin.weight, lin.bias)]
    batches = [classification(rng, sizes, n) for n in (6, 9)]
    loss = bk.SoftmaxCrossEntropy()

    def bpkit_grad(batch):
        loss.forward(model.forward(batch[0]), batch[1])
        model.backward(loss.backward())
        return [p.grad.copy() for p in model.parameters()]

    def torch_grad(batch):
        out, _ = torch_forward(linears, activations, torch.from_numpy(batch[0]))
        F.cross_entropy(out, torch.from_numpy(batch[1])).backward()
        return [p.grad.numpy().T.copy() if p.ndim == 2 else p.grad.numpy().copy() for p in params_t]

    model.zero_grad()
    g_first = bpkit_grad(batches[0])
    model.zero_grad()
    g_second = bpkit_grad(batches[1])
    model.zero_grad()
    bpkit_grad(batches[0])
    g_both = bpkit_grad(batches[1])  # no zero_grad in between
    torch_grad(batches[0])
    g_both_t = torch_grad(batches[1])
    for both, both_t, g1, g2 in zip(g_both, g_both_t, g_first, g_second):
        assert np.allclose(both, g1 + g2, rtol=1e-12, atol=1e-15)
        assert np.allclose(both_t, g1 + g2, rtol=1e-10, atol=1e-14)
        assert np.abs(both - g2).max() > 1e-6  # the first batch really contributed

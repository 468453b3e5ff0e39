"""Every labelled equation of chapter 9 (what comes next), checked numerically or symbolically."""

import copy

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bpkit as bk
from bpkit import train
from bpkit.activations import sigmoid_prime, tanh_prime

from strategies import float_arrays, seeds


def _grads(model, loss, X, y):
    """One forward and backward pass over (X, y); the gradients as one flat vector."""
    model.zero_grad()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    return np.concatenate([p.grad.ravel() for p in model.parameters()])


def _flat_grad(params):
    return np.concatenate([p.grad.ravel() for p in params])


# --- batching ---------------------------------------------------------------------------------

@given(st.integers(1, 8), seeds)
def test_eq_next_batch_mean_loop_over_examples_equals_batched_gradient(N, seed):
    """eq-next-batch-mean: the batch gradient is the mean of the per-example gradients."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(N, 3)), rng.normal(size=(N, 2))
    model, loss = bk.MLP([3, 5, 2], "tanh", rng=rng), bk.MSE()
    batched = _grads(model, loss, X, y)
    per_example = np.mean([_grads(model, loss, X[n:n + 1], y[n:n + 1]) for n in range(N)], axis=0)
    assert np.max(np.abs(batched - per_example)) < 1e-12 * max(1.0, np.max(np.abs(batched)))


@given(st.integers(1, 6).flatmap(lambda N: st.tuples(float_arrays((N, 4)), float_arrays((N, 3)))))
def test_eq_next_batch_outer_product_is_sum_of_row_outer_products(arrays):
    """eq-next-batch-outer: a^T delta equals the sum over examples of the outer products of the rows."""
    a, delta = arrays
    summed = sum(np.outer(a[n], delta[n]) for n in range(len(a)))
    assert np.allclose(a.T @ delta, summed, rtol=1e-12, atol=1e-12)


# --- what forward keeps, and checkpointing -----------------------------------------------------

KEPT = {bk.Dense: "a_prev", bk.Activation: "z"}  # where each kind of layer keeps its array


def _kept(layers):
    """What the layers keep for backward (None where a layer keeps nothing)."""
    return [getattr(layer, KEPT[type(layer)]) for layer in layers]


def _forget(layer):
    setattr(layer, KEPT[type(layer)], None)


def _held(arrays):
    """Numbers held by the arrays, each distinct array counted once."""
    return sum(a.size for a in {id(a): a for a in arrays if a is not None}.values())


@given(st.lists(st.integers(1, 6), min_size=2, max_size=5), st.integers(1, 7), seeds)
def test_eq_next_cache_count_matches_what_an_mlp_stores(sizes, N, seed):
    """eq-next-cache-count: after a training forward the layers keep N (n_0 + 2 * sum of hidden widths) numbers;
    a prediction adds nothing and changes nothing."""
    rng = np.random.default_rng(seed)
    model = bk.MLP(sizes, "tanh", rng=rng)
    model.forward(rng.normal(size=(N, sizes[0])))
    kept = _kept(model.layers)
    assert _held(kept) == N * (sizes[0] + 2 * sum(sizes[1:-1]))
    model.predict(rng.normal(size=(N + 1, sizes[0])))
    assert all(a is b for a, b in zip(_kept(model.layers), kept))


def _checkpointed_backward(model, loss, X, y, n_segments):
    """Backprop keeping only segment inputs and recomputing each segment; returns the peak numbers held."""
    starts = [i for i, layer in enumerate(model.layers) if isinstance(layer, bk.Dense)]
    cuts = starts[::len(starts) // n_segments][:n_segments] + [len(model.layers)]
    segments = [model.layers[i:j] for i, j in zip(cuts[:-1], cuts[1:])]
    for layer in model.layers:
        _forget(layer)
    model.zero_grad()
    model.eval()                               # the first forward keeps nothing but the segment inputs
    checkpoints, a = [], X
    for segment in segments:
        checkpoints.append(a)
        for layer in segment:
            a = layer.forward(a)
    assert _kept(model.layers) == [None] * len(model.layers)
    loss.forward(a, y)
    grad, peak = loss.backward(), 0
    model.train()
    for segment in reversed(segments):
        a = checkpoints[-1]
        for layer in segment:
            a = layer.forward(a)
        peak = max(peak, _held(checkpoints + _kept(model.layers)))
        for layer in reversed(segment):
            grad = layer.backward(grad)
        for layer in segment:
            _forget(layer)
        checkpoints.pop()
    return peak


@pytest.mark.parametrize("n_segments", [1, 2, 3, 6])
def test_eq_next_checkpoint_peak_memory_and_identical_gradients(n_segments, rng):
    """eq-next-checkpoint: peak = N n (s + 2L/s - 1) for L equal layers; the gradients do not change."""
    L, n, N = 6, 4, 5
    model, loss = bk.MLP([n] * (L + 1), "tanh", output_activation="tanh", rng=rng), bk.MSE()
    X, y = rng.normal(size=(N, n)), rng.normal(size=(N, n))
    plain = _grads(model, loss, X, y)
    peak = _checkpointed_backward(model, loss, X, y, n_segments)
    assert peak == N * n * (n_segments + 2 * L // n_segments - 1)
    assert np.array_equal(_flat_grad(model.parameters()), plain)
    assert peak <= 2 * L * N * n


# --- gradient accumulation --------------------------------------------------------------------

@given(st.lists(st.integers(1, 7), min_size=1, max_size=5), seeds)
def test_eq_next_accumulate_weighted_minibatches_give_the_big_batch_gradient(batch_sizes, seed):
    """eq-next-accumulate: sum_j |B_j|/|B| grad L_{B_j} = grad L_B, for any minibatch sizes."""
    rng = np.random.default_rng(seed)
    N = sum(batch_sizes)
    X, y = rng.normal(size=(N, 3)), rng.normal(size=(N, 2))
    model, loss = bk.MLP([3, 4, 2], "tanh", rng=rng), bk.MSE()
    big = _grads(model, loss, X, y)
    model.zero_grad()
    for idx in np.split(np.arange(N), np.cumsum(batch_sizes)[:-1]):
        loss.forward(model.forward(X[idx]), y[idx])
        model.backward(loss.backward() * (len(idx) / N))
    assert np.max(np.abs(_flat_grad(model.parameters()) - big)) < 1e-12


@pytest.mark.parametrize("k", [1, 2, 4])
def test_eq_next_accumulate_equal_minibatches_with_bpkit_train(k, rng):
    """eq-next-accumulate, equal sizes: bpkit.train.accumulate_gradients (weights 1/k) is exact."""
    B = 6
    X, y = rng.normal(size=(k * B, 3)), rng.normal(size=(k * B, 2))
    model, loss = bk.MLP([3, 5, 2], "tanh", rng=rng), bk.MSE()
    big = _grads(model, loss, X, y)
    model.zero_grad()
    train.accumulate_gradients(model, loss, [(X[j * B:(j + 1) * B], y[j * B:(j + 1) * B]) for j in range(k)])
    assert np.max(np.abs(_flat_grad(model.parameters()) - big)) < 1e-12


# --- forward and reverse mode -----------------------------------------------------------------

class _Dual:
    """Minimal dual numbers (value, tangent) for arrays: +, * by a constant matrix, tanh."""

    def __init__(self, val, dot):
        self.val, self.dot = val, dot

    def __add__(self, const):
        return _Dual(self.val + const, self.dot)

    def __matmul__(self, W):
        return _Dual(self.val @ W, self.dot @ W)

    def tanh(self):
        t = np.tanh(self.val)
        return _Dual(t, (1 - t * t) * self.dot)


def _layer_jacobian_fd(layer, act, x):
    """Central-difference Jacobian (m x n) of x -> act(layer(x)) for one row x."""
    m, n = layer.n_out, layer.n_in
    J, piece = np.zeros((m, n)), bk.Sequential(layer, act)
    for i in range(m):
        xi = x.copy()
        J[i] = bk.numerical_gradient(lambda: float(piece.predict(xi)[0, i]), xi)[0]
    return J


@given(seeds)
def test_eq_next_jvp_forward_mode_gives_J_times_tangent(seed):
    """eq-next-jvp: pushing a tangent through the layer with dual numbers gives J x_dot."""
    rng = np.random.default_rng(seed)
    layer, act = bk.Dense(4, 3, rng=rng), bk.Activation("tanh")
    x, x_dot = rng.normal(size=(1, 4)), rng.normal(size=(1, 4))
    y_dot = ((_Dual(x, x_dot) @ layer.W.value) + layer.b.value).tanh().dot
    J = _layer_jacobian_fd(layer, act, x)
    assert np.allclose(y_dot[0], J @ x_dot[0], rtol=1e-7, atol=1e-9)
    z = x @ layer.W.value + layer.b.value
    assert np.allclose(y_dot, (x_dot @ layer.W.value) * tanh_prime(z), rtol=1e-13, atol=1e-15)


@given(seeds)
def test_eq_next_vjp_bpkit_backward_gives_J_transpose_times_cotangent(seed):
    """eq-next-vjp: Dense.backward(Activation.backward(y_bar)) = J^T y_bar."""
    rng = np.random.default_rng(seed)
    layer, act = bk.Dense(4, 3, rng=rng), bk.Activation("sigmoid")
    x, y_bar = rng.normal(size=(1, 4)), rng.normal(size=(1, 3))
    act.forward(layer.forward(x))
    x_bar = layer.backward(act.backward(y_bar))
    J = _layer_jacobian_fd(layer, act, x)
    assert np.allclose(x_bar[0], J.T @ y_bar[0], rtol=1e-7, atol=1e-9)
    z = x @ layer.W.value + layer.b.value
    assert np.allclose(x_bar[0], (sigmoid_prime(z).T * layer.W.value.T).T @ y_bar[0], rtol=1e-12)


def test_eq_next_jvp_and_vjp_build_the_same_jacobian_with_n_and_m_passes(rng):
    """eq-next-jvp / eq-next-vjp: n JVPs (columns) and m VJPs (rows) assemble the same Jacobian."""
    n, m = 5, 2
    layer, act = bk.Dense(n, m, rng=rng), bk.Activation("tanh")
    x = rng.normal(size=(1, n))
    columns = [((_Dual(x, e[None]) @ layer.W.value) + layer.b.value).tanh().dot[0] for e in np.eye(n)]
    act.forward(layer.forward(x))
    rows = [layer.backward(act.backward(e[None]))[0] for e in np.eye(m)]
    assert len(columns) == n and len(rows) == m
    assert np.allclose(np.column_stack(columns), np.vstack(rows), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("f", [sp.exp, sp.sin, sp.tanh, sp.log, lambda u: u**3 - 2 * u, lambda u: 1 / (1 + sp.exp(-u))])
def test_eq_next_dual_taylor_series_stops_after_the_linear_term(f):
    """eq-next-dual: f(a + b eps) = f(a) + f'(a) b eps when eps^2 = 0 (series to first order in eps)."""
    a, b, eps, u = sp.symbols("a b epsilon u", positive=True)
    truncated = sp.series(f(a + b * eps), eps, 0, 2).removeO()
    expected = f(a) + sp.diff(f(u), u).subs(u, a) * b * eps
    assert sp.simplify(truncated - expected) == 0


def test_eq_next_dual_product_rule():
    """eq-next-dual for a product: (a + b eps)(c + d eps) = ac + (ad + bc) eps."""
    a, b, c, d, eps = sp.symbols("a b c d epsilon")
    product = sp.expand((a + b * eps) * (c + d * eps)).subs(eps**2, 0)
    assert sp.expand(product - (a * c + (a * d + b * c) * eps)) == 0


# --- Hessian-vector products ------------------------------------------------------------------

def test_eq_next_quadratic_gradient_and_hessian_symbolic():
    """eq-next-quadratic: for symmetric A, grad = A theta - c and Hessian = A."""
    n = 3
    entries = sp.symbols("a0:6")
    A = sp.Matrix([[entries[0], entries[1], entries[2]],
                   [entries[1], entries[3], entries[4]],
                   [entries[2], entries[4], entries[5]]])
    theta, c = sp.Matrix(sp.symbols("t0:3")), sp.Matrix(sp.symbols("c0:3"))
    L = (sp.Rational(1, 2) * theta.T * A * theta - c.T * theta)[0, 0]
    grad = sp.Matrix([sp.diff(L, t) for t in theta])
    assert sp.simplify(grad - (A * theta - c)) == sp.zeros(n, 1)
    assert sp.simplify(sp.hessian(L, list(theta)) - A) == sp.zeros(n, n)


def _mlp_setup(rng):
    model = bk.MLP([2, 5, 1], "tanh", rng=rng)
    X, y = rng.normal(size=(12, 2)), rng.normal(size=(12, 1))
    params = model.parameters()
    counts, shapes = [p.value.size for p in params], [p.value.shape for p in params]
    theta0 = np.concatenate([p.value.ravel() for p in params])

    def bpkit_grad(theta):
        for p, chunk in zip(params, np.split(theta, np.cumsum(counts)[:-1])):
            p.value[...] = chunk.reshape(p.value.shape)
        return _grads(model, bk.MSE(), X, y)

    def torch_loss(theta_t):
        W1, b1, W2, b2 = (t.reshape(s) for t, s in zip(torch.split(theta_t, counts), shapes))
        y_hat = torch.tanh(torch.tensor(X) @ W1 + b1) @ W2 + b2
        return 0.5 * ((y_hat - torch.tensor(y)) ** 2).sum() / len(X)

    return theta0, bpkit_grad, torch_loss


def _double_backward_hvp(loss_fn, theta0, v):
    theta_t = torch.tensor(theta0, requires_grad=True)
    (g,) = torch.autograd.grad(loss_fn(theta_t), theta_t, create_graph=True)
    (hv,) = torch.autograd.grad(g @ torch.tensor(v), theta_t)
    return hv.numpy()


@given(seeds)
@settings(max_examples=15)
def test_eq_next_hvp_fd_differences_of_bpkit_gradients(seed):
    """eq-next-hvp-fd: central differences of bpkit's gradient along v approximate H v (error O(eps^2))."""
    rng = np.random.default_rng(seed)
    theta0, bpkit_grad, torch_loss = _mlp_setup(rng)
    v = rng.normal(size=theta0.size)
    eps = 1e-5
    hv_fd = (bpkit_grad(theta0 + eps * v) - bpkit_grad(theta0 - eps * v)) / (2 * eps)
    assert bk.rel_error(hv_fd, _double_backward_hvp(torch_loss, theta0, v)) < 1e-7


def test_eq_next_hvp_ad_double_backward_equals_hessian_times_v(rng):
    """eq-next-hvp-ad: grad(grad L . v) equals H v with H the full Hessian (torch.autograd.functional)."""
    theta0, _, torch_loss = _mlp_setup(rng)
    v = rng.normal(size=theta0.size)
    H = torch.autograd.functional.hessian(torch_loss, torch.tensor(theta0)).numpy()
    assert np.allclose(H, H.T, atol=1e-12)
    assert bk.rel_error(_double_backward_hvp(torch_loss, theta0, v), H @ v) < 1e-12


def test_eq_next_hvp_ad_on_the_quadratic_is_A_v(rng):
    """eq-next-hvp-ad with eq-next-quadratic: double backward of 1/2 t^T A t - c^T t gives A v."""
    M = rng.normal(size=(6, 6))
    A, c, theta0, v = M + M.T, rng.normal(size=6), rng.normal(size=6), rng.normal(size=6)

    def quadratic(theta_t):
        return 0.5 * theta_t @ torch.tensor(A) @ theta_t - torch.tensor(c) @ theta_t

    assert bk.rel_error(_double_backward_hvp(quadratic, theta0, v), A @ v) < 1e-13


# --- data-parallel training -------------------------------------------------------------------

@given(st.lists(st.integers(1, 9), min_size=1, max_size=5), seeds)
def test_eq_next_allreduce_weighted_shard_gradients_equal_the_full_gradient(shard_sizes, seed):
    """eq-next-allreduce: sum_k N_k/N g_k is the full-batch gradient; the plain mean is, for equal shards."""
    rng = np.random.default_rng(seed)
    N = sum(shard_sizes)
    X, y = rng.normal(size=(N, 3)), rng.normal(size=(N, 2))
    model, loss = bk.MLP([3, 4, 2], "tanh", rng=rng), bk.MSE()
    full = _grads(model, loss, X, y)
    workers = [copy.deepcopy(model) for _ in shard_sizes]
    shards = np.split(np.arange(N), np.cumsum(shard_sizes)[:-1])
    g = [_grads(w, loss, X[s], y[s]) for w, s in zip(workers, shards)]
    weighted = sum(len(s) / N * g_k for s, g_k in zip(shards, g))
    assert np.max(np.abs(weighted - full)) < 1e-12
    if len(set(shard_sizes)) == 1:
        assert np.max(np.abs(np.mean(g, axis=0) - full)) < 1e-12


def test_eq_next_allreduce_plain_mean_is_wrong_for_unequal_shards(rng):
    """eq-next-allreduce: with unequal shards the unweighted mean differs from the full gradient."""
    X, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    model, loss = bk.MLP([3, 4, 2], "tanh", rng=rng), bk.MSE()
    full = _grads(model, loss, X, y)
    g = [_grads(model, loss, X[s], y[s]) for s in (slice(0, 18), slice(18, 20))]
    assert bk.rel_error(np.mean(g, axis=0), full) > 1e-2


def _ring_allreduce(vectors):
    K = len(vectors)
    chunks = [np.array_split(v.copy(), K) for v in vectors]
    sent = [0] * K
    for step in range(K - 1):
        messages = [(k, (k - step) % K) for k in range(K)]
        payloads = [chunks[k][c].copy() for k, c in messages]
        for (k, c), data in zip(messages, payloads):
            chunks[(k + 1) % K][c] += data
            sent[k] += data.size
    for step in range(K - 1):
        messages = [(k, (k + 1 - step) % K) for k in range(K)]
        payloads = [chunks[k][c].copy() for k, c in messages]
        for (k, c), data in zip(messages, payloads):
            chunks[(k + 1) % K][c] = data
            sent[k] += data.size
    return [np.concatenate(c) for c in chunks], sent


@pytest.mark.parametrize("K", [1, 2, 3, 4, 8])
def test_eq_next_ring_cost_every_worker_gets_the_sum_and_sends_2_K_minus_1_P_over_K(K, rng):
    """eq-next-ring-cost: a ring all-reduce sums exactly and each worker sends 2 (K-1) P / K numbers."""
    P = 24 * K
    vectors = [rng.normal(size=P) for _ in range(K)]
    results, sent = _ring_allreduce(vectors)
    total = np.sum(vectors, axis=0)
    assert all(np.allclose(r, total, rtol=1e-12, atol=1e-12) for r in results)
    assert sent == [2 * (K - 1) * P // K] * K
    assert all(s < 2 * P for s in sent)


# --- convolutions (batch normalisation and residual blocks: tests/test_beyond_equations.py) ------------

def _banded(w, T):
    W = np.zeros((T, T - len(w) + 1))
    for t in range(W.shape[1]):
        W[t:t + len(w), t] = w
    return W


@given(st.integers(1, 4), st.integers(0, 6), st.integers(1, 4), seeds)
def test_eq_next_conv_grad_sum_over_positions_matches_dense_and_torch(K, extra, N, seed):
    """eq-next-conv-grad: dL/dw_k = sum_n sum_t delta_nt x_{n,t+k}, = the tied Dense gradients summed."""
    rng = np.random.default_rng(seed)
    T = K + extra
    T_out = T - K + 1
    x, w, b, delta = rng.normal(size=(N, T)), rng.normal(size=K), float(rng.normal()), rng.normal(size=(N, T_out))
    conv = bk.Dense(T, T_out, rng=rng)
    conv.W.value[...], conv.b.value[...] = _banded(w, T), b
    z = conv.forward(x)
    conv.backward(delta)
    from_dense = np.array([np.trace(conv.W.grad, offset=-k) for k in range(K)])
    formula = np.array([np.sum(delta * x[:, k:k + T_out]) for k in range(K)])
    w_t, b_t = torch.tensor(w, requires_grad=True), torch.tensor([b], dtype=torch.float64, requires_grad=True)
    z_t = torch.nn.functional.conv1d(torch.tensor(x)[:, None, :], w_t[None, None, :], b_t)[:, 0, :]
    (z_t * torch.tensor(delta)).sum().backward()
    assert np.allclose(z, z_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert np.allclose(from_dense, formula, rtol=1e-12, atol=1e-12)
    assert np.allclose(formula, w_t.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert np.isclose(conv.b.grad.sum(), b_t.grad.item(), rtol=1e-12, atol=1e-12)

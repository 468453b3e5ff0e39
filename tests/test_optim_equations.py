"""Every labelled equation of chapter 6 (optimizers), checked against bpkit or numerically.

Each test computes the equation on its own, in plain numpy, and compares it with what
``bpkit.optim`` does (or, for the analysis equations, with what the iterates do).
"""

import itertools
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import bpkit as bk
from bpkit import optim
from bpkit.layers import Parameter

from strategies import float_arrays

unit_betas = st.floats(0.0, 0.99)
learning_rates = st.sampled_from([1e-3, 0.01, 0.1, 0.5])


def param(value, name="w"):
    return Parameter(np.array(value, dtype=np.float64), name)


def run(opt_factory, w0, grads):
    """Apply ``opt_factory([p]).step()`` once per gradient in ``grads``; return every iterate."""
    p = param(w0)
    opt = opt_factory([p])
    path = [p.value.copy()]
    for g in grads:
        p.grad[...] = g(p.value) if callable(g) else g
        opt.step()
        path.append(p.value.copy())
    return np.array(path), opt


def random_grads(rng, n, shape=(4,)):
    return [rng.normal(size=shape) * 10.0 ** rng.uniform(-2, 2) for _ in range(n)]


# --- minibatch SGD ---------------------------------------------------------------------------

@given(float_arrays((4,)), float_arrays((4,)), learning_rates)
def test_eq_optim_sgd(w0, g, lr):
    """eq-optim-sgd: w <- w - lr g."""
    path, _ = run(lambda ps: optim.SGD(ps, lr=lr), w0, [g])
    assert np.array_equal(path[1], w0 - lr * g)


def test_eq_optim_minibatch_gradient_is_unbiased(rng):
    """eq-optim-minibatch: the mean of dL_B/dw over every minibatch of size B is dL/dw."""
    N, B = 7, 3
    model = bk.MLP([2, 4, 1], "tanh", rng=rng)
    X, y = rng.normal(size=(N, 2)), (rng.uniform(size=(N, 1)) < 0.5).astype(float)
    loss = bk.BCEWithLogits()

    def grads(idx):
        model.zero_grad()
        loss.forward(model.forward(X[idx]), y[idx])
        model.backward(loss.backward())
        return np.concatenate([p.grad.ravel() for p in model.parameters()])

    full = grads(np.arange(N))
    subsets = list(itertools.combinations(range(N), B))
    mean_of_batches = np.mean([grads(np.array(s)) for s in subsets], axis=0)
    assert len(subsets) == math.comb(N, B)
    assert bk.rel_error(mean_of_batches, full) < 1e-12
    assert bk.rel_error(grads(np.array(subsets[0])), full) > 1e-3  # one batch alone is not the full gradient


# --- the quadratic model: SGD and heavy ball ------------------------------------------------------

@given(st.floats(0.01, 1.9), st.integers(1, 40))
def test_eq_optim_quadratic_sgd(eta_lambda_max, k):
    """eq-optim-quadratic-sgd: on f = sum(lambda_i w_i^2)/2 each coordinate is multiplied by 1 - lr lambda_i."""
    lam = np.array([1.0, 4.0, 25.0])
    lr = eta_lambda_max / lam.max()
    w0 = np.array([-9.0, 3.0, 1.5])
    path, _ = run(lambda ps: optim.SGD(ps, lr=lr), w0, [lambda w: lam * w] * k)
    assert np.allclose(path[k], (1 - lr * lam) ** k * w0, rtol=1e-10, atol=1e-300)


def test_eq_optim_quadratic_sgd_best_rate_gives_the_step_count():
    """At lr = 2/(lambda_min + lambda_max) the error falls by (kappa - 1)/(kappa + 1) per step."""
    for kappa in (10.0, 25.0, 100.0):
        lam = np.array([1.0, kappa])
        path, _ = run(lambda ps: optim.SGD(ps, lr=2 / (1 + kappa)), [1.0, 1.0], [lambda w: lam * w] * 3000)
        rate = (kappa - 1) / (kappa + 1)
        assert np.allclose(np.abs(path[:, 0]), rate ** np.arange(3001), rtol=1e-9, atol=0)
        steps = int(np.argmax(np.abs(path).max(axis=1) < 1e-3))
        assert steps == math.ceil(math.log(1e3) / -math.log(rate))


@given(st.floats(0.0, 0.99), st.floats(0.01, 3.0), st.floats(0.1, 100.0))
def test_eq_optim_momentum(beta, lr, scale):
    """eq-optim-momentum: v <- beta v + g, w <- w - lr v (v starts at 0), two steps by hand."""
    g1, g2 = scale * np.array([0.5, -1.0, 2.0]), scale * np.array([-1.5, 0.25, 1.0])
    w0 = np.array([1.0, -2.0, 0.5])
    v1 = g1
    v2 = beta * v1 + g2
    path, opt = run(lambda ps: optim.Momentum(ps, lr=lr, beta=beta), w0, [g1, g2])
    assert np.allclose(path[2], w0 - lr * v1 - lr * v2, rtol=1e-12, atol=1e-12 * scale)
    assert np.allclose(opt.v[0], v2, rtol=1e-14, atol=0)


@given(unit_betas, st.floats(0.001, 3.0))
def test_eq_optim_momentum_quadratic_recurrence(beta, eta_lambda):
    """eq-optim-momentum-quadratic: heavy-ball iterates obey w_{k+1} = (1 + beta - lr lambda) w_k - beta w_{k-1}."""
    lam = 4.0
    lr = eta_lambda / lam
    path, _ = run(lambda ps: optim.Momentum(ps, lr=lr, beta=beta), [1.0], [lambda w: lam * w] * 30)
    w = path[:, 0]
    predicted = (1 + beta - lr * lam) * w[1:-1] - beta * w[:-2]
    assert np.allclose(w[2:], predicted, rtol=1e-9, atol=1e-12 * np.abs(w).max())


@pytest.mark.parametrize("beta, eta_lambda", [(0.9, 0.05), (0.9, 1.0), (0.9, 3.0), (0.5, 0.5), (0.8, 2.0)])
def test_eq_optim_momentum_quadratic_rate_is_sqrt_beta_for_complex_roots(beta, eta_lambda):
    """When (1 + beta - lr lambda)^2 < 4 beta the roots are complex, |r| = sqrt(beta)."""
    assert (1 + beta - eta_lambda) ** 2 < 4 * beta
    r = np.roots([1.0, -(1 + beta - eta_lambda), beta])
    assert np.allclose(np.abs(r), math.sqrt(beta), rtol=1e-12)
    # and the iterates: the envelope of |w_k| shrinks by sqrt(beta) per step
    path, _ = run(lambda ps: optim.Momentum(ps, lr=eta_lambda, beta=beta), [1.0], [lambda w: w] * 400)
    w = path[:, 0]
    energy = w[1:] ** 2 - (1 + beta - eta_lambda) * w[1:] * w[:-1] + beta * w[:-1] ** 2
    # this quadratic form of (w_k, w_{k-1}) is multiplied by beta at every step
    assert np.allclose(energy[1:], beta * energy[:-1], rtol=1e-6, atol=1e-300)


# --- Nesterov -------------------------------------------------------------------------------------

@given(unit_betas, learning_rates)
def test_eq_optim_nesterov(beta, lr):
    """eq-optim-nesterov: v <- beta v + g, w <- w - lr (g + beta v)."""
    grads = random_grads(np.random.default_rng(1), 5)
    w, v = np.array([1.0, -2.0, 0.5, 3.0]), np.zeros(4)
    for g in grads:
        v = beta * v + g
        w = w - lr * (g + beta * v)
    path, _ = run(lambda ps: optim.Momentum(ps, lr=lr, beta=beta, nesterov=True), [1.0, -2.0, 0.5, 3.0], grads)
    assert np.allclose(path[-1], w, rtol=1e-12, atol=1e-12)


@given(st.floats(0.0, 0.9), st.sampled_from([1e-4, 3e-4, 5e-4]))
def test_eq_optim_nesterov_is_the_lookahead_form_seen_from_the_lookahead_point(beta, lr):
    """Classical Nesterov, v <- beta v + grad(w - lr beta v), w <- w - lr v, tracked at u = w - lr beta v."""
    def rosenbrock_grad(w):
        x, y = w
        return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])

    w, v = np.array([-1.2, 1.0]), np.zeros(2)
    lookahead = [w.copy()]
    for _ in range(200):
        v = beta * v + rosenbrock_grad(w - lr * beta * v)
        w = w - lr * v
        lookahead.append(w - lr * beta * v)
    path, _ = run(lambda ps: optim.Momentum(ps, lr=lr, beta=beta, nesterov=True), [-1.2, 1.0], [rosenbrock_grad] * 200)
    assert np.allclose(path, np.array(lookahead), rtol=1e-9, atol=1e-12)


# --- RMSprop and Adam -------------------------------------------------------------------------------

@given(st.floats(0.0, 0.999), learning_rates)
def test_eq_optim_rmsprop(rho, lr):
    """eq-optim-rmsprop: s <- rho s + (1 - rho) g^2, w <- w - lr g / (sqrt(s) + eps)."""
    eps = 1e-8
    grads = random_grads(np.random.default_rng(2), 5)
    w, s = np.array([1.0, -2.0, 0.5, 3.0]), np.zeros(4)
    for g in grads:
        s = rho * s + (1 - rho) * g * g
        w = w - lr * g / (np.sqrt(s) + eps)
    path, opt = run(lambda ps: optim.RMSprop(ps, lr=lr, rho=rho, eps=eps), [1.0, -2.0, 0.5, 3.0], grads)
    assert np.allclose(path[-1], w, rtol=1e-12, atol=1e-12)
    assert np.allclose(opt.s[0], s, rtol=1e-12, atol=0)


def test_eq_optim_rmsprop_first_step_is_lr_over_sqrt_one_minus_rho():
    """s starts at 0, so the first RMSprop step is lr / sqrt(1 - rho) per entry (10 lr for rho = 0.99)."""
    g = np.array([3.0, -0.2, 50.0])
    path, _ = run(lambda ps: optim.RMSprop(ps, lr=0.01, rho=0.99), np.zeros(3), [g])
    assert np.allclose(path[1], -0.01 / math.sqrt(0.01) * np.sign(g), rtol=1e-5)


def adam_by_hand(w, grads, lr, b1, b2, eps, weight_decay=0.0):
    m = v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w = (1 - lr * weight_decay) * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w, m, v


@given(st.floats(0.0, 0.99), st.floats(0.9, 0.9999), learning_rates)
def test_eq_optim_adam_moments(b1, b2, lr):
    """eq-optim-adam-moments: m and v are exponential moving averages of g and g^2, starting at 0."""
    grads = random_grads(np.random.default_rng(3), 6)
    w, m, v = adam_by_hand(np.array([1.0, -2.0, 0.5, 3.0]), grads, lr, b1, b2, 1e-8)
    _, opt = run(lambda ps: optim.Adam(ps, lr=lr, betas=(b1, b2)), [1.0, -2.0, 0.5, 3.0], grads)
    assert np.allclose(opt.m[0], m, rtol=1e-12, atol=0) and np.allclose(opt.v[0], v, rtol=1e-12, atol=0)
    assert opt.t == 6


@given(st.floats(0.0, 0.99), st.floats(0.9, 0.9999), learning_rates, st.sampled_from([1e-8, 1e-3]))
def test_eq_optim_adam_update(b1, b2, lr, eps):
    """eq-optim-adam-update: w <- w - lr m_hat / (sqrt(v_hat) + eps) with the bias-corrected moments."""
    grads = random_grads(np.random.default_rng(4), 6)
    w, _, _ = adam_by_hand(np.array([1.0, -2.0, 0.5, 3.0]), grads, lr, b1, b2, eps)
    path, _ = run(lambda ps: optim.Adam(ps, lr=lr, betas=(b1, b2), eps=eps), [1.0, -2.0, 0.5, 3.0], grads)
    assert np.allclose(path[-1], w, rtol=1e-11, atol=1e-12)


def test_eq_optim_adam_bias_symbolic():
    """eq-optim-adam-bias: (1 - beta) sum_{k=1}^t beta^(t-k) = 1 - beta^t."""
    beta, k, t = sp.symbols("beta k t", positive=True)
    total = sp.summation((1 - beta) * beta ** (t - k), (k, 1, t))
    assert sp.simplify(total - (1 - beta**t)) == 0


@pytest.mark.parametrize("b1, b2", [(0.9, 0.999), (0.5, 0.99)])
def test_eq_optim_adam_bias_constant_gradient(b1, b2):
    """With a constant gradient g, bpkit's m_t = (1 - b1^t) g and v_t = (1 - b2^t) g^2, so every step is lr."""
    g = np.array([2.0, -0.01, 300.0])
    p = param(np.zeros(3))
    opt = optim.Adam([p], lr=0.01, betas=(b1, b2))
    for t in range(1, 200):
        before = p.value.copy()
        p.grad[...] = g
        opt.step()
        assert np.allclose(opt.m[0], (1 - b1**t) * g, rtol=1e-12)
        assert np.allclose(opt.v[0], (1 - b2**t) * g * g, rtol=1e-12)
        assert np.allclose(before - p.value, 0.01 * np.sign(g), rtol=1e-5)


def test_eq_optim_adam_bias_random_gradients():
    """E[m_t] = (1 - b1^t) E[g] for independent gradients of mean mu: averaged over many coordinates."""
    rng = np.random.default_rng(5)
    mu, b1, n = 0.7, 0.9, 200_000
    p = param(np.zeros(n))
    opt = optim.Adam([p], lr=1e-3, betas=(b1, 0.999))
    for t in range(1, 8):
        p.grad[...] = mu + rng.normal(size=n)
        opt.step()
        standard_error = (1 - b1) * math.sqrt(sum(b1 ** (2 * j) for j in range(t))) / math.sqrt(n)
        assert abs(opt.m[0].mean() - (1 - b1**t) * mu) < 5 * standard_error


# --- weight decay ------------------------------------------------------------------------------------

def test_eq_optim_adam_l2():
    """eq-optim-adam-l2: L2 inside Adam = Adam fed g + lambda w; a weight with no other gradient
    then moves by about lr per step whatever lambda is, because Adam normalises lambda w away."""
    lr, lam = 0.01, 0.1
    grads = random_grads(np.random.default_rng(6), 5)
    w = np.array([1.0, -2.0, 0.5, 3.0])
    m = v = np.zeros(4)
    for t, g in enumerate(grads, start=1):
        g = g + lam * w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    p = param([1.0, -2.0, 0.5, 3.0])
    opt = optim.Adam([p], lr=lr)
    for g in grads:
        p.grad[...] = g + lam * p.value
        opt.step()
    assert np.allclose(p.value, w, rtol=1e-12, atol=1e-12)

    for lam in (1e-3, 1.0):  # zero data gradient: about lr per step for any lambda
        q = param([1.0])
        opt = optim.Adam([q], lr=lr)
        for _ in range(10):
            q.grad[...] = lam * q.value
            opt.step()
        assert np.isclose(1.0 - q.value[0], 10 * lr, rtol=0.05)


@given(st.floats(0.0, 1.0), learning_rates)
def test_eq_optim_adamw(weight_decay, lr):
    """eq-optim-adamw: w <- (1 - lr lambda) w - lr m_hat / (sqrt(v_hat) + eps), moments from g alone."""
    grads = random_grads(np.random.default_rng(7), 6)
    w, _, _ = adam_by_hand(np.array([1.0, -2.0, 0.5, 3.0]), grads, lr, 0.9, 0.999, 1e-8, weight_decay)
    path, _ = run(lambda ps: optim.AdamW(ps, lr=lr, weight_decay=weight_decay), [1.0, -2.0, 0.5, 3.0], grads)
    assert np.allclose(path[-1], w, rtol=1e-11, atol=1e-12)


# --- noise floor, schedules, clipping ---------------------------------------------------------------

@pytest.mark.parametrize("lr", [0.05, 0.2, 0.5, 1.0])
def test_eq_optim_noise_floor(lr):
    """eq-optim-noise-floor: SGD on w^2/2 with gradient w + sigma xi settles at E[w^2] = lr sigma^2 / (2 - lr)."""
    rng = np.random.default_rng(8)
    sigma, n = 0.5, 40_000
    p = param(np.ones(n))
    opt = optim.SGD([p], lr=lr)
    for _ in range(int(15 / lr)):  # (1 - lr)^(2k) < e^-30: the start is forgotten
        p.grad[...] = p.value + sigma * rng.normal(size=n)
        opt.step()
    predicted = lr * sigma**2 / (2 - lr)
    assert abs(np.mean(p.value**2) / predicted - 1) < 0.04  # over 5 standard errors (sqrt(2 / n) = 0.7 %)


@given(st.integers(1, 10), st.floats(0.05, 2.0), st.floats(1e-3, 1.0))
def test_eq_optim_step_lr(step_size, gamma, lr0):
    """eq-optim-step-lr: lr_e = lr_0 gamma^floor(e / s), read from the optimizer after e schedule steps."""
    opt = optim.SGD([param([0.0])], lr=lr0)
    sched = optim.StepLR(opt, step_size=step_size, gamma=gamma)
    for e in range(30):
        assert math.isclose(opt.lr, lr0 * gamma ** (e // step_size), rel_tol=1e-12)
        sched.step()


@given(st.integers(1, 50), st.floats(1e-3, 1.0), st.floats(0.0, 1.0))
def test_eq_optim_cosine_lr(t_max, lr0, frac):
    """eq-optim-cosine-lr: lr_e = lr_min + (lr_0 - lr_min)(1 + cos(pi e / T)) / 2."""
    lr_min = frac * lr0
    opt = optim.SGD([param([0.0])], lr=lr0)
    sched = optim.CosineLR(opt, t_max=t_max, lr_min=lr_min)
    for e in range(t_max + 1):
        expected = lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(math.pi * e / t_max))
        assert math.isclose(opt.lr, expected, rel_tol=1e-12, abs_tol=1e-15)
        sched.step()


@given(st.floats(0.01, 100.0), st.integers(0, 2**32 - 1))
def test_eq_optim_clip(max_norm, seed):
    """eq-optim-clip: every gradient array times min(1, c / (||g|| + 1e-6)), ||g|| over all arrays together."""
    rng = np.random.default_rng(seed)
    params = [param(np.zeros(s), f"p{i}") for i, s in enumerate([(3, 4), (4,), (2,)])]
    scale = 10.0 ** rng.uniform(-3, 3)
    for p in params:
        p.grad[...] = scale * rng.normal(size=p.grad.shape)
    grads = [p.grad.copy() for p in params]
    total = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    factor = min(1.0, max_norm / (total + 1e-6))
    returned = optim.clip_grad_norm(params, max_norm)
    assert math.isclose(returned, total, rel_tol=1e-12)
    for p, g in zip(params, grads):
        assert np.allclose(p.grad, factor * g, rtol=1e-12, atol=0)
    clipped = math.sqrt(sum(float(np.sum(p.grad**2)) for p in params))
    assert clipped <= max_norm * (1 + 1e-12) or math.isclose(clipped, total, rel_tol=1e-12)

"""Optimizers, schedules and gradient clipping: hand-computed steps, properties, torch agreement, errors."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import bpkit as bk
from bpkit import optim
from bpkit.layers import Parameter

from strategies import float_arrays

ALL = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.1),
    "Momentum": lambda ps: optim.Momentum(ps, lr=0.1, beta=0.9),
    "Nesterov": lambda ps: optim.Momentum(ps, lr=0.1, beta=0.9, nesterov=True),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01),
    "Adam": lambda ps: optim.Adam(ps, lr=0.01),
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
}


def param(value, grad=None, name="w"):
    p = Parameter(np.array(value, dtype=np.float64), name)
    if grad is not None:
        p.grad[...] = grad
    return p


W0, G1, G2 = np.array([1.0, -2.0, 0.5]), np.array([0.5, -0.25, 2.0]), np.array([-1.0, 0.75, 0.1])


def two_steps(opt_factory):
    p = param(W0)
    opt = opt_factory([p])
    for g in (G1, G2):
        p.grad[...] = g
        opt.step()
    return p.value


# --- one rule at a time, computed by hand -------------------------------------------------

def test_sgd_by_hand():
    assert np.allclose(two_steps(lambda ps: optim.SGD(ps, lr=0.1)), W0 - 0.1 * G1 - 0.1 * G2, rtol=0, atol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_by_hand(nesterov):
    lr, beta = 0.1, 0.9
    v1 = G1
    v2 = beta * v1 + G2
    if nesterov:
        expected = W0 - lr * (G1 + beta * v1) - lr * (G2 + beta * v2)
    else:
        expected = W0 - lr * v1 - lr * v2
    got = two_steps(lambda ps: optim.Momentum(ps, lr=lr, beta=beta, nesterov=nesterov))
    assert np.allclose(got, expected, rtol=0, atol=1e-14)


def test_rmsprop_by_hand():
    lr, rho, eps = 0.01, 0.9, 1e-8
    s1 = (1 - rho) * G1**2
    w1 = W0 - lr * G1 / (np.sqrt(s1) + eps)
    s2 = rho * s1 + (1 - rho) * G2**2
    expected = w1 - lr * G2 / (np.sqrt(s2) + eps)
    assert np.allclose(two_steps(lambda ps: optim.RMSprop(ps, lr=lr, rho=rho, eps=eps)), expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("weight_decay", [None, 0.1])
def test_adam_and_adamw_by_hand(weight_decay):
    lr, b1, b2, eps = 0.01, 0.8, 0.9, 1e-8
    m = v = np.zeros(3)
    w = W0.copy()
    for t, g in enumerate((G1, G2), start=1):
        if weight_decay is not None:
            w = w * (1 - lr * weight_decay)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    if weight_decay is None:
        got = two_steps(lambda ps: optim.Adam(ps, lr=lr, betas=(b1, b2), eps=eps))
    else:
        got = two_steps(lambda ps: optim.AdamW(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay))
    assert np.allclose(got, w, rtol=0, atol=1e-14)


# --- properties ------------------------------------------------------------------------------

@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_with_beta_zero_is_sgd(nesterov, rng):
    p_sgd, p_mom = param(W0), param(W0)
    sgd, mom = optim.SGD([p_sgd], lr=0.05), optim.Momentum([p_mom], lr=0.05, beta=0.0, nesterov=nesterov)
    for _ in range(10):
        g = rng.normal(size=3)
        p_sgd.grad[...] = g
        p_mom.grad[...] = g
        sgd.step()
        mom.step()
    assert np.array_equal(p_sgd.value, p_mom.value)


@given(float_arrays((5,), lo=-100, hi=100), st.sampled_from([1e-3, 0.1, 1.0]))
def test_adam_first_step_moves_each_weight_by_lr(g, lr):
    g = np.where(np.abs(g) < 1e-3, 1e-3, g)
    p = param(np.zeros(5), g)
    optim.Adam([p], lr=lr).step()
    # m_hat / sqrt(v_hat) = g / |g| at t = 1, so the step is -lr * sign(g) up to eps/|g|
    assert np.allclose(p.value, -lr * np.sign(g), rtol=1e-4, atol=0)


def test_adamw_decay_is_decoupled_from_the_gradient(rng):
    lr, wd = 0.01, 0.5
    p_adam, p_adamw = param(W0), param(W0)
    adam, adamw = optim.Adam([p_adam], lr=lr), optim.AdamW([p_adamw], lr=lr, weight_decay=wd)
    w_expected = W0.copy()
    for _ in range(5):
        g = 1000 * rng.normal(size=3)  # a large gradient must not change the decay
        before = p_adam.value.copy()
        p_adam.grad[...] = g
        p_adamw.grad[...] = g
        adam.step()
        adamw.step()
        w_expected = (1 - lr * wd) * w_expected + (p_adam.value - before)
    assert np.allclose(p_adamw.value, w_expected, rtol=0, atol=1e-13)
    assert not np.allclose(p_adamw.value, p_adam.value)


def test_adamw_with_zero_gradient_only_shrinks_the_weights():
    p_adam, p_adamw = param(W0, np.zeros(3)), param(W0, np.zeros(3))
    optim.Adam([p_adam], lr=0.1).step()
    optim.AdamW([p_adamw], lr=0.1, weight_decay=0.2).step()
    assert np.array_equal(p_adam.value, W0)
    assert np.allclose(p_adamw.value, W0 * (1 - 0.1 * 0.2), rtol=1e-15)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_parameter_of_an_mlp_moves_after_one_step(name, rng):
    model = bk.MLP([4, 6, 5, 3], "tanh", rng=rng)
    for layer in model.dense_layers:  # nonzero biases so that weight decay is visible too
        layer.b.value[...] = rng.normal(size=layer.b.value.shape)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    loss = bk.SoftmaxCrossEntropy()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    before = [p.value.copy() for p in model.parameters()]
    opt = ALL[name](model.parameters())
    opt.step()
    assert len(opt.params) == 6
    for p, old in zip(model.parameters(), before):
        assert np.all(p.value != old), f"{name} left entries of {p.name} unchanged"


@pytest.mark.parametrize("name", sorted(ALL))
def test_float32_parameters_and_state_stay_float32(name, rng):
    model = bk.MLP([3, 4, 2], "relu", rng=rng, dtype=np.float32)
    for p in model.parameters():
        p.grad[...] = rng.normal(size=p.grad.shape)
    opt = ALL[name](model.parameters())
    opt.step()
    assert all(p.value.dtype == np.float32 for p in model.parameters())
    state = [a for key in ("v", "s", "m") for a in getattr(opt, key, [])]
    assert all(a.dtype == np.float32 for a in state)


def test_zero_grad_resets_every_gradient(rng):
    model = bk.MLP([3, 4, 2], "relu", rng=rng)
    for p in model.parameters():
        p.grad[...] = 1.0
    optim.SGD(model.parameters(), lr=0.1).zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


# --- convergence on an ill-conditioned bowl f(w) = w^T A w / 2, condition number 100 ----------

_C, _S = math.cos(0.5), math.sin(0.5)
_Q = np.array([[_C, -_S], [_S, _C]])
BOWL = _Q @ np.diag([1.0, 100.0]) @ _Q.T

BOWL_RULES = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.01),
    "Momentum": lambda ps: optim.Momentum(ps, lr=0.01, beta=0.9),
    "Nesterov": lambda ps: optim.Momentum(ps, lr=0.01, beta=0.9, nesterov=True),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01),
    "Adam": lambda ps: optim.Adam(ps, lr=0.05),
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.05),
}


def distance_after(make, steps):
    p = param([1.0, 1.0])
    opt = make([p])
    for _ in range(steps):
        p.grad[...] = BOWL @ p.value
        opt.step()
    return float(np.abs(p.value).max())


@pytest.mark.parametrize("name", sorted(BOWL_RULES))
def test_every_rule_converges_on_an_ill_conditioned_bowl(name):
    assert distance_after(BOWL_RULES[name], 1000) < 1e-2


def test_momentum_beats_sgd_on_the_ill_conditioned_bowl():
    sgd = distance_after(BOWL_RULES["SGD"], 300)
    for name in ("Momentum", "Nesterov"):
        assert distance_after(BOWL_RULES[name], 300) < 1e-5 < 1e-2 < sgd


# --- schedules and clipping against PyTorch ----------------------------------------------------

def torch_lrs(make_scheduler, lr, epochs):
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr)
    sched = make_scheduler(torch.optim.lr_scheduler, opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def bpkit_lrs(make_schedule, lr, epochs):
    opt = optim.SGD([param([0.0, 0.0])], lr=lr)
    sched = make_schedule(opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.lr)
        sched.step()
    return lrs


@pytest.mark.parametrize("step_size, gamma", [(1, 0.9), (3, 0.5), (10, 0.1)])
def test_step_lr_matches_torch(step_size, gamma):
    ours = bpkit_lrs(lambda o: optim.StepLR(o, step_size, gamma), 0.2, 30)
    theirs = torch_lrs(lambda s, o: s.StepLR(o, step_size, gamma), 0.2, 30)
    assert np.allclose(ours, theirs, rtol=1e-12, atol=0)
    assert ours[step_size] == pytest.approx(0.2 * gamma)


@pytest.mark.parametrize("t_max, lr_min", [(10, 0.0), (7, 0.01), (25, 0.05)])
def test_cosine_lr_matches_torch(t_max, lr_min):
    ours = bpkit_lrs(lambda o: optim.CosineLR(o, t_max, lr_min), 0.2, 30)
    theirs = torch_lrs(lambda s, o: s.CosineAnnealingLR(o, T_max=t_max, eta_min=lr_min), 0.2, 30)
    assert np.allclose(ours, theirs, rtol=1e-10, atol=1e-14)
    assert ours[t_max] == pytest.approx(lr_min, abs=1e-15)


@pytest.mark.parametrize("max_norm", [0.1, 1.0, 100.0])
def test_clip_grad_norm_matches_torch(max_norm, rng):
    grads = [rng.normal(size=s) for s in [(4, 3), (3,), (3, 2), (2,)]]
    params = [param(np.zeros(g.shape), g, f"p{i}") for i, g in enumerate(grads)]
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.tensor(g)
    norm = optim.clip_grad_norm(params, max_norm)
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    assert norm == pytest.approx(float(torch_norm), rel=1e-14)
    assert norm == pytest.approx(math.sqrt(sum(float(np.sum(g * g)) for g in grads)), rel=1e-14)
    for p, t in zip(params, tensors):
        assert np.max(np.abs(p.grad - t.grad.numpy())) < 1e-15
    clipped = math.sqrt(sum(float(np.sum(p.grad**2)) for p in params))
    assert clipped == pytest.approx(min(norm, max_norm), rel=1e-5)
    if norm <= max_norm:
        assert all(np.array_equal(p.grad, g) for p, g in zip(params, grads))


def test_clip_grad_norm_keeps_the_direction(rng):
    g = rng.normal(size=(5, 4)) * 10
    p = param(np.zeros(g.shape), g)
    optim.clip_grad_norm([p], 1.0)
    assert np.allclose(p.grad / np.linalg.norm(p.grad), g / np.linalg.norm(g), rtol=1e-14)


# --- clear errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_learning_rate_names_the_optimizer_and_the_value(name, lr):
    cls = type(ALL[name]([param(W0)]))
    with pytest.raises(ValueError, match=rf"{cls.__name__} got lr={lr!r}.*positive finite"):
        cls([param(W0)], lr=lr)


@pytest.mark.parametrize("name", sorted(ALL))
def test_empty_parameter_list(name):
    cls = type(ALL[name]([param(W0)]))
    with pytest.raises(ValueError, match=f"{cls.__name__} got an empty parameter list"):
        cls([], lr=0.1)


def test_a_single_parameter_instead_of_a_list():
    with pytest.raises(TypeError, match=r"SGD got a single Parameter\('w'.*pass a list"):
        optim.SGD(param(W0), lr=0.1)


def test_grad_with_the_wrong_shape_at_construction_and_at_step():
    p = param(W0)
    p.grad = np.zeros(2)
    with pytest.raises(ValueError, match=r"Adam: parameter w has grad of shape \(2,\) but value of shape \(3,\)"):
        optim.Adam([p], lr=0.1)
    q, r = param(W0, name="W1"), param(W0, name="b1")
    opt = optim.Momentum([r, q], lr=0.1)
    r.grad, q.grad = np.ones(3), np.zeros((3, 1))
    with pytest.raises(ValueError, match=r"Momentum: parameter W1 has grad of shape \(3, 1\)"):
        opt.step()
    # the shapes are checked before any update: the parameter listed first, with a good grad, did not move
    np.testing.assert_array_equal(r.value, W0)
    assert opt.t == 0


@pytest.mark.parametrize("beta", [1.0, -0.1, 1.5, float("nan")])
def test_beta_outside_the_unit_interval(beta):
    with pytest.raises(ValueError, match=rf"Momentum got beta={beta!r}: expected a number in \[0, 1\)"):
        optim.Momentum([param(W0)], lr=0.1, beta=beta)
    with pytest.raises(ValueError, match=rf"RMSprop got rho={beta!r}"):
        optim.RMSprop([param(W0)], lr=0.1, rho=beta)
    with pytest.raises(ValueError, match=rf"Adam got beta1={beta!r}"):
        optim.Adam([param(W0)], lr=0.1, betas=(beta, 0.999))
    with pytest.raises(ValueError, match=rf"AdamW got beta2={beta!r}"):
        optim.AdamW([param(W0)], lr=0.1, betas=(0.9, beta))


def test_other_bad_hyperparameters():
    with pytest.raises(ValueError, match="Adam got eps=0"):
        optim.Adam([param(W0)], lr=0.1, eps=0)
    with pytest.raises(ValueError, match=r"AdamW got weight_decay=-0.1: expected a finite number >= 0"):
        optim.AdamW([param(W0)], lr=0.1, weight_decay=-0.1)
    opt = optim.SGD([param(W0)], lr=0.1)
    with pytest.raises(ValueError, match="StepLR got step_size=0"):
        optim.StepLR(opt, 0)
    with pytest.raises(ValueError, match="StepLR got gamma=0"):
        optim.StepLR(opt, 2, gamma=0)
    with pytest.raises(ValueError, match="CosineLR got t_max=2.5"):
        optim.CosineLR(opt, 2.5)
    with pytest.raises(ValueError, match=r"CosineLR got lr_min=0.5: expected 0 <= lr_min <= the optimizer's lr \(0.1\)"):
        optim.CosineLR(opt, 10, lr_min=0.5)
    with pytest.raises(TypeError, match="StepLR needs a bpkit optimizer, got list"):
        optim.StepLR([opt], 2)


@pytest.mark.parametrize("max_norm", [0, -1.0, float("nan")])
def test_clip_grad_norm_needs_a_positive_max_norm(max_norm):
    with pytest.raises(ValueError, match=rf"clip_grad_norm got max_norm={max_norm!r}"):
        optim.clip_grad_norm([param(W0, G1)], max_norm)
    with pytest.raises(ValueError, match="clip_grad_norm got an empty parameter list"):
        optim.clip_grad_norm([], 1.0)


OPTIMIZERS = [lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Momentum(ps, lr=0.1),
              lambda ps: optim.Momentum(ps, lr=0.1, nesterov=True),
              lambda ps: optim.RMSprop(ps, lr=0.1), lambda ps: optim.Adam(ps, lr=0.1),
              lambda ps: optim.AdamW(ps, lr=0.1)]


def _trained_state(opt):
    return [a.copy() for a in getattr(opt, "m", []) + getattr(opt, "v", []) + getattr(opt, "s", [])]


@pytest.mark.parametrize("make", OPTIMIZERS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_gradient_is_refused_before_any_parameter_or_state_changes(make, bad):
    """All or nothing: W1 and b1 have good gradients, W2 a bad one; nothing moves, and the message names W2."""
    rng = np.random.default_rng(0)
    model = bk.MLP([3, 4, 2], "tanh", rng=rng)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    loss = bk.MSE()
    opt = make(model.parameters())
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    opt.step()  # one good step, so that the state is not all zeros
    loss.forward(model.forward(X), y)
    opt.zero_grad()
    model.backward(loss.backward())
    W2 = model.dense_layers[1].W
    W2.grad[1, 0] = bad
    before = [p.value.copy() for p in model.parameters()]
    state, t = _trained_state(opt), opt.t
    with pytest.raises(FloatingPointError, match=rf"parameter W2 has a non-finite gradient, {bad} at index \(1, 0\); "
                                                 r"no parameter was changed"):
        opt.step()
    assert all(np.array_equal(p.value, b) for p, b in zip(model.parameters(), before))
    assert all(np.array_equal(a, b) for a, b in zip(_trained_state(opt), state)) and opt.t == t


def test_a_gradient_of_another_dtype_is_refused():
    p = bk.Parameter(np.zeros(3), "w")
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match=r"SGD: parameter w has grad of dtype float32 but value of dtype float64"):
        opt.step()
    assert np.array_equal(p.value, np.zeros(3))


@pytest.mark.parametrize("params, message", [
    ("model", r"SGD got the model MLP\(.*\): pass a list of parameters, e\.g\. model\.parameters\(\)"),
    ("arrays", r"SGD got a ndarray in its parameter list: expected bpkit Parameters, e\.g\. model\.parameters\(\)"),
])
def test_an_optimizer_of_a_model_or_of_arrays_says_what_to_pass(params, message):
    model = bk.MLP([2, 3, 1], "relu", rng=np.random.default_rng(0))
    given = model if params == "model" else [p.value for p in model.parameters()]
    with pytest.raises(TypeError, match=message):
        optim.SGD(given, lr=0.1)

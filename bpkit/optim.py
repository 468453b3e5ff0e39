r"""Optimizers and learning-rate schedules: how gradients become weight updates.

Shared interface: an optimizer is built from a list of ``Parameter`` s (each with
``.value`` and ``.grad`` of the same shape) and a learning rate ``lr``;
``step()`` updates *every* parameter it was given, in place, from its ``.grad``;
``zero_grad()`` resets the gradients (backward adds to them). Per-parameter state
(velocity, moment estimates) is allocated once, with the parameter's shape and dtype,
and updated in place. Every rule follows PyTorch's conventions (``torch.optim``), so
both give the same weights step for step.
A schedule changes ``optimizer.lr`` once per epoch (``schedule.step()``).
"""

import math
from numbers import Real

import numpy as np

from ._checks import finite


def _number(value, who, what, ok, expected):
    """Return ``value`` as a float if it is a real number with ``ok(value)``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not ok(value):
        raise ValueError(f"{who} got {what}={value!r}: expected {expected}")
    return float(value)


def _positive(value, who, what):
    return _number(value, who, what, lambda v: 0 < v < math.inf, "a positive finite number")


def _unit_interval(value, who, what):
    return _number(value, who, what, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _epochs(value, who, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who} got {what}={value!r}: expected a positive integer number of epochs")
    return int(value)


def _check_grads(params, who):
    """Every ``.grad`` of the value's shape and dtype, with finite entries; else a clear error naming the first bad one.

    ``step`` runs this on every parameter before it changes any, so that a bad gradient leaves the model
    and the optimizer's state exactly as they were.
    """
    for p in params:
        if p.grad.shape != p.value.shape:
            raise ValueError(f"{who}: parameter {p.name} has grad of shape {p.grad.shape} but value of shape {p.value.shape}")
        if p.grad.dtype != p.value.dtype:
            raise TypeError(f"{who}: parameter {p.name} has grad of dtype {p.grad.dtype} but value of dtype "
                            f"{p.value.dtype}: the gradient must have the parameter's dtype")
        if not finite(p.grad):
            first = tuple(int(i) for i in np.argwhere(~np.isfinite(p.grad))[0])
            raise FloatingPointError(f"{who}: parameter {p.name} has a non-finite gradient, {p.grad[first]} at index "
                                     f"{first}; no parameter was changed (try a smaller learning rate or clip_norm)")


class Optimizer:
    r"""Base class: holds the parameters, the learning rate ``lr`` and the step count ``t``.

    Args:
        params: a non-empty list of ``Parameter`` s, usually ``model.parameters()``.
        lr: learning rate $\eta > 0$.
    """

    def __init__(self, params, lr):
        who = type(self).__name__
        if hasattr(params, "value") or hasattr(params, "parameters"):
            what = "a single " if hasattr(params, "value") else "the model "
            raise TypeError(f"{who} got {what}{params!r}: pass a list of parameters, e.g. model.parameters()")
        try:
            self.params = list(params)
        except TypeError:
            raise TypeError(f"{who} got {params!r}: pass a list of parameters, e.g. model.parameters()") from None
        if not self.params:
            raise ValueError(f"{who} got an empty parameter list: pass model.parameters()")
        for p in self.params:
            if not (hasattr(p, "value") and hasattr(p, "grad")):
                raise TypeError(f"{who} got a {type(p).__name__} in its parameter list: expected bpkit Parameters, "
                                "e.g. model.parameters()")
            if np.asarray(p.value).dtype.kind != "f":
                raise TypeError(f"{who}: parameter {p.name} has dtype {np.asarray(p.value).dtype}: an optimizer updates "
                                "float parameters only (build it with a float dtype, e.g. value.astype(np.float64))")
        _check_grads(self.params, who)
        self.lr = _positive(lr, who, "lr")
        self.t = 0

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr:g}, {len(self.params)} parameters)"

    def state_like(self):
        """One zero array per parameter, same shape and dtype (allocated once)."""
        return [np.zeros_like(p.value) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.zero_grad()

    def snapshot(self):
        """Copies of every parameter, of the optimizer's state arrays and of ``t``: what ``restore`` puts back."""
        state = {k: [a.copy() for a in v] for k, v in vars(self).items()
                 if isinstance(v, list) and v and all(isinstance(a, np.ndarray) for a in v)}
        return [p.value.copy() for p in self.params], state, self.t

    def restore(self, snapshot):
        """Put the parameters, the state and ``t`` back as ``snapshot()`` found them."""
        values, state, self.t = snapshot
        for p, value in zip(self.params, values):
            p.value[...] = value
        for k, arrays in state.items():
            for a, saved in zip(getattr(self, k), arrays):
                a[...] = saved

    def step(self):
        """Check every ``.grad`` (shape, dtype, finite), then increment ``t`` and update every parameter in place.

        A bad gradient is refused before anything changes: the parameters, ``t`` and the state stay as they were.
        """
        _check_grads(self.params, type(self).__name__)
        self.t += 1
        for i, p in enumerate(self.params):
            self.update(i, p.value, p.grad)

    def update(self, i, w, g):
        raise NotImplementedError


class SGD(Optimizer):
    r"""Plain gradient descent, $w \leftarrow w - \eta\, g$."""

    def update(self, i, w, g):
        w -= self.lr * g


class Momentum(Optimizer):
    r"""Heavy-ball or Nesterov momentum, PyTorch's form (``torch.optim.SGD(momentum=beta)``).

    Heavy ball: $v \leftarrow \beta v + g$, $w \leftarrow w - \eta v$.
    Nesterov: $v \leftarrow \beta v + g$, $w \leftarrow w - \eta (g + \beta v)$.
    $v$ starts at 0, so with $\beta = 0$ both are plain SGD. (Some texts write
    $v \leftarrow \beta v + \eta g$; for a constant $\eta$ that is the same update.)

    Args:
        params, lr: as for every optimizer. beta: $\beta \in [0, 1)$. nesterov: use the look-ahead form.
    """

    def __init__(self, params, lr, beta=0.9, nesterov=False):
        super().__init__(params, lr)
        self.beta = _unit_interval(beta, "Momentum", "beta")
        self.nesterov = bool(nesterov)
        self.v = self.state_like()

    def update(self, i, w, g):
        v = self.v[i]
        v *= self.beta
        v += g
        if self.nesterov:
            w -= self.lr * (g + self.beta * v)
        else:
            w -= self.lr * v


class RMSprop(Optimizer):
    r"""$s \leftarrow \rho s + (1-\rho) g^2$, $w \leftarrow w - \eta\, g / (\sqrt{s} + \epsilon)$ (``torch.optim.RMSprop(alpha=rho)``).

    Args:
        params, lr: as for every optimizer. rho: decay $\rho \in [0, 1)$. eps: $\epsilon > 0$.
    """

    def __init__(self, params, lr, rho=0.99, eps=1e-8):
        super().__init__(params, lr)
        self.rho = _unit_interval(rho, "RMSprop", "rho")
        self.eps = _positive(eps, "RMSprop", "eps")
        self.s = self.state_like()

    def update(self, i, w, g):
        s = self.s[i]
        s *= self.rho
        s += (1 - self.rho) * (g * g)
        w -= self.lr * g / (np.sqrt(s) + self.eps)


class Adam(Optimizer):
    r"""Adam with bias correction (``torch.optim.Adam``); $t$ is incremented *before* it is used.

    $m \leftarrow \beta_1 m + (1-\beta_1) g$, $v \leftarrow \beta_2 v + (1-\beta_2) g^2$,
    $\hat m = m / (1-\beta_1^t)$, $\hat v = v / (1-\beta_2^t)$,
    $w \leftarrow w - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$.
    At $t = 1$, $\hat m / \sqrt{\hat v} = g/|g|$: every weight moves by about $\eta$.

    Args:
        params, lr: as for every optimizer. betas: $(\beta_1, \beta_2)$, each in $[0, 1)$. eps: $\epsilon > 0$.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        who = type(self).__name__
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"{who} got betas={betas!r}: expected a pair (beta1, beta2), e.g. betas=(0.9, 0.999)")
        beta1, beta2 = betas
        self.beta1, self.beta2 = _unit_interval(beta1, who, "beta1"), _unit_interval(beta2, who, "beta2")
        self.eps = _positive(eps, who, "eps")
        self.m, self.v = self.state_like(), self.state_like()

    def update(self, i, w, g):
        m, v = self.m[i], self.v[i]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        step_size = self.lr / (1 - self.beta1**self.t)
        denom = np.sqrt(v) / math.sqrt(1 - self.beta2**self.t) + self.eps
        w -= step_size * (m / denom)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (``torch.optim.AdamW``): $w \leftarrow (1 - \eta\lambda) w$, then Adam.

    The decay does not pass through $\hat m / \sqrt{\hat v}$, so every weight shrinks by the
    same factor whatever its gradient (adding $\lambda w$ to $g$ instead would be rescaled).

    Args:
        params, lr, betas, eps: as for ``Adam``. weight_decay: $\lambda \ge 0$.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps)
        self.weight_decay = _number(weight_decay, "AdamW", "weight_decay", lambda v: 0 <= v < math.inf, "a finite number >= 0")

    def update(self, i, w, g):
        w *= 1 - self.lr * self.weight_decay
        super().update(i, w, g)


class _Schedule:
    """Shared plumbing: remember the optimizer's initial ``lr``; ``step()`` moves to the next epoch."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs a bpkit optimizer, got {type(optimizer).__name__}")
        self.optimizer, self.base_lr, self.epoch = optimizer, optimizer.lr, 0

    def step(self):
        """Call once after each epoch: sets ``optimizer.lr`` to ``lr_at(epoch)``."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)


class StepLR(_Schedule):
    r"""$\eta_e = \eta_0\, \gamma^{\lfloor e / \text{step\_size} \rfloor}$ after $e$ epochs (``torch.optim.lr_scheduler.StepLR``).

    Args:
        optimizer: its current ``lr`` is $\eta_0$. step_size: epochs between decays. gamma: factor $\gamma > 0$.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size, self.gamma = _epochs(step_size, "StepLR", "step_size"), _positive(gamma, "StepLR", "gamma")

    def lr_at(self, epoch):
        try:
            return self.base_lr * self.gamma ** (epoch // self.step_size)
        except OverflowError:
            raise OverflowError(f"StepLR: after {epoch} epochs the rate {self.base_lr:g} * {self.gamma:g}^"
                                f"{epoch // self.step_size} is beyond float64: use gamma <= 1 or fewer epochs") from None


class CosineLR(_Schedule):
    r"""$\eta_e = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min}) (1 + \cos(\pi e / T))$ (``CosineAnnealingLR``).

    The rate falls from $\eta_0$ to $\eta_{\min}$ over $T$ = ``t_max`` epochs; as in PyTorch,
    it would rise again after $T$, so set ``t_max`` to the number of epochs.

    Args:
        optimizer: its current ``lr`` is $\eta_0$. t_max: $T$, a positive integer. lr_min: $\eta_{\min} \ge 0$.
    """

    def __init__(self, optimizer, t_max, lr_min=0.0):
        super().__init__(optimizer)
        self.t_max = _epochs(t_max, "CosineLR", "t_max")
        self.lr_min = _number(lr_min, "CosineLR", "lr_min", lambda v: 0 <= v <= self.base_lr,
                              f"0 <= lr_min <= the optimizer's lr ({self.base_lr:g})")

    def lr_at(self, epoch):
        return self.lr_min + 0.5 * (self.base_lr - self.lr_min) * (1 + math.cos(math.pi * epoch / self.t_max))


def clip_grad_norm(params, max_norm):
    r"""Rescale all gradients together so that their global L2 norm is at most ``max_norm``.

    $\lVert g\rVert = \sqrt{\sum_p \sum_i g_{p,i}^2}$ over every parameter $p$; if it exceeds
    ``max_norm`` $= c$, every ``.grad`` is multiplied in place by $c / (\lVert g\rVert + 10^{-6})$,
    as ``torch.nn.utils.clip_grad_norm_`` does. The direction of the step is unchanged.

    Args:
        params: list of ``Parameter`` s. max_norm: $c > 0$.
    Returns:
        the norm *before* clipping, a float (it may exceed the dtype: it is a Python float).
    Raises:
        FloatingPointError: a gradient has a NaN or inf entry (named); nothing is changed.
    """
    max_norm = _positive(max_norm, "clip_grad_norm", "max_norm")
    if hasattr(params, "grad"):
        raise TypeError(f"clip_grad_norm got a single {params!r}: pass a list of parameters, e.g. model.parameters()")
    params = list(params)
    if not params:
        raise ValueError("clip_grad_norm got an empty parameter list")
    _check_grads(params, "clip_grad_norm")  # a NaN or inf has no length to clip: refused, nothing changed
    biggest = max(float(np.max(np.abs(p.grad), initial=0.0)) for p in params)
    if biggest == 0.0:
        return 0.0
    # ||g|| = biggest * ||g / biggest||: every scaled entry is at most 1, so the sum of squares cannot overflow
    total_norm = biggest * math.sqrt(sum(float(np.vdot(p.grad / biggest, p.grad / biggest)) for p in params))
    coef = max_norm / (total_norm + 1e-6)
    if coef < 1:
        for p in params:
            p.grad *= coef
    return total_norm

r"""Loss functions: ``forward(y_hat, y) -> float`` and ``backward() -> grad_y_hat``.

Every loss is the mean over the batch of a per-example loss that sums over the
outputs: $L = \frac1N \sum_{n=1}^{N} \ell(\hat y_n, y_n)$, so every gradient carries
the factor $1/N$. A loss sees only its input ``y_hat`` (shape ``(N, k)``) and the
targets: it knows nothing about the activation before it. Where a loss and an
activation belong together for stability, the pair is one explicitly named loss that
takes the *logits* (``BCEWithLogits``, ``SoftmaxCrossEntropy``).

Every loss takes finite inputs over the dtype's whole range: where the loss itself is beyond the
dtype (an MSE of $|\hat y - y| > 10^{154}$ in float64, a true class whose logit is $10^{308}$ below
another), ``forward`` refuses with a ``FloatingPointError`` that says so, instead of returning inf.
"""

import numpy as np

from ._checks import batch_input, check_finite, as_float_array
from .activations import sigmoid


def log_softmax(z):
    r"""Row-wise $\log \mathrm{softmax}(z)_c = z_c - \log\sum_j e^{z_j}$ of ``z`` ``(N, C)``, via the max-shift.

    Finite logits give no overflow: $z_c - \max_j z_j \le 0$, so every $e^{\cdot} \le 1$. Where the shift
    itself overflows (logits $10^{308}$ apart), that entry's probability is 0 and its log $-\infty$.
    """
    z = batch_input(z, "log_softmax", what="logits")  # float, (batch, classes), finite; 1-D: says reshape
    with np.errstate(over="ignore"):  # only z_c - max -> -inf can overflow, and that is exact: p_c = 0
        shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z):
    r"""Row-wise $\mathrm{softmax}(z)_c = e^{z_c} / \sum_j e^{z_j}$ of ``z`` ``(N, C)``; every row sums to 1."""
    return np.exp(log_softmax(z))


class Loss:
    """Shared plumbing: check inputs, cache what backward needs, refuse backward before forward.

    ``classifier`` says whether the loss takes logits of classes, so that accuracy means something.
    """

    classifier = False

    def __repr__(self):
        return type(self).__name__ + "()"

    def __call__(self, y_hat, y):
        return self.forward(y_hat, y)

    def _check_pair(self, y_hat, y):
        y_hat = batch_input(y_hat, self, what="predictions y_hat")
        y = np.asarray(y)
        if y.shape[:1] != y_hat.shape[:1]:
            raise ValueError(
                f"{self!r} got {y_hat.shape[0]} predictions (y_hat {y_hat.shape}) "
                f"but {y.shape[0] if y.ndim else 'a scalar'} targets (y {y.shape}): batch sizes must match"
            )
        return y_hat, y

    def _float_targets(self, y, y_hat, finite=True):
        y = as_float_array(y, self, "targets y")
        if y.shape != y_hat.shape:
            hint = ""
            if y.ndim == 1 and y_hat.shape == (y.shape[0], 1):
                hint = " (use y.reshape(-1, 1): a 1-D y would broadcast to (N, N))"
            raise ValueError(f"{self!r} got targets y of shape {y.shape} for y_hat of shape {y_hat.shape}: expected the same shape{hint}")
        if finite:
            check_finite(y, self, "targets y")
        return y.astype(y_hat.dtype, copy=False)

    def _finite(self, value, y_hat):
        """The loss as a float, or a clear error if it is beyond the dtype (inputs too large)."""
        if not np.isfinite(value):
            raise FloatingPointError(
                f"{self!r}: the loss is {value}, beyond {y_hat.dtype} (largest |y_hat| is {np.max(np.abs(y_hat)):.3g}): "
                "the predictions or targets are too large; scale the data down or lower the learning rate")
        return float(value)

    def backward(self):
        """Return $\\partial L / \\partial \\hat y$, shape ``(N, k)``, for the last forward call."""
        if self.cache is None:
            raise RuntimeError(f"{self!r}.backward called before forward: compute the loss first")
        return self._grad(*self.cache)


class MSE(Loss):
    r"""Mean squared error, $L = \frac{1}{2N} \sum_n \lVert \hat y_n - y_n \rVert^2$.

    The $\tfrac12$ makes the gradient clean: $\partial L/\partial \hat y = (\hat y - y)/N$.
    (PyTorch's ``MSELoss`` averages over all $N k$ entries and has no $\tfrac12$.)

    Args (forward):
        y_hat: predictions, shape ``(N, k)``.
        y: targets, float, same shape as ``y_hat``.
    """

    cache = None

    def forward(self, y_hat, y):
        y_hat, y = self._check_pair(y_hat, y)
        y = self._float_targets(y, y_hat)
        with np.errstate(over="ignore"):  # beyond the dtype: refused just below
            diff = y_hat - y
            value = 0.5 * np.sum(diff * diff) / y_hat.shape[0]
        self.cache = (diff,)
        return self._finite(value, y_hat)

    def _grad(self, diff):
        return diff / diff.shape[0]


class BCEWithLogits(Loss):
    r"""Binary cross-entropy on logits $z$ (the sigmoid is inside the loss).

    $\ell = -[y \log \sigma(z) + (1-y) \log(1 - \sigma(z))] = \log(1 + e^{z}) - y z$,
    computed as ``logaddexp(0, z) - y * z``, which never overflows and never takes
    $\log 0$. Gradient: $\partial L/\partial z = (\sigma(z) - y)/N$.

    Args (forward):
        y_hat: logits, shape ``(N, k)`` (usually ``k = 1``).
        y: targets in $[0, 1]$ (usually 0 or 1), same shape as ``y_hat``.
    """

    cache = None
    classifier = True

    def forward(self, y_hat, y):
        z, y = self._check_pair(y_hat, y)
        y = self._float_targets(y, z, finite=False)  # the range check refuses NaN and inf as well
        if not (y.min() >= 0 and y.max() <= 1):
            i = tuple(int(v) for v in np.argwhere(~((y >= 0) & (y <= 1)))[0])
            raise ValueError(f"{self!r} got target {y[i]} at index {i}: binary targets must lie in [0, 1]")
        self.cache = (z, y)
        with np.errstate(over="ignore"):  # beyond the dtype: refused just below
            value = np.sum(np.logaddexp(0, z) - y * z) / z.shape[0]
        return self._finite(value, z)

    def _grad(self, z, y):
        return (sigmoid(z) - y) / z.shape[0]


class SoftmaxCrossEntropy(Loss):
    r"""Softmax followed by cross-entropy, on logits $z$ of shape ``(N, C)``.

    $\ell = -\sum_c y_c \log p_c$ with $p = \mathrm{softmax}(z)$, computed with
    ``log_softmax`` (stable). Gradient: $\partial L/\partial z = (p - Y)/N$, where $Y$ is
    the one-hot (or probability) target matrix.

    With integer labels the one-hot $Y$ is never built: $\ell_n = -\log p_{n, y_n}$ picks one entry
    per row, and $p - Y$ subtracts 1 from that entry.

    Args (forward):
        y_hat: logits, shape ``(N, C)``.
        y: integer class labels of shape ``(N,)`` in ``0..C-1``, or a one-hot /
           probability matrix of shape ``(N, C)`` whose rows sum to 1.
    """

    cache = None
    classifier = True

    def forward(self, y_hat, y):
        z, y = self._check_pair(y_hat, y)
        y = self._check_targets(y, z)
        logp = log_softmax(z)
        self.cache = (logp, y)
        with np.errstate(over="ignore", invalid="ignore"):  # beyond the dtype: refused just below
            if y.ndim == 1:  # labels: the entry of the true class in each row
                value = -logp[np.arange(len(y)), y].sum() / len(y)
            else:
                value = -np.sum(np.where(y > 0, y * logp, 0)) / z.shape[0]  # 0 * log 0 counts as 0
        return self._finite(value, z)

    def _check_targets(self, y, z):
        """Integer labels ``(N,)`` in ``0..C-1``, or a ``(N, C)`` matrix of probability rows (returned as floats)."""
        c = z.shape[1]
        if y.ndim == 2 and y.shape[1] == 1 and y.dtype.kind in "iu":
            raise ValueError(f"{self!r} got integer labels of shape {y.shape}: pass the class indices as a 1-D array "
                             f"of shape ({len(y)},), e.g. y.ravel()")
        if y.ndim == 1:
            if y.dtype.kind not in "iu":
                raise TypeError(f"{self!r} got 1-D labels with dtype {y.dtype}: expected integer class indices 0..{c - 1}")
            if y.min() < 0 or y.max() >= c:
                bad = np.flatnonzero((y < 0) | (y >= c))
                raise ValueError(f"{self!r} got label {y[bad[0]]} at index {bad[0]}: expected 0..{c - 1} for {c} classes")
            return y
        Y = self._float_targets(y, z)
        if Y.min() < 0 or not np.allclose(Y.sum(axis=1), 1, atol=1e-6):
            raise ValueError(f"{self!r} got a target matrix of shape {Y.shape} whose rows are not probability vectors (non-negative, summing to 1)")
        return Y

    def _grad(self, logp, y):
        p = np.exp(logp)
        if y.ndim == 1:
            p[np.arange(len(y)), y] -= 1  # p - Y for the one-hot Y of the labels
        else:
            p -= y
        p /= len(p)
        return p


class L2Penalty:
    r"""A loss plus the L2 penalty on the model's weights: $L = L_{\text{data}} + \frac{\lambda}{2}\sum_l \lVert W^{(l)}\rVert^2$.

    The penalty is part of the loss, so backprop computes its gradient like any other: it reaches each
    weight directly, not through the output, adding $\partial L/\partial W^{(l)} \mathrel{+}= \lambda W^{(l)}$.
    ``backward`` adds those and returns the data loss's gradient for ``y_hat``; the model's backward then
    adds the data term. The weights are the parameters with two or more axes (``Dense``'s ``W``,
    ``Embedding``'s ``E``); biases and the ``gamma``/``beta`` of normalisation layers are vectors that
    shift or scale, do not make the fit wiggle, and are left free.

    With plain SGD this is weight decay: $w \leftarrow w - \eta(g + \lambda w)$. With Adam it is not:
    $\lambda w$ enters $m$ and $v$ and is divided by $\sqrt{\hat v}$ like the data gradient, while
    ``AdamW`` (chapter 6) subtracts $\eta\lambda w$ outside Adam's scaling (decoupled decay).

    Args:
        loss: a bpkit loss (``MSE``, ``SoftmaxCrossEntropy``, ...). model: whose weights are penalised.
        lam: $\lambda \ge 0$.
    """

    def __init__(self, loss, model, lam):
        if not (hasattr(loss, "forward") and hasattr(loss, "backward")):
            raise TypeError(f"L2Penalty needs a loss with forward and backward, got {type(loss).__name__}")
        if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating)) or not 0 <= lam < np.inf:
            raise ValueError(f"L2Penalty needs a finite lam >= 0, got {lam!r}")
        self.loss, self.lam = loss, float(lam)
        self.weights = [p for p in model.parameters() if p.value.ndim >= 2]
        self.classifier = loss.classifier

    def __repr__(self):
        return f"L2Penalty({self.loss!r}, lam={self.lam:g})"

    __call__ = Loss.__call__

    def penalty(self):
        r"""$\frac{\lambda}{2}\sum \lVert W\rVert^2$ over the weights."""
        return self.lam / 2 * sum(float(np.vdot(W.value, W.value)) for W in self.weights)

    def forward(self, y_hat, y):
        """The data loss of ``(y_hat, y)`` plus the penalty."""
        return self.loss.forward(y_hat, y) + self.penalty()

    def backward(self):
        r"""Add $\lambda W$ to each weight's ``.grad``; return $\partial L_{\text{data}}/\partial \hat y$."""
        for W in self.weights:
            W.grad += self.lam * W.value
        return self.loss.backward()

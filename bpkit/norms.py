r"""Normalisation layers: ``BatchNorm`` (each feature over the batch) and ``LayerNorm`` (each example over
its features). Both follow the layer protocol of :mod:`bpkit.layers`.

For ``x`` of shape ``(N, n)`` and an axis of length $m$ to normalise over:
$\hat x = (x - \mu) / \sqrt{\sigma^2 + \epsilon}$ with the mean $\mu$ and the biased variance
$\sigma^2$ over that axis, and $y = \gamma \odot \hat x + \beta$. With $g = \partial L/\partial \hat x
= \partial L/\partial y \odot \gamma$, the three paths from $x$ to the loss (directly, through $\mu$ and
through $\sigma^2$) add up to

$$\frac{\partial L}{\partial x} = \frac{1}{m\sqrt{\sigma^2+\epsilon}}
\Bigl(m\,g - \textstyle\sum g - \hat x \sum g \odot \hat x\Bigr),$$

the sums running over the normalised axis; $\partial L/\partial \gamma = \sum_n \partial L/\partial y_n
\odot \hat x_n$ and $\partial L/\partial \beta = \sum_n \partial L/\partial y_n$.
"""

import numpy as np

from .layers import Layer, Parameter


def _normalise_backward(grad_y, x_hat, inv_std, gamma, axis):
    g = grad_y * gamma
    m = x_hat.shape[axis]
    return inv_std / m * (m * g - g.sum(axis=axis, keepdims=True)
                          - x_hat * (g * x_hat).sum(axis=axis, keepdims=True))


class _Norm(Layer):
    """What both layers share: ``gamma`` (ones) and ``beta`` (zeros) of shape ``(n,)``, and ``eps``."""

    def __init__(self, n, eps, dtype):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{type(self).__name__} needs a positive integer n, got {n!r}")
        if not eps > 0:
            raise ValueError(f"{type(self).__name__} needs eps > 0, got {eps!r}")
        self.n, self.eps = int(n), float(eps)
        self.gamma = Parameter(np.ones(n, dtype=dtype), "gamma")
        self.beta = Parameter(np.zeros(n, dtype=dtype), "beta")
        self.x_hat = self.inv_std = None

    def __repr__(self):
        return f"{type(self).__name__}({self.n})"

    def parameters(self):
        return [self.gamma, self.beta]

    def backward(self, grad_y, input_grad=True):
        """Add $\\sum_n \\partial L/\\partial y_n \\odot \\hat x_n$ to ``gamma.grad`` and $\\sum_n \\partial L/\\partial y_n$ to
        ``beta.grad``; return $\\partial L/\\partial x$ by the formula of the module docstring."""
        self.gamma.grad += (grad_y * self.x_hat).sum(axis=0)
        self.beta.grad += grad_y.sum(axis=0)
        if input_grad:
            return _normalise_backward(grad_y, self.x_hat, self.inv_std, self.gamma.value, self.axis)


class BatchNorm(_Norm):
    r"""Batch normalisation of ``(N, n)`` inputs: each of the ``n`` features over the ``N`` examples.

    In training, $\mu$ and $\sigma^2$ are the batch's, and the running estimates move towards them as
    PyTorch's ``BatchNorm1d`` does: $r_\mu \leftarrow (1-m) r_\mu + m\mu$ and
    $r_{\sigma^2} \leftarrow (1-m) r_{\sigma^2} + m\,\sigma^2 N/(N-1)$ (the unbiased variance), with
    $m$ = ``momentum``. In evaluation, $\hat x = (x - r_\mu)/\sqrt{r_{\sigma^2} + \epsilon}$.
    A training batch needs at least 2 examples.
    """

    axis = 0

    def __init__(self, n, eps=1e-5, momentum=0.1, dtype=np.float64):
        super().__init__(n, eps, dtype)
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm needs 0 <= momentum <= 1, got {momentum!r}")
        self.momentum = float(momentum)
        self.running_mean, self.running_var = np.zeros(n, dtype=dtype), np.ones(n, dtype=dtype)

    def forward(self, x):
        if not self.training:
            x_hat = (x - self.running_mean) / np.sqrt(self.running_var + self.eps)
            return self.gamma.value * x_hat + self.beta.value
        N = len(x)
        if N < 2:
            raise ValueError(f"{self!r} got a training batch of {N} example: the variance of one example is 0; "
                             "train with batches of at least 2, or call model.eval() to predict")
        mu, var = x.mean(axis=0), x.var(axis=0)
        self.inv_std = 1 / np.sqrt(var + self.eps)
        self.x_hat = (x - mu) * self.inv_std
        self.running_mean += self.momentum * (mu - self.running_mean)
        self.running_var += self.momentum * (var * N / (N - 1) - self.running_var)
        return self.gamma.value * self.x_hat + self.beta.value


class LayerNorm(_Norm):
    r"""Layer normalisation of ``(N, n)`` inputs: each example over its ``n`` features.

    The same as ``BatchNorm`` over the other axis, with no running estimates: training and
    evaluation compute the same thing.
    """

    axis = 1

    def __init__(self, n, eps=1e-5, dtype=np.float64):
        super().__init__(n, eps, dtype)

    def forward(self, x):
        mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
        inv_std = 1 / np.sqrt(var + self.eps)
        x_hat = (x - mu) * inv_std
        if self.training:
            self.x_hat, self.inv_std = x_hat, inv_std
        return self.gamma.value * x_hat + self.beta.value

r"""Activation functions and their derivatives, as one table.

Every entry is a pair ``(f, f_prime)`` of elementwise functions of the
pre-activation ``z``: $a = f(z)$ and $f'(z) = \mathrm{d}a/\mathrm{d}z$.
The derivative always takes ``z`` (never ``a``), so ``f_prime(z)`` is exactly the
factor in $\delta^{(l)} = \partial L/\partial a^{(l)} \odot f'(z^{(l)})$.

Every function and derivative is finite, with no warning, over the whole finite range of
float32 and float64 (tested at the largest finite values).
"""

import numpy as np

from .layers import Layer


def identity(z):
    r"""$f(z) = z$."""
    return z


def identity_prime(z):
    r"""$f'(z) = 1$."""
    return np.ones_like(z)


def sigmoid(z):
    r"""$\sigma(z) = 1 / (1 + e^{-z})$, computed without overflow for any ``z``.

    Only $e^{-|z|} \le 1$ is ever formed: for $z \ge 0$ it is $1/(1+e^{-z})$,
    for $z < 0$ the equal form $e^{z}/(1+e^{z})$.
    """
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)


def sigmoid_prime(z):
    r"""$\sigma'(z) = \sigma(z)\,(1 - \sigma(z))$."""
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z):
    r"""$\tanh(z) = (e^{z} - e^{-z}) / (e^{z} + e^{-z})$."""
    return np.tanh(z)


def tanh_prime(z):
    r"""$\tanh'(z) = 1 - \tanh^2(z)$."""
    t = np.tanh(z)
    return 1 - t * t


def relu(z):
    r"""$\mathrm{ReLU}(z) = \max(z, 0)$."""
    return np.maximum(z, 0)


def relu_prime(z):
    r"""$\mathrm{ReLU}'(z) = 1$ if $z > 0$ else $0$ (we take $0$ at the kink $z = 0$, as PyTorch does)."""
    return (z > 0).astype(z.dtype)


def leaky_relu(z, alpha=0.01):
    r"""$f(z) = z$ if $z > 0$ else $\alpha z$."""
    return np.where(z > 0, z, alpha * z)


def leaky_relu_prime(z, alpha=0.01):
    r"""$f'(z) = 1$ if $z > 0$ else $\alpha$ (the value $\alpha$ is taken at the kink)."""
    return np.where(z > 0, 1, alpha).astype(z.dtype)


_GELU_C = float(np.sqrt(2 / np.pi))
_GELU_K = 0.044715


def _gelu_u(z):
    r"""$u = \sqrt{2/\pi}\,(z + 0.044715\,z^3)$ at ``z`` clipped to $[-50, 50]$, where $\tanh u$ is already $\pm 1$ exactly
    (so $z^3$ never overflows, and nothing changes)."""
    zc = np.clip(z, -50, 50)
    return zc, _GELU_C * zc * (1 + _GELU_K * zc * zc)


def gelu(z):
    r"""GELU, tanh form: $\tfrac12 z\,\bigl(1 + \tanh(\sqrt{2/\pi}\,(z + 0.044715\,z^3))\bigr)$.

    This is the approximation of $z\,\Phi(z)$ used by GPT-2 and by PyTorch's
    ``gelu(approximate="tanh")``; it differs from the exact $z\,\Phi(z)$ by less than $10^{-3}$.
    """
    _, u = _gelu_u(z)
    return 0.5 * z * (1 + np.tanh(u))


def gelu_prime(z):
    r"""$f'(z) = \tfrac12(1 + t) + \tfrac12 z (1 - t^2)\sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\,z^2)$, $t = \tanh(u)$."""
    zc, u = _gelu_u(z)
    t = np.tanh(u)
    return 0.5 * (1 + t) + 0.5 * zc * (1 - t * t) * _GELU_C * (1 + 3 * _GELU_K * zc * zc)


#: name -> (f, f_prime); the one table every test sweeps.
ACTIVATIONS = {
    "identity": (identity, identity_prime),
    "sigmoid": (sigmoid, sigmoid_prime),
    "tanh": (tanh, tanh_prime),
    "relu": (relu, relu_prime),
    "leaky_relu": (leaky_relu, leaky_relu_prime),
    "gelu": (gelu, gelu_prime),
}


class Activation(Layer):
    r"""Elementwise layer $a = f(z)$.

    ``forward(z)`` returns ``f(z)`` (and, in training mode, keeps ``z``); ``backward(grad_a)`` returns
    $\delta = \partial L/\partial z = \partial L/\partial a \odot f'(z)$, same shape as ``z``.

    Args:
        name: a key of :data:`ACTIVATIONS`.
        alpha: slope for ``z < 0``, only for ``"leaky_relu"``.
    """

    def __init__(self, name, alpha=0.01):
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}: choose one of {sorted(ACTIVATIONS)}")
        self.name = name
        self.f, self.f_prime = ACTIVATIONS[name]
        self.kwargs = {"alpha": alpha} if name == "leaky_relu" else {}
        self.z = None

    def __repr__(self):
        return f"Activation({self.name!r})"

    def forward(self, z):
        """Return ``f(z)``; in training mode keep ``z`` for backward."""
        if self.training:
            self.z = z
        return self.f(z, **self.kwargs)

    def backward(self, grad_a):
        """Return ``delta = grad_a * f'(z)`` for the ``z`` of the last training forward."""
        return grad_a * self.f_prime(self.z, **self.kwargs)

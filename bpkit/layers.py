r"""Parameters and the affine (``Dense``) layer, batch-first.

A ``Dense`` layer maps $a^{(l-1)}$ of shape ``(N, n_in)`` to
$z^{(l)} = a^{(l-1)} W^{(l)} + b^{(l)}$ of shape ``(N, n_out)``, with $W^{(l)}$ of
shape ``(n_in, n_out)`` and $b^{(l)}$ of shape ``(n_out,)``. It is affine only: the
activation is a separate layer, so ``Dense.backward`` receives exactly $\delta^{(l)}$.
"""

import numpy as np

from ._arrays import ones
from ._checks import FLOAT_DTYPES, as_float_array, batch_input


class Parameter:
    """A trainable array and the gradient of the loss with respect to it.

    Attributes:
        value: the array itself (updated in place by optimizers).
        grad: $\\partial L/\\partial$ ``value``, same shape and dtype; backward *adds* to it
            (``accumulate``), ``zero_grad`` resets it to zeros.
        name: for messages and reports, e.g. ``"W1"``.

    ``zero_grad`` only marks the gradient as zero. The next ``accumulate`` then writes its product
    straight into the array, with no pass that writes zeros and no pass that adds to them; reading
    ``grad`` before that fills the zeros in. So ``grad`` always reads as the sum of what was added
    since the last ``zero_grad`` (PyTorch's ``zero_grad(set_to_none=True)`` saves the same work).
    """

    def __init__(self, value, name="param"):
        self.value = value
        self._grad = np.zeros_like(value)
        self._zeroed = True  # True after zero_grad (and at the start): _grad counts as zeros, whatever it holds
        self.name = name

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"

    @property
    def grad(self):
        if self._zeroed:
            self._grad.fill(0)
            self._zeroed = False
        return self._grad

    @grad.setter
    def grad(self, g):
        self._grad, self._zeroed = g, False

    def zero_grad(self):
        self._zeroed = True

    def accumulate(self, A, B):
        r"""``grad += A @ B``: how a layer adds its share of the gradient.

        Right after ``zero_grad`` the product is written into ``grad`` (``np.matmul(A, B, out=grad)``);
        otherwise it is added. Both give the same numbers; the first saves two passes over ``grad``.
        """
        if A.shape[-1:] != B.shape[:1] or A.shape[:-1] + B.shape[1:] != self.value.shape:
            raise ValueError(
                f"Parameter {self.name!r} of shape {self.value.shape} cannot add A @ B for A of shape {A.shape} "
                f"and B of shape {B.shape}: expected A (..., k) and B (k, ...) whose product has the parameter's shape"
            )
        if self._zeroed:
            np.matmul(A, B, out=self._grad)
            self._zeroed = False
        else:
            self._grad += A @ B


def init_std(n_in, n_out, init):
    r"""Standard deviation of the initial weights.

    ``"xavier"``: $\sqrt{2/(n_{in}+n_{out})}$ (Glorot, for sigmoid/tanh);
    ``"he"``: $\sqrt{2/n_{in}}$ (for ReLU-like); a number: that std (e.g. ``1.0``, the naive choice).
    """
    if init == "xavier":
        return np.sqrt(2.0 / (n_in + n_out))
    if init == "he":
        return np.sqrt(2.0 / n_in)
    if isinstance(init, (int, float)) and not isinstance(init, bool) and init >= 0:
        return float(init)
    raise ValueError(f"unknown init {init!r}: use 'xavier', 'he' or a non-negative standard deviation")


class Dense:
    r"""Affine layer $z = a_{\text{prev}} W + b$.

    Args:
        n_in, n_out: input and output widths.
        rng: a ``numpy.random.Generator``; the only source of randomness.
        init: ``"xavier"``, ``"he"`` or a standard deviation; weights are
            $\mathcal N(0, \text{std}^2)$, biases start at 0.
        dtype: ``np.float64`` (default) or ``np.float32``.
        name: suffix for the parameter names (``W1``, ``b1``).
    """

    def __init__(self, n_in, n_out, *, rng, init="xavier", dtype=np.float64, name=""):
        for label, n in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Dense needs a positive integer {label}, got {n!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"Dense({n_in}->{n_out}) needs rng=np.random.default_rng(seed), got {type(rng).__name__}")
        if np.dtype(dtype).type not in FLOAT_DTYPES:
            raise TypeError(f"Dense({n_in}->{n_out}) dtype must be float32 or float64, got {np.dtype(dtype)}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        W = rng.normal(0.0, init_std(n_in, n_out, init), size=(n_in, n_out)).astype(dtype)
        self.W = Parameter(W, "W" + str(name))
        self.b = Parameter(np.zeros(n_out, dtype=dtype), "b" + str(name))
        self.cache = None
        self.check_input = True  # forward checks a_prev (MLP turns it off where the layer before computed it)
        self.check_grad = True   # backward checks delta (MLP turns it off where the layer after computed it)

    def __repr__(self):
        return f"Dense({self.n_in}->{self.n_out})"

    def parameters(self):
        return [self.W, self.b]

    def forward(self, a_prev, cache=True):
        """Return ``z = a_prev @ W + b``, shape ``(N, n_out)``; cache ``a_prev`` for backward.

        ``a_prev`` is checked first (float, shape ``(N, n_in)``, finite) unless ``check_input`` is
        false, as ``MLP`` sets it for every layer whose input the network itself has just computed.
        """
        if self.check_input:
            a_prev = batch_input(a_prev, self, width=self.n_in)
        if a_prev.dtype != self.W.value.dtype:
            raise TypeError(
                f"{self!r} has {self.W.value.dtype} weights but got {a_prev.dtype} input: "
                f"convert the data with X.astype(np.{self.W.value.dtype}) or build the model with dtype=np.{a_prev.dtype}"
            )
        if cache:
            self.cache = a_prev
        return a_prev @ self.W.value + self.b.value

    def backward(self, delta, input_grad=True):
        r"""Given $\delta = \partial L/\partial z$ ``(N, n_out)``, add $a_{\text{prev}}^\top \delta$ to ``W.grad`` and
        $\sum_n \delta_n = \mathbf 1^\top \delta$ to ``b.grad``; return $\partial L/\partial a_{\text{prev}} = \delta W^\top$
        ``(N, n_in)``, or ``None`` if ``input_grad=False`` (the first layer of a network being trained needs no input gradient).

        The bias sum is written as the product $\mathbf 1^\top \delta$ (the bias is a weight on an input that is
        always 1): it equals ``delta.sum(axis=0)``, and for a tall, narrow ``delta`` numpy computes it several
        times faster.

        ``delta`` is checked first (float, shape ``(N, n_out)``) unless ``check_grad`` is false, as ``MLP``
        sets it for every layer whose ``delta`` the layer after it has just computed."""
        if self.cache is None:
            raise RuntimeError(f"{self!r}.backward called before forward: run forward(a_prev) first")
        a_prev = self.cache
        if self.check_grad:
            delta = as_float_array(delta, self.backward, "delta")
            if delta.shape != (a_prev.shape[0], self.n_out):
                raise ValueError(
                    f"{self!r}.backward got delta of shape {delta.shape}: expected {(a_prev.shape[0], self.n_out)} "
                    f"(batch of the last forward, n_out)"
                )
        self.W.accumulate(a_prev.T, delta)                       # W.grad += a_prev^T delta
        self.b.accumulate(ones(len(delta), delta.dtype), delta)  # b.grad += 1^T delta
        return delta @ self.W.value.T if input_grad else None

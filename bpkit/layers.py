r"""The layer protocol, parameters, and the affine (``Dense``) layer, batch-first.

**The layer protocol.** Every bpkit layer, and any layer you write, has:

- ``forward(x)``: the output for a batch ``x``. In training mode it also keeps what
  ``backward`` will need (for ``Dense``: its input $a^{(l-1)}$); in evaluation mode it keeps
  nothing, so a prediction never disturbs what the last training forward kept.
- ``backward(grad)``: given $\partial L/\partial(\text{output})$, *add* the gradient of every
  parameter to its ``.grad`` and return $\partial L/\partial x$, the gradient for the input.
- ``parameters()``: a list of :class:`Parameter` (empty for a layer without any).
- ``training``: ``True`` (training mode) or ``False`` (evaluation mode).

A layer with parameters also accepts ``backward(grad, input_grad=False)``: fill the
parameter gradients and skip $\partial L/\partial x$. ``Sequential`` asks for that when the
input is data, which needs no gradient (see ``Sequential.backward``).

A ``Dense`` layer maps $a^{(l-1)}$ of shape ``(N, n_in)`` to
$z^{(l)} = a^{(l-1)} W^{(l)} + b^{(l)}$ of shape ``(N, n_out)``, with $W^{(l)}$ of
shape ``(n_in, n_out)`` and $b^{(l)}$ of shape ``(n_out,)``. It is affine only: the
activation is a separate layer, so ``Dense.backward`` receives exactly $\delta^{(l)}$.
"""

import numpy as np

from ._checks import FLOAT_DTYPES, batch_input


class Layer:
    """The defaults of the protocol: training mode, no parameters. Subclassing it is optional."""

    training = True

    def parameters(self):
        return []

    def train(self, mode=True):
        """Training mode (``mode=True``) or evaluation mode."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode: keep nothing for backward."""
        return self.train(False)


class Parameter:
    r"""A trainable array ``value`` and ``grad`` $= \partial L/\partial$ ``value``, of the same shape and dtype.

    Backward *adds* to ``grad``; ``zero_grad`` sets it back to zeros. ``name`` is for messages (``"W1"``).
    """

    def __init__(self, value, name="param"):
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"

    def zero_grad(self):
        self.grad.fill(0)


def init_std(n_in, n_out, init):
    r"""Standard deviation of the initial weights.

    ``"xavier"``: $\sqrt{2/(n_{in}+n_{out})}$ (Glorot, for tanh);
    ``"he"``: $\sqrt{2/n_{in}}$ (for ReLU-like); a number: that std (e.g. ``1.0``, the naive choice).
    """
    if init == "xavier":
        return np.sqrt(2.0 / (n_in + n_out))
    if init == "he":
        return np.sqrt(2.0 / n_in)
    if isinstance(init, (int, float)) and not isinstance(init, bool) and init >= 0:
        return float(init)
    raise ValueError(f"unknown init {init!r}: use 'xavier', 'he' or a non-negative standard deviation")


class Dense(Layer):
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
        self.a_prev = None

    def __repr__(self):
        return f"Dense({self.n_in}->{self.n_out})"

    def parameters(self):
        return [self.W, self.b]

    def check_input(self, a_prev):
        """Return ``a_prev`` if it is a float batch ``(N, n_in)`` of the weights' dtype with finite entries, else raise.

        ``forward`` trusts its input; a model calls this once, on the data, where it enters (``Sequential.forward``).
        """
        a_prev = batch_input(a_prev, self, width=self.n_in)
        if a_prev.dtype != self.W.value.dtype:
            raise TypeError(
                f"{self!r} has {self.W.value.dtype} weights but got {a_prev.dtype} input: "
                f"convert the data with X.astype(np.{self.W.value.dtype}) or build the model with dtype=np.{a_prev.dtype}"
            )
        return a_prev

    def forward(self, a_prev):
        """Return ``z = a_prev @ W + b``, shape ``(N, n_out)``; in training mode keep ``a_prev`` for backward."""
        if self.training:
            self.a_prev = a_prev
        return a_prev @ self.W.value + self.b.value

    def backward(self, delta, input_grad=True):
        r"""Given $\delta = \partial L/\partial z$ ``(N, n_out)``, add $a_{\text{prev}}^\top \delta$ to
        ``W.grad`` and $\mathbf 1^\top \delta = \sum_n \delta_n$ to ``b.grad``; return
        $\partial L/\partial a_{\text{prev}} = \delta W^\top$ ``(N, n_in)``, or ``None`` with
        ``input_grad=False`` (the input is data, and nothing needs its gradient).

        The bias is a weight on an input that is always 1, so its gradient is $\mathbf 1^\top \delta$,
        the column sums of $\delta$ written as a product: numpy computes it several times faster
        than ``delta.sum(axis=0)`` for a tall, narrow $\delta$ (``benchmarks/bench_bias_sum.py``).
        """
        self.W.grad += self.a_prev.T @ delta
        self.b.grad += np.ones(len(delta), delta.dtype) @ delta
        return delta @ self.W.value.T if input_grad else None


class Dropout(Layer):
    r"""Inverted dropout: in training, $y = x \odot M / (1 - p)$ with $M_{ij} = 1$ with probability
    $1 - p$ and 0 otherwise, drawn anew at each forward; ``backward`` multiplies by the same
    $M/(1-p)$. In evaluation, $y = x$. The scaling keeps $\mathbb E[y] = x$, so evaluation needs none.

    Args:
        p: the probability of dropping an entry, $0 \le p < 1$. rng: a ``numpy.random.Generator``.
    """

    def __init__(self, p, *, rng):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout needs 0 <= p < 1, got p={p!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"Dropout({p}) needs rng=np.random.default_rng(seed), got {type(rng).__name__}")
        self.p, self.rng, self.mask = float(p), rng, None

    def __repr__(self):
        return f"Dropout({self.p:g})"

    def forward(self, x):
        if not self.training:
            return x
        self.mask = (self.rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self.mask.astype(x.dtype, copy=False)

    def backward(self, grad):
        return grad * self.mask.astype(grad.dtype, copy=False)


class Flatten(Layer):
    """Reshape each example to one row: ``(N, d1, d2, ...)`` to ``(N, d1*d2*...)``; backward reshapes back."""

    in_shape = None

    def __repr__(self):
        return "Flatten()"

    def forward(self, x):
        if self.training:
            self.in_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad):
        return grad.reshape(self.in_shape)


class Embedding(Layer):
    r"""A lookup table: row $i$ of $E$ (shape ``(num, dim)``) is the vector of id $i$.

    ``forward(ids)`` takes integer ``ids`` of any shape and returns $E[\text{ids}]$, of shape
    ``ids.shape + (dim,)``. Each output vector is a copy of one row of $E$, so the gradient of row $i$
    is the sum of the upstream gradients of every position holding id $i$:
    $\partial L/\partial E_i = \sum_{p:\ \text{ids}_p = i} \partial L/\partial y_p$. ``backward`` adds
    them with ``np.add.at``, which adds once per occurrence (``E.grad[ids] += grad`` would keep only
    one of the repeats). Ids are data, not functions of a parameter: there is no input gradient.

    Args:
        num: number of ids (rows). dim: length of each vector.
        rng: a ``numpy.random.Generator``; rows start $\mathcal N(0, \text{std}^2)$ (PyTorch: std 1).
        std: the initial standard deviation. dtype: ``np.float64`` or ``np.float32``. name: for ``E``.
    """

    def __init__(self, num, dim, *, rng, std=1.0, dtype=np.float64, name=""):
        for label, n in (("num", num), ("dim", dim)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Embedding needs a positive integer {label}, got {n!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"Embedding({num}, {dim}) needs rng=np.random.default_rng(seed), got {type(rng).__name__}")
        if np.dtype(dtype).type not in FLOAT_DTYPES:
            raise TypeError(f"Embedding({num}, {dim}) dtype must be float32 or float64, got {np.dtype(dtype)}")
        self.num, self.dim = int(num), int(dim)
        self.E = Parameter(rng.normal(0.0, std, size=(num, dim)).astype(dtype), "E" + str(name))
        self.ids = None

    def __repr__(self):
        return f"Embedding({self.num}, {self.dim})"

    def parameters(self):
        return [self.E]

    def check_input(self, ids):
        """Return ``ids`` as an integer array if every id is in ``0 .. num-1``, else raise naming the first bad one.

        numpy would read ``E[-1]`` as the last row, silently: so ``forward`` checks its ids itself.
        """
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            hint = " (whole numbers stored as floats: use ids.astype(int))" if ids.dtype.kind == "f" else ""
            raise TypeError(f"{self!r} needs integer ids, got an array of dtype {ids.dtype}{hint}")
        if ids.ndim == 0 or ids.size == 0:
            raise ValueError(f"{self!r} needs a batch of ids, got shape {ids.shape}: use e.g. np.array([3, 1, 4])")
        bad = (ids < 0) | (ids >= self.num)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise IndexError(f"{self!r} got id {ids[where]} at index {where}: ids must be in 0..{self.num - 1} "
                             f"(the table has {self.num} rows; make it larger or map the ids into range)")
        return ids

    def forward(self, ids):
        """Return ``E[ids]``, shape ``ids.shape + (dim,)``; in training mode keep ``ids`` for backward."""
        ids = self.check_input(ids)
        if self.training:
            self.ids = ids
        return self.E.value[ids]

    def backward(self, grad, input_grad=False):
        r"""Scatter-add: for every position $p$, add ``grad[p]`` to row ``ids[p]`` of ``E.grad``; return ``None``."""
        np.add.at(self.E.grad, self.ids, grad)
        return None

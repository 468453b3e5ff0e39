r"""Models: ``Sequential`` composes any layers that follow the protocol; ``MLP`` builds one from widths.

``MLP([2, 10, 8, 1], "relu", rng=rng)`` is
``Sequential(Dense(2->10), relu, Dense(10->8), relu, Dense(8->1))`` (an ``"identity"`` output
adds no layer). ``forward`` walks the layers in order; ``backward`` walks them in reverse, so each
``Activation`` turns $\partial L/\partial a^{(l)}$ into $\delta^{(l)}$ and each ``Dense`` turns
$\delta^{(l)}$ into $\partial L/\partial a^{(l-1)} = \delta^{(l)} W^{(l)\top}$ while filling its gradients.
"""

import numpy as np

from ._checks import as_float_array, batch_input, check_finite
from .activations import Activation
from .layers import Dense, Layer

_RELU_LIKE = ("relu", "leaky_relu", "gelu")


class Sequential(Layer):
    """Layers applied in order. A model, and itself a layer: it follows the protocol.

    The model is where data enters, so it checks its input once there: with the first layer's
    ``check_input`` if it has one (``Dense`` checks dtype, width and finiteness), else as a finite
    float batch. The layers inside trust what their neighbours hand them. A ``Sequential`` given as
    a layer is unpacked into its layers.
    """

    def __init__(self, *layers):
        self.layers = []
        for layer in layers:
            self.layers += layer.layers if isinstance(layer, Sequential) else [layer]
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(self.layers):
            if any(layer is other for other in self.layers[:i]):
                raise ValueError(f"Sequential got the layer {layer!r} twice: a layer keeps only its last input, so "
                                 "backward would be wrong; use two layers (they may share Parameters)")
        self.training = True
        self.out_shape = None  # the output shape of the last training forward: what backward expects

    def __repr__(self):
        return f"{type(self).__name__}(" + ", ".join(repr(layer) for layer in self.layers) + ")"

    def parameters(self):
        """Every layer's parameters, in order (each ``Parameter`` once, even if two layers share it)."""
        params = []
        for p in (p for layer in self.layers for p in layer.parameters()):
            if all(p is not q for q in params):
                params.append(p)
        return params

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode=True):
        """Training mode (``mode=True``) or evaluation mode, for the model and every layer."""
        self.training = bool(mode)
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train(self.training)  # a layer made of layers passes the mode on
            else:
                layer.training = self.training
        return self

    def eval(self):
        """Evaluation mode: layers keep nothing for backward (and, e.g., dropout is off)."""
        return self.train(False)

    def forward(self, x):
        """The output for the batch ``x``; in training mode every layer keeps what its backward needs."""
        check = getattr(self.layers[0], "check_input", None)
        x = check(x) if check is not None else batch_input(x, self)
        for layer in self.layers:
            x = layer.forward(x)
        self.out_shape = x.shape if self.training else None  # None: no backward after an evaluation forward
        return x

    __call__ = forward

    def predict(self, x):
        """The output for ``x`` in evaluation mode; the mode and what training forward kept are left as they were."""
        mode, out_shape = self.training, self.out_shape
        try:
            return self.eval().forward(x)
        finally:
            self.train(mode)
            self.out_shape = out_shape

    def backward(self, grad, input_grad=False):
        r"""Back-propagate ``grad`` $= \partial L/\partial\,\text{output}$, last layer first.

        Every ``.grad`` is added to. The model's input is data, and no parameter lies before it,
        so by default the pass stops at the first layer that has parameters and asks it for its
        parameter gradients only: for an ``MLP``, the first ``Dense`` skips
        $\delta^{(1)} W^{(1)\top}$, as large a product as any of the pass, and ``None`` is
        returned (PyTorch, too, computes no gradient for an input that does not require one).
        With ``input_grad=True`` every layer runs in full and $\partial L/\partial x$ is returned.
        """
        grad = self._check_grad(grad)
        needed = self.layers if input_grad else self.layers[self._first_with_parameters():]
        if not needed:
            return None  # no parameters, and no input gradient wanted: nothing to compute
        for layer in reversed(needed[1:]):
            grad = layer.backward(grad)
        first = needed[0]
        return first.backward(grad) if input_grad else first.backward(grad, input_grad=False)

    def _first_with_parameters(self):
        return next((i for i, layer in enumerate(self.layers) if layer.parameters()), len(self.layers))

    def _check_grad(self, grad):
        if self.out_shape is None:
            raise RuntimeError(f"{self!r}.backward needs a forward pass in training mode just before it, "
                               "to keep what backward uses: call model.train(), then model.forward(X)")
        grad = as_float_array(grad, self.backward, "grad")
        if grad.shape != self.out_shape:
            raise ValueError(f"{self!r}.backward got grad of shape {grad.shape}: expected {self.out_shape}, "
                             f"the shape of the last training forward's output")
        check_finite(grad, self.backward, "grad")
        return grad


class Residual(Layer):
    r"""A residual block: $y = x + F(x)$, with $F$ the layers given, applied in order.

    Backward adds the two paths: $\partial L/\partial x = \partial L/\partial y + F'(x)^\top \partial L/\partial y$,
    so the gradient reaches $x$ unchanged along the identity, however small $F$'s share.
    """

    def __init__(self, *layers):
        self.inner = Sequential(*layers)

    def __repr__(self):
        return "Residual(" + ", ".join(repr(layer) for layer in self.inner.layers) + ")"

    def parameters(self):
        return self.inner.parameters()

    def train(self, mode=True):
        self.training = bool(mode)
        self.inner.train(mode)
        return self

    def forward(self, x):
        out = self.inner.forward(x)
        if out.shape != x.shape:
            raise ValueError(f"{self!r}: the layers map {x.shape} to {out.shape}; a residual block needs the same shape")
        return x + out

    def backward(self, grad, input_grad=True):
        inner = self.inner.backward(grad, input_grad=input_grad)
        return grad + inner if input_grad else None


class MLP(Sequential):
    """Fully connected network of any depth, batch-first: a ``Sequential`` of ``Dense`` and ``Activation`` layers.

    Args:
        sizes: layer widths ``[n_0, n_1, ..., n_D]``; ``n_0`` is the input width.
        activation: hidden activation name, or a list with one name per hidden layer.
        output_activation: activation after the last ``Dense`` (default ``"identity"``:
            the network returns logits, and the loss applies sigmoid/softmax itself).
        rng: ``numpy.random.Generator`` for the initial weights.
        init: ``"auto"`` (He for ReLU-like layers, Xavier otherwise), ``"xavier"``,
            ``"he"`` or a standard deviation.
        dtype: ``np.float64`` or ``np.float32`` for every parameter.
    """

    def __init__(self, sizes, activation="relu", output_activation="identity", *, rng, init="auto", dtype=np.float64):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output width, got sizes={sizes}")
        n_hidden = len(sizes) - 2
        acts = [activation] * n_hidden if isinstance(activation, str) else list(activation)
        if len(acts) != n_hidden:
            raise ValueError(f"MLP{tuple(sizes)} has {n_hidden} hidden layer(s) but got {len(acts)} activation(s): {acts}")
        acts.append(output_activation)
        layers = []
        for l, (n_in, n_out, act) in enumerate(zip(sizes[:-1], sizes[1:], acts), start=1):
            layer_init = init if init != "auto" else ("he" if act in _RELU_LIKE else "xavier")
            layers.append(Dense(n_in, n_out, rng=rng, init=layer_init, dtype=dtype, name=l))
            if act != "identity":
                layers.append(Activation(act))
        super().__init__(*layers)
        self.sizes = sizes

    def __repr__(self):
        return "MLP(" + ", ".join(repr(layer) for layer in self.layers) + ")"

    @property
    def dense_layers(self):
        """The ``Dense`` layers in order: ``dense_layers[l-1]`` holds $W^{(l)}, b^{(l)}$."""
        return [layer for layer in self.layers if isinstance(layer, Dense)]

r"""A multilayer perceptron: ``Dense`` and ``Activation`` layers, alternating.

``MLP([2, 10, 8, 1], "relu", rng=rng)`` builds
``Dense(2->10), relu, Dense(10->8), relu, Dense(8->1)`` (an ``"identity"`` output
adds no layer). ``forward`` walks the layers in order, caching what each needs;
``backward`` walks them in reverse, so each ``Activation`` turns
$\partial L/\partial a^{(l)}$ into $\delta^{(l)}$ and each ``Dense`` turns $\delta^{(l)}$
into $\partial L/\partial a^{(l-1)} = \delta^{(l)} W^{(l)\top}$ while filling its gradients.
"""

import numpy as np

from .activations import Activation
from .layers import Dense

_RELU_LIKE = ("relu", "leaky_relu", "gelu")


class MLP:
    """Fully connected network of any depth, batch-first.

    Args:
        sizes: layer widths ``[n_0, n_1, ..., n_L]``; ``n_0`` is the input width.
        activation: hidden activation name, or a list with one name per hidden layer.
        output_activation: activation after the last ``Dense`` (default ``"identity"``:
            the network returns logits, and the loss applies sigmoid/softmax itself).
        rng: ``numpy.random.Generator`` for the initial weights.
        init: ``"auto"`` (He for ReLU-like layers, Xavier otherwise), ``"xavier"``,
            ``"he"`` or a standard deviation.
        dtype: ``np.float64`` or ``np.float32`` for every parameter.

    The first layer checks the input ``X`` (float, ``(N, n_0)``, finite); the later layers skip
    that check (``check_input = False``), because each of their inputs is computed by the layer
    before from arrays already checked. The loss checks the network's output. Backward mirrors
    this: the last layer checks ``grad_out`` (float, the output's shape), and the layers before it
    skip that check (``check_grad = False``), because the layer after computes their gradient.
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
        self.sizes = sizes
        self.layers = []
        for l, (n_in, n_out, act) in enumerate(zip(sizes[:-1], sizes[1:], acts), start=1):
            layer_init = init if init != "auto" else ("he" if act in _RELU_LIKE else "xavier")
            self.layers.append(Dense(n_in, n_out, rng=rng, init=layer_init, dtype=dtype, name=l))
            if act != "identity":
                self.layers.append(Activation(act))
        for layer in self.layers[1:]:
            layer.check_input = False  # its input is computed by the layer before, from a checked X
        for layer in self.layers[:-1]:
            layer.check_grad = False  # its gradient is computed by the layer after, from a checked grad_out

    def __repr__(self):
        return "MLP(" + ", ".join(repr(layer) for layer in self.layers) + ")"

    @property
    def dense_layers(self):
        """The ``Dense`` layers in order: ``dense_layers[l-1]`` holds $W^{(l)}, b^{(l)}$."""
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def parameters(self):
        """Every trainable ``Parameter``: ``[W1, b1, W2, b2, ...]``."""
        return [p for layer in self.dense_layers for p in layer.parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def forward(self, X):
        """Return the network output ``(N, n_L)`` for inputs ``X`` ``(N, n_0)``, caching for backward."""
        out = X
        for layer in self.layers:
            out = layer.forward(out)
        return out

    def backward(self, grad_out, input_grad=True):
        """Back-propagate ``grad_out`` $= \\partial L/\\partial \\hat y$; fills every ``.grad``, returns $\\partial L/\\partial X$.

        With ``input_grad=False`` (training) the first layer skips $\\partial L/\\partial X$, the largest
        matrix product of the pass that nothing uses, and ``None`` is returned.
        """
        grad = grad_out
        for layer in reversed(self.layers[1:]):
            grad = layer.backward(grad)
        first = self.layers[0]
        return first.backward(grad) if input_grad else first.backward(grad, input_grad=False)

    def predict(self, X):
        """The network output for ``X`` without touching the caches (safe between forward and backward)."""
        out = X
        for layer in self.layers:
            out = layer.forward(out, cache=False)
        return out

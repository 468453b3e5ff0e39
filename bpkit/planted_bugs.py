r"""A catalogue of deliberately wrong backward passes, to show what a gradient check catches.

Each bug is the smallest change to bpkit's real code that is easy to make by hand: a
subclass of ``Dense``, ``Activation``, ``MLP`` or a loss that overrides *one* method, whose
docstring names the mistake and gives the right line. Everything else is bpkit's own code.

``BUGS`` maps a name to a :class:`PlantedBug`. ``bug.build(rng, buggy=True)`` returns a
seeded set-up ``(model, loss, X, y)`` with the bug in it; ``buggy=False`` returns the *same*
set-up (same weights, same data) with bpkit's correct code, so a check that fails on one
and passes on the other has found exactly the bug. ``bug.touches`` names the parameters
whose gradient the bug makes wrong.

The set-ups are small tanh networks (smooth, so no kink can fake a failure) with a batch of
``N = 8`` examples. These classes are for demonstrations only: never train with them.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .activations import Activation, sigmoid
from .layers import Dense
from .losses import BCEWithLogits, MSE
from .model import MLP

N = 8
SIZES = (4, 6, 6, 5, 2)           # Dense 2 is square (6 -> 6); b3 has 5 entries
SHARED_SIZES = (4, 6, 6, 6, 2)    # Dense 2 and Dense 3 are both 6 -> 6, so they can share W and b
ALL = ("W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4")


class ActivationWithoutDerivative(Activation):
    def backward(self, grad_a):
        r"""Bug: returns $\partial L/\partial a$ as if it were $\delta$, forgetting $f'(z)$.

        Right: ``return grad_a * self.f_prime(self.z, **self.kwargs)``.
        """
        return grad_a


class DenseTransposedInputGrad(Dense):
    def backward(self, delta, input_grad=True):
        r"""Bug: $\partial L/\partial a_{\text{prev}} = \delta W$; right: $\delta W^\top$ (runs only if W is square)."""
        a_prev = self.a_prev
        self.W.grad += a_prev.T @ delta
        self.b.grad += delta.sum(axis=0)
        return delta @ self.W.value if input_grad else None     # right: delta @ self.W.value.T


class DenseTransposedWeightGrad(Dense):
    def backward(self, delta, input_grad=True):
        r"""Bug: $\delta^\top a_{\text{prev}}$ (the column-vector layout, W of shape (n_out, n_in)); right: $a_{\text{prev}}^\top \delta$."""
        a_prev = self.a_prev
        self.W.grad += delta.T @ a_prev      # right: a_prev.T @ delta
        self.b.grad += delta.sum(axis=0)
        return delta @ self.W.value.T if input_grad else None


class DenseBiasSummedOverUnits(Dense):
    def backward(self, delta, input_grad=True):
        r"""Bug: sums $\delta$ over the batch *and* the units, then broadcasts; right: ``delta.sum(axis=0)``."""
        a_prev = self.a_prev
        self.W.grad += a_prev.T @ delta
        self.b.grad += delta.sum()           # right: delta.sum(axis=0)
        return delta @ self.W.value.T if input_grad else None


class DenseOverwritingGrad(Dense):
    def backward(self, delta, input_grad=True):
        r"""Bug: ``=`` instead of ``+=``: when W and b are used twice, the second write erases the first.

        Right: ``self.W.grad += a_prev.T @ delta`` and ``self.b.grad += delta.sum(axis=0)``.
        """
        a_prev = self.a_prev
        self.W.grad = a_prev.T @ delta
        self.b.grad = delta.sum(axis=0)
        return delta @ self.W.value.T if input_grad else None


class MSEWithoutMean(MSE):
    def _grad(self, diff):
        r"""Bug: $\partial L/\partial \hat y = \hat y - y$ forgets the $1/N$ of the mean; right: ``diff / diff.shape[0]``."""
        return diff


class BCEWrongSign(BCEWithLogits):
    def _grad(self, z, y):
        r"""Bug: $(y - \sigma(z))/N$ has the wrong sign; right: ``(sigmoid(z) - y) / z.shape[0]``."""
        return (y - sigmoid(z)) / z.shape[0]


class MLPWithoutZeroGrad(MLP):
    def zero_grad(self):
        """Bug: resets nothing, as if the training loop never called ``zero_grad``: the next
        backward pass *adds* to the previous step's gradients.

        Right: ``for p in self.parameters(): p.zero_grad()``.
        """


class MLPSkipsFirstLayer(MLP):
    def backward(self, grad_out, input_grad=False):
        """Bug: the loop stops at index 1, so the first ``Dense`` layer never receives its delta
        and ``W1.grad``, ``b1.grad`` stay zero. Right: ``for layer in reversed(self.layers)``."""
        grad = grad_out
        for layer in reversed(self.layers[1:]):
            grad = layer.backward(grad)
        return grad


class SharedLayerMLP(MLP):
    """An MLP that applies one layer twice: Dense layers ``shared`` (1-based) use the same ``W`` and ``b``.

    This is correct code (bpkit's ``+=`` adds both uses); the catalogue plants ``=`` into it.
    ``parameters()`` lists each shared ``Parameter`` once, as ``Sequential.parameters`` always does.
    """

    def __init__(self, sizes, activation="tanh", *, rng, shared=(2, 3), **kwargs):
        super().__init__(sizes, activation, rng=rng, **kwargs)
        dense = self.dense_layers
        if not all(1 <= l <= len(dense) for l in shared) or len(set(shared)) != 2:
            raise ValueError(f"SharedLayerMLP{tuple(sizes)} has Dense layers 1..{len(dense)}: cannot share {shared}")
        first, second = (dense[l - 1] for l in shared)
        if first.W.value.shape != second.W.value.shape:
            raise ValueError(f"SharedLayerMLP{tuple(sizes)} cannot share Dense layers {shared}: their W have shapes "
                             f"{first.W.value.shape} and {second.W.value.shape}")
        second.W, second.b = first.W, first.b


def swap_layer(model, index, cls):
    """Turn ``model.layers[index]`` into a ``cls``, a subclass of its class; its weights and what it keeps stay."""
    layer = model.layers[index]
    if type(layer) not in cls.__bases__:
        raise TypeError(f"swap_layer: model.layers[{index}] is {layer!r}, but {cls.__name__} "
                        f"can only replace a {cls.__bases__[0].__name__}")
    layer.__class__ = cls
    return layer


@dataclass(frozen=True)
class PlantedBug:
    """One entry of the catalogue.

    Attributes:
        build: ``build(rng, buggy=True) -> (model, loss, X, y)``, the seeded set-up.
        code: the buggy method, for ``bk.show_source``.
        touches: names of the parameters whose gradient is wrong.
        summary: the mistake, in a few words.
    """

    build: Callable
    code: Callable
    touches: tuple
    summary: str


def _net(rng, cls=MLP, sizes=SIZES, binary=False):
    model = cls(sizes, "tanh", rng=rng)
    X = rng.normal(size=(N, sizes[0]))
    y = (rng.uniform(size=(N, sizes[-1])) < 0.5).astype(np.float64) if binary else rng.normal(size=(N, sizes[-1]))
    return model, X, y


def _layer_bug(cls, *indices, sizes=SIZES, model_cls=MLP):
    def build(rng, buggy=True):
        model, X, y = _net(rng, model_cls, sizes)
        for i in indices if buggy else ():
            swap_layer(model, i, cls)
        return model, MSE(), X, y
    return build


def _loss_bug(cls, correct_cls, binary=False):
    def build(rng, buggy=True):
        model, X, y = _net(rng, binary=binary)
        return model, (cls if buggy else correct_cls)(), X, y
    return build


def _model_bug(cls, previous_step=False):
    def build(rng, buggy=True):
        model, X, y = _net(rng, cls if buggy else MLP)
        loss = MSE()
        if previous_step:  # one earlier training step on another batch leaves its gradients behind
            X_prev, y_prev = rng.normal(size=X.shape), rng.normal(size=y.shape)
            model.zero_grad()
            loss.forward(model.forward(X_prev), y_prev)
            model.backward(loss.backward())
        return model, loss, X, y
    return build


BUGS = {
    "missing_activation_derivative": PlantedBug(
        _layer_bug(ActivationWithoutDerivative, 3), ActivationWithoutDerivative.backward,
        ("W1", "b1", "W2", "b2"), "the activation after Dense 2 returns grad_a, forgetting f'(z)"),
    "transposed_input_grad": PlantedBug(
        _layer_bug(DenseTransposedInputGrad, 2), DenseTransposedInputGrad.backward,
        ("W1", "b1"), "Dense 2 returns delta @ W instead of delta @ W.T"),
    "transposed_weight_grad": PlantedBug(
        _layer_bug(DenseTransposedWeightGrad, 2), DenseTransposedWeightGrad.backward,
        ("W2",), "Dense 2 adds delta.T @ a_prev to W.grad instead of a_prev.T @ delta"),
    "bias_summed_over_units": PlantedBug(
        _layer_bug(DenseBiasSummedOverUnits, 4), DenseBiasSummedOverUnits.backward,
        ("b3",), "Dense 3 adds delta.sum() to b.grad instead of delta.sum(axis=0)"),
    "overwritten_shared_grad": PlantedBug(
        _layer_bug(DenseOverwritingGrad, 2, 4, sizes=SHARED_SIZES, model_cls=SharedLayerMLP),
        DenseOverwritingGrad.backward, ("W2", "b2"), "a layer used twice writes its gradients with = instead of +="),
    "missing_batch_mean": PlantedBug(
        _loss_bug(MSEWithoutMean, MSE), MSEWithoutMean._grad, ALL, "the MSE gradient forgets the 1/N"),
    "wrong_sign": PlantedBug(
        _loss_bug(BCEWrongSign, BCEWithLogits, binary=True), BCEWrongSign._grad, ALL,
        "the BCE gradient is y - sigmoid(z) instead of sigmoid(z) - y"),
    "stale_gradient": PlantedBug(
        _model_bug(MLPWithoutZeroGrad, previous_step=True), MLPWithoutZeroGrad.zero_grad, ALL,
        "zero_grad is never done, so the previous step's gradients are added in"),
    "skipped_first_layer": PlantedBug(
        _model_bug(MLPSkipsFirstLayer), MLPSkipsFirstLayer.backward, ("W1", "b1"),
        "the backward loop stops one layer early"),
}

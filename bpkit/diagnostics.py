r"""Is it training? Four checks to make before trusting a long run.

1. **The loss at initialisation.** With small random weights the logits are near 0, the softmax is
   near uniform, and the cross-entropy starts near $\log C$ for $C$ classes ($\log 2$ for binary
   cross-entropy on one logit). A start far above means weights that are too large, or targets that
   do not match the outputs.
2. **Overfit a tiny batch.** A network can memorise a dozen examples: if the loss on them does not
   fall close to 0 in a few hundred steps, something between the loss and the update is broken.
3. **Update-to-weight ratios.** $\lVert \Delta W\rVert / \lVert W\rVert$ for each parameter over
   one step. Around $10^{-3}$ is the usual healthy size; near 1 the step is too large, far below
   $10^{-5}$ it is too small (or the gradient has vanished).
4. **A learning-rate range test.** Train a fresh model for a few steps while the learning rate grows
   geometrically; the loss falls fastest over a band of rates and blows up beyond it. A rate a little
   below where the loss is lowest is a good start.
"""

import math

import numpy as np

from .losses import BCEWithLogits, SoftmaxCrossEntropy
from .train import train_step


def expected_initial_loss(loss, n_outputs):
    r"""The loss of a network whose logits are all 0: $\log C$ (softmax cross-entropy over
    $C$ = ``n_outputs`` classes) or $\log 2$ (binary cross-entropy); ``None`` for any other loss."""
    if isinstance(loss, SoftmaxCrossEntropy):
        return math.log(n_outputs)
    if isinstance(loss, BCEWithLogits):
        return math.log(2.0)
    return None


def initial_loss(model, loss, X, y):
    """``(the loss of the untrained model on (X, y), the loss of all-zero logits)``: compare the two."""
    y_hat = model.predict(X)
    return loss.forward(y_hat, y), expected_initial_loss(loss, y_hat.shape[1])


def overfit_batch(model, loss, optimizer, X, y, steps=200):
    """Train on the one batch ``(X, y)`` for ``steps`` steps; return the loss before each step."""
    model.train()
    return [train_step(model, loss, optimizer, X, y)[0] for _ in range(steps)]


def update_ratios(model, loss, optimizer, X, y):
    r"""Take one training step on ``(X, y)``; return ``{name: ||ΔW|| / ||W||}`` for each weight matrix.

    Only the parameters with two or more axes: a bias starts at 0, where the ratio means nothing.
    Names can repeat across layers, so each key is the position in ``optimizer.params`` and the name (``"0:W1"``).
    """
    before = [p.value.copy() for p in optimizer.params]
    model.train()
    train_step(model, loss, optimizer, X, y)
    return {f"{k}:{p.name}": float(np.linalg.norm(p.value - old) / np.linalg.norm(old))
            for k, (p, old) in enumerate(zip(optimizer.params, before)) if p.value.ndim >= 2}


def lr_range_test(make_model, loss, make_optimizer, X, y, lr_min, lr_max, steps, batch_size, rng):
    r"""Train one fresh model for ``steps`` minibatch steps, with the learning rate growing
    geometrically from ``lr_min`` to ``lr_max``; return ``(learning rates, losses)``.

    Stops early when the loss is no longer finite or exceeds 4 times the lowest so far: beyond that
    point the run has diverged and the remaining rates only repeat it.

    Args:
        make_model: ``make_model()`` returns a new model (the same seed every call, for a fair test).
        make_optimizer: ``make_optimizer(params, lr)`` returns an optimizer.
        steps: the number of rates tried. batch_size, rng: minibatches drawn with replacement.
    """
    if not 0 < lr_min < lr_max:
        raise ValueError(f"lr_range_test needs 0 < lr_min < lr_max, got lr_min={lr_min!r}, lr_max={lr_max!r}")
    model = make_model()
    optimizer = make_optimizer(model.parameters(), lr_min)
    rates, losses = [], []
    model.train()
    for lr in np.geomspace(lr_min, lr_max, steps):
        optimizer.lr = float(lr)
        rows = rng.integers(0, len(X), size=batch_size)
        try:
            value = train_step(model, loss, optimizer, X[rows], y[rows])[0]
        except FloatingPointError:
            break
        rates.append(float(lr))
        losses.append(value)
        if value > 4 * min(losses):
            break
    return rates, losses

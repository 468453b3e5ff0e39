r"""The training loop, written once.

For each minibatch: forward ($\hat y$ = ``model.forward(X_batch)``), loss, backward
(``model.backward(loss.backward())`` adds to every ``.grad``), then ``optimizer.step()``
and ``optimizer.zero_grad()``. With ``accumulate = k`` the gradients of $k$ minibatches,
each scaled by $1/k$, are summed before one step:
$\tfrac1k \sum_{j=1}^{k} \nabla L_{B_j} = \nabla L_{B_1 \cup \dots \cup B_k}$ when the batches
have equal size, so $k$ batches of $B$ make the same step as one batch of $kB$.
"""

import math
import os
import sys

import numpy as np

from ._checks import check_finite
from .data import check_pair, minibatches
from .optim import clip_grad_norm


def accuracy(y_hat, y):
    r"""Fraction of correct predictions from *logits* ``y_hat`` ``(N, C)``.

    One column: predict 1 where $z > 0$ (that is, $\sigma(z) > 0.5$) and compare with
    ``y > 0.5``. ``C`` columns: predict $\arg\max_c z_c$ and compare with integer labels
    ``(N,)`` or with the argmax of one-hot rows ``(N, C)``.
    """
    y = np.asarray(y)
    if y_hat.shape[1] == 1:
        return float(np.mean((y_hat[:, 0] > 0) == (y.reshape(len(y), -1)[:, 0] > 0.5)))
    labels = y if y.ndim == 1 else y.argmax(axis=1)
    return float(np.mean(y_hat.argmax(axis=1) == labels))


def evaluate(model, loss, X, y, metric="accuracy"):
    """Loss (and accuracy if ``metric``) of the model on ``(X, y)``, without touching layer caches."""
    y_hat = model.predict(X)
    return loss.forward(y_hat, y), (accuracy(y_hat, y) if metric else None)


def accumulate_gradients(model, loss, batches):
    r"""Add $\frac{|B_j|}{|B|} \nabla L_{B_j}$ for each ``(X_batch, y_batch)`` $= B_j$ in ``batches`` to the ``.grad`` s.

    With $|B| = \sum_j |B_j|$, the sum is exactly the gradient of the mean loss over all the
    examples, even when the batches differ in size (a plain $\tfrac1k$ per batch is right only
    for equal sizes). Returns the list of the batch losses. No optimizer step is taken.
    """
    batches = list(batches)
    total = sum(len(Xb) for Xb, _ in batches)
    return [_backprop(model, loss, Xb, yb, len(Xb) / total)[0] for Xb, yb in batches]


def _backprop(model, loss, X_batch, y_batch, scale):
    y_hat = model.forward(X_batch)
    value = loss.forward(y_hat, y_batch)
    grad_out = loss.backward()
    model.backward(grad_out if scale == 1 else grad_out * scale, input_grad=False)
    return value, y_hat


class History:
    """What ``fit`` measured, one entry per epoch in each list.

    ``train_loss`` and ``train_acc`` are means over the epoch's samples, taken as each batch
    is trained (the weights change during the epoch); ``val_loss``/``val_acc`` use the
    weights at the end of the epoch; ``lr`` is the rate used during the epoch.
    """

    def __init__(self, metric, has_val):
        keys = ["epoch", "lr", "train_loss"] + (["train_acc"] if metric else [])
        if has_val:
            keys += ["val_loss"] + (["val_acc"] if metric else [])
        self._keys = keys
        for key in keys:
            setattr(self, key, [])

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        if not self.epoch:
            return "History(no epochs)"
        last = ", ".join(f"{k}={getattr(self, k)[-1]:.4g}" for k in self._keys[2:])
        return f"History({len(self)} epochs; last: {last})"

    def record(self, **values):
        for key in self._keys:
            getattr(self, key).append(values[key])

    def as_dict(self):
        """``{name: list of per-epoch values}``, e.g. for ``pandas.DataFrame(history.as_dict())``."""
        return {key: list(getattr(self, key)) for key in self._keys}


def _check_fit_args(epochs, accumulate, metric, clip_norm, X_val, y_val, rng):
    for label, n in (("epochs", epochs), ("accumulate", accumulate)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"fit got {label}={n!r}: expected a positive integer")
    if metric not in ("accuracy", None):
        raise ValueError(f"fit got metric={metric!r}: expected 'accuracy' or None")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"fit got clip_norm={clip_norm!r}: expected None or a positive number")
    if (X_val is None) != (y_val is None):
        raise ValueError("fit got only one of X_val and y_val: pass both or neither")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"fit needs rng=np.random.default_rng(seed), got {type(rng).__name__}")


def _diverged(epoch, step, optimizer, what):
    return FloatingPointError(
        f"fit: training diverged at epoch {epoch}, step {step}: {what}. "
        f"Try a smaller learning rate (lr={optimizer.lr:g}) or clip_norm."
    )


def _watched():
    """True when a person is probably watching: a Jupyter kernel, or a terminal on stderr.

    ``BPKIT_PROGRESS=0`` in the environment says no one is: the book build, the tests and
    ``scripts/execute_chapters.py`` set it, so that stored notebook outputs never hold timings.
    """
    if os.environ.get("BPKIT_PROGRESS", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":  # Jupyter
        return True
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def _progress_bar(epochs, progress):
    """A text tqdm bar on stderr if ``progress`` is true (or ``None`` and ``_watched()``), else a plain range."""
    if progress is None:
        progress = _watched()
    if not progress:
        return range(1, epochs + 1), None
    from tqdm import tqdm  # the text bar: it works in a terminal and in Jupyter, with no widget library

    bar = tqdm(range(1, epochs + 1), desc="epochs", file=sys.stderr)
    return bar, bar


def fit(model, loss, optimizer, X, y, *, epochs, batch_size, rng, X_val=None, y_val=None,
        metric="accuracy", accumulate=1, clip_norm=None, schedule=None, progress=None):
    """Train ``model`` on ``(X, y)`` with minibatches and return a ``History``.

    Args:
        model: anything with ``forward``, ``backward``, ``predict`` (an ``MLP``).
        loss: a bpkit loss. optimizer: a bpkit optimizer over ``model.parameters()``.
        X: inputs ``(N, n_0)``, the model's dtype. y: targets as the loss expects them.
        epochs: passes over the data. batch_size: $B$.
        rng: shuffles the rows each epoch (one full batch is not shuffled: row order cannot change its gradient).
        X_val, y_val: optional held-out data, evaluated after each epoch.
        metric: ``"accuracy"`` (outputs are logits) or ``None`` (e.g. regression).
        accumulate: $k$, minibatches whose gradients (each scaled $1/k$) make one step;
            a last incomplete group at the end of an epoch still makes a step.
        clip_norm: if set, ``clip_grad_norm`` to this global norm before each step.
        schedule: a ``StepLR``/``CosineLR`` on ``optimizer``, stepped after each epoch.
        progress: show a progress bar (tqdm, on stderr) with the epoch and the training loss.
            ``None`` (the default) shows it when someone is probably watching: in Jupyter or in a
            terminal, unless the environment sets ``BPKIT_PROGRESS=0``, as this book's build and
            tests do so that stored notebook outputs never contain timings. ``True`` or ``False``
            decides. Nothing else is ever printed.
    Returns:
        a ``History``. The gradients are zeroed before the first step.

    Before training, ``fit`` checks that every entry of ``X`` and ``X_val`` is finite, and that ``X_val``
    has ``X``'s row shape and dtype; an error names the row and column of ``X`` itself. The model's first
    layer checks the first minibatch as always (dtype, width) and then skips its own check, which would
    test the finiteness of the same rows again at every step.
    Raises:
        FloatingPointError: the loss or the weights stopped being finite (names epoch and step).
    """
    _check_fit_args(epochs, accumulate, metric, clip_norm, X_val, y_val, rng)
    X, y = check_pair(X, y, "fit")
    _check_rows(X, X_val, y_val)
    history = History(metric, X_val is not None)
    epoch_iter, bar = _progress_bar(epochs, progress)
    optimizer.zero_grad()
    first = _input_layer(model)
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for epoch in epoch_iter:
                lr, sums = optimizer.lr, _train_epoch(model, loss, optimizer, X, y, epoch, batch_size, rng,
                                                      metric, accumulate, clip_norm, first)
                n = len(X)
                row = {"epoch": epoch, "lr": lr, "train_loss": sums[0] / n, "train_acc": sums[1] / n}
                if X_val is not None:
                    row["val_loss"], row["val_acc"] = evaluate(model, loss, X_val, y_val, metric)
                history.record(**row)
                if bar is not None:
                    bar.set_postfix(loss=f"{row['train_loss']:.4f}")
                if schedule is not None:
                    schedule.step()
    finally:
        if first is not None:
            first.check_input = True
    return history


def _check_rows(X, X_val, y_val):
    """Every entry of ``X`` and ``X_val`` finite; ``X_val`` shaped and typed like ``X`` row for row."""
    if X_val is not None:
        X_val, _ = check_pair(X_val, y_val, "fit (validation data)")
        if X_val.shape[1:] != X.shape[1:] or X_val.dtype != X.dtype:
            raise ValueError(f"fit got X_val of shape {X_val.shape} and dtype {X_val.dtype} for X of shape {X.shape} "
                             f"and dtype {X.dtype}: expected rows of the same shape and dtype")
    for what, data in (("X", X), ("X_val", X_val)):
        if data is not None and data.dtype.kind == "f":  # other dtypes: the first layer refuses them
            check_finite(data, "fit", what)


def _input_layer(model):
    """The model's first layer if it checks its input (``check_input``), else ``None``.

    ``fit`` has checked that every entry of ``X`` is finite; after the first minibatch, whose dtype and
    width this layer checks, it turns the layer's check off until training ends.
    """
    layers = getattr(model, "layers", None)
    first = layers[0] if layers else None
    return first if getattr(first, "check_input", False) else None


def _group_size(step, accumulate, batch_size, n):
    """Number of examples in the accumulation group of minibatch ``step`` (1-based); the last batch may be short."""
    first = (step - 1) // accumulate * accumulate * batch_size
    return min(first + accumulate * batch_size, n) - first


def _train_epoch(model, loss, optimizer, X, y, epoch, batch_size, rng, metric, accumulate, clip_norm, first):
    """One pass over the data; returns (sum of loss x batch size, number correct).

    ``first``: the model's first layer (or ``None``), whose input check is turned off after the first minibatch.
    """
    total_loss, correct, step = 0.0, 0.0, 0
    if isinstance(batch_size, (int, np.integer)) and batch_size == len(X):
        batches = [(X, y)]  # one full batch: row order cannot change its gradient
    else:
        batches = minibatches(X, y, batch_size, rng)  # also checks batch_size
    n_batches = math.ceil(len(X) / batch_size)
    for step, (X_batch, y_batch) in enumerate(batches, start=1):
        try:
            # each minibatch weighs by its share of the examples in its accumulation group
            value, y_hat = _backprop(model, loss, X_batch, y_batch, len(X_batch) / _group_size(step, accumulate, batch_size, len(X)))
            if first is not None:
                first.check_input = False  # it has checked dtype and width; fit checked every entry of X
            finite = math.isfinite(value)
            if finite and (step % accumulate == 0 or step == n_batches):
                if clip_norm is not None:
                    clip_grad_norm(optimizer.params, clip_norm)
                optimizer.step()
                optimizer.zero_grad()
        except (FloatingPointError, ValueError) as err:
            if isinstance(err, ValueError) and all(np.isfinite(p.value).all() for p in optimizer.params):
                raise
            raise _diverged(epoch, step, optimizer, str(err)) from err
        if not finite:
            raise _diverged(epoch, step, optimizer, f"the loss is {value}")
        total_loss += value * len(X_batch)
        if metric:
            correct += accuracy(y_hat, y_batch) * len(X_batch)
    return total_loss, correct

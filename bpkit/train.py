r"""The training loop, written once: ``fit``, and the pieces around it.

For each minibatch, ``train_step``: ``zero_grad``, forward ($\hat y$ = ``model.forward(X_batch)``), loss,
backward (``model.backward(loss.backward())`` adds to every ``.grad``), then ``optimizer.step()``.
``accumulate_gradients`` sums the gradients of several minibatches before one step:
$\sum_j \tfrac{|B_j|}{|B|} \nabla L_{B_j} = \nabla L_{B}$ for $B = B_1 \cup \dots \cup B_k$.
"""

import contextlib
import math
import sys
import time

import numpy as np

from ._checks import batch_input, check_finite
from .data import check_batch_size, check_pair, minibatches
from .optim import clip_grad_norm


def accuracy(y_hat, y):
    r"""Fraction of correct predictions from *logits* ``y_hat`` ``(N, C)``.

    One column: predict 1 where $z > 0$ (that is, $\sigma(z) > 0.5$) and compare with
    ``y > 0.5``. ``C`` columns: predict $\arg\max_c z_c$ and compare with integer labels
    ``(N,)`` or with the argmax of one-hot rows ``(N, C)``.
    """
    y_hat, y = batch_input(y_hat, "accuracy", what="logits y_hat"), np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"accuracy got targets y of dtype {y.dtype}: expected numbers (class labels or 0/1 targets)")
    if y.ndim not in (1, 2) or len(y) != len(y_hat) or y.size == 0:
        raise ValueError(f"accuracy got {len(y_hat)} predictions (y_hat {y_hat.shape}) and targets y of shape "
                         f"{y.shape}: expected one label, or one row, per prediction")
    if y_hat.shape[1] == 1:
        return float(np.mean((y_hat[:, 0] > 0) == (y.reshape(len(y), -1)[:, 0] > 0.5)))
    labels = y if y.ndim == 1 else y.argmax(axis=1)
    return float(np.mean(y_hat.argmax(axis=1) == labels))


def evaluate(model, loss, X, y):
    """Loss, and accuracy for a classification loss (else ``None``), of the model on ``(X, y)`` in evaluation mode."""
    y_hat = model.predict(X)
    return loss.forward(y_hat, y), (accuracy(y_hat, y) if loss.classifier else None)


def accumulate_gradients(model, loss, batches):
    r"""Add $\frac{|B_j|}{|B|} \nabla L_{B_j}$ for each ``(X_batch, y_batch)`` $= B_j$ in ``batches`` to the ``.grad`` s.

    With $|B| = \sum_j |B_j|$, the sum is exactly the gradient of the mean loss over all the
    examples, even when the batches differ in size (a plain $\tfrac1k$ per batch is right only
    for equal sizes). Returns the list of the batch losses. No optimizer step is taken.
    """
    batches = list(batches)
    total = sum(len(X_batch) for X_batch, _ in batches)
    losses = []
    for X_batch, y_batch in batches:
        losses.append(loss.forward(model.forward(X_batch), y_batch))
        model.backward(loss.backward() * (len(X_batch) / total))
    return losses


class History:
    """What ``fit`` measured, one entry per epoch in each list.

    ``train_loss`` (and ``train_acc`` for a classification loss) are means over the epoch's samples,
    taken as each batch is trained (the weights change during the epoch); ``val_loss``/``val_acc``
    use the weights at the end of the epoch; ``lr`` is the rate used during the epoch.
    """

    def __init__(self, classifier, has_val):
        keys = ["epoch", "lr", "train_loss"] + (["train_acc"] if classifier else [])
        if has_val:
            keys += ["val_loss"] + (["val_acc"] if classifier else [])
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


def train_step(model, loss, optimizer, X_batch, y_batch, clip_norm=None):
    """One step of gradient descent on a minibatch; returns its loss (before the step) and the model's output."""
    optimizer.zero_grad()
    y_hat = model.forward(X_batch)
    value = loss.forward(y_hat, y_batch)
    if not math.isfinite(value):
        raise FloatingPointError(f"the loss is {value}")
    model.backward(loss.backward())
    if clip_norm is not None:
        clip_grad_norm(optimizer.params, clip_norm)
    optimizer.step()
    return value, y_hat


def fit(model, loss, optimizer, X, y, *, epochs, batch_size, rng, val=None, schedule=None, clip_norm=None,
        progress=None):
    """Train ``model`` on ``(X, y)`` with shuffled minibatches and return a ``History``.

    Args:
        model: a ``Sequential`` (or anything with ``forward``, ``backward``, ``predict``).
        loss: a bpkit loss. optimizer: a bpkit optimizer over ``model.parameters()``.
        X: inputs ``(N, n_0)``, the model's dtype. y: targets as the loss expects them.
        epochs: passes over the data. batch_size: $B$. rng: shuffles the rows each epoch.
        val: optional held-out ``(X_val, y_val)``, evaluated after each epoch.
        schedule: a ``StepLR``/``CosineLR`` on ``optimizer``, stepped after each epoch.
        clip_norm: if set, ``clip_grad_norm`` to this global norm before each step.
        progress: ``True`` or ``False``: show a live progress line or not. ``None`` (the default) shows it
            when someone watches: in Jupyter, where it ends as one line without timings (so a saved
            notebook stays the same), or in a terminal.
    Raises:
        FloatingPointError: the loss or the weights stopped being finite (names epoch and step).
        Any error raised during training carries ``.history``, the epochs completed before it; the
        model keeps its last good step (an optimizer step is all or nothing).
    """
    X, y, val = _check_fit_args(X, y, val, epochs, batch_size, clip_norm, rng)
    _check_optimizer(model, optimizer, schedule)
    loss.forward(model.predict(X), y)  # the loss checks every target once, and names a bad one by its row in y
    history = History(loss.classifier, val is not None)
    model.train()
    with Progress(epochs, math.ceil(len(X) / batch_size), progress) as bar, _attached_to_errors(history):
        for epoch in range(1, epochs + 1):
            lr, loss_sum, n_correct = optimizer.lr, 0.0, 0.0
            for step, (X_batch, y_batch) in enumerate(minibatches(X, y, batch_size, rng), start=1):
                with _divergence(epoch, step, optimizer):
                    value, y_hat = train_step(model, loss, optimizer, X_batch, y_batch, clip_norm)
                loss_sum += value * len(X_batch)
                n_correct += accuracy(y_hat, y_batch) * len(X_batch) if loss.classifier else 0
            row = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / len(X), "train_acc": n_correct / len(X)}
            if val is not None:
                row["val_loss"], row["val_acc"] = evaluate(model, loss, *val)
            history.record(**row)
            bar.update(epoch, row["train_loss"])
            if schedule is not None:
                schedule.step()
    return history


@contextlib.contextmanager
def _attached_to_errors(history):
    """An error that stops training carries ``.history``: what ``fit`` measured before it."""
    try:
        yield
    except Exception as err:
        err.history = history
        raise


@contextlib.contextmanager
def _divergence(epoch, step, optimizer):
    """One step that either completes or leaves the model and the optimizer as they were, and turns a
    non-finite loss, or numpy's overflow and invalid-value errors, into one clear ``FloatingPointError``."""
    before = optimizer.snapshot()
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield
    except BaseException as err:
        optimizer.restore(before)  # an update that overflowed half-way is undone
        if isinstance(err, FloatingPointError):
            raise FloatingPointError(f"fit: training diverged at epoch {epoch}, step {step}: {err}. "
                                     f"Try a smaller learning rate (lr={optimizer.lr:g}) or clip_norm.") from err
        raise


def _check_optimizer(model, optimizer, schedule):
    """The optimizer holds exactly the model's parameters, every one finite, and the schedule drives that optimizer."""
    mine, theirs = model.parameters(), getattr(optimizer, "params", None)
    if theirs is None:
        raise TypeError(f"fit needs a bpkit optimizer, got {type(optimizer).__name__}: e.g. optim.SGD(model.parameters(), lr=0.1)")
    missing = [p.name for p in mine if all(p is not q for q in theirs)]
    foreign = [q.name for q in theirs if all(q is not p for p in mine)]
    for p in mine:
        if not np.isfinite(p.value).all():
            first = tuple(int(i) for i in np.argwhere(~np.isfinite(p.value))[0])
            raise ValueError(f"fit: parameter {p.name} holds {p.value[first]} at index {first} before training: "
                             "the model is broken already (a diverged run?); build it again")
    if missing or foreign:
        raise ValueError(f"fit got an optimizer that does not hold exactly the model's parameters (missing: "
                         f"{', '.join(missing) or 'none'}; not the model's: {', '.join(foreign) or 'none'}): build it "
                         "from this model, optim.SGD(model.parameters(), ...), after the model (re-running a cell "
                         "that builds a new model leaves an old optimizer holding the old parameters)")
    if schedule is not None and getattr(schedule, "optimizer", None) is not optimizer:
        raise ValueError("fit got a schedule built on another optimizer: build it on the optimizer given to fit, "
                         "e.g. optim.StepLR(optimizer, step_size=10)")


def _check_fit_args(X, y, val, epochs, batch_size, clip_norm, rng):
    """``X, y`` and ``val`` as arrays, every entry of ``X`` and ``X_val`` finite, or a clear error naming ``fit``."""
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"fit got epochs={epochs!r}: expected a positive integer")
    if clip_norm is not None and (isinstance(clip_norm, bool) or not isinstance(clip_norm, (int, float, np.floating))
                                  or not 0 < clip_norm < math.inf):
        raise ValueError(f"fit got clip_norm={clip_norm!r}: expected None or a positive number, e.g. clip_norm=1.0")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"fit needs rng=np.random.default_rng(seed), got {type(rng).__name__}")
    X, y = check_pair(X, y, "fit")
    check_batch_size(batch_size, len(X), "fit")
    if val is not None:
        if not (isinstance(val, tuple) and len(val) == 2):
            raise ValueError(f"fit got val of type {type(val).__name__}: expected a pair (X_val, y_val)")
        val = check_pair(*val, "fit (validation data)")
        if val[0].shape[1:] != X.shape[1:] or val[0].dtype != X.dtype:
            raise ValueError(f"fit got X_val of shape {val[0].shape} and dtype {val[0].dtype} for X of shape {X.shape} "
                             f"and dtype {X.dtype}: expected rows of the same shape and dtype")
    for what, data in (("X", X), ("X_val", None if val is None else val[0])):
        if data is not None and data.dtype.kind == "f":  # other dtypes: the model refuses them
            check_finite(data, "fit", what)
    return X, y, val


def _in_jupyter():
    ipython = sys.modules.get("IPython")  # imported by every Jupyter kernel; never imported here
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _watched():
    """True when a person is probably watching: a Jupyter kernel, or a terminal on stderr."""
    return _in_jupyter() or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())


class Progress:
    """A live line ``fit: epoch 3/10, loss 0.4127 (1.2 s)`` for someone watching ``fit``.

    In Jupyter it is one display, updated in place, that ends as its first text, the line
    ``fit: 10 epochs of 8 minibatches``, which holds no timings: a notebook saved or tested after
    training holds exactly that line, also when training fails. In a terminal it is one line on stderr.
    Use it as a context manager: ``with Progress(...) as bar: ... bar.update(epoch, loss)``. ``show=None`` shows it
    when someone is probably watching (``_watched``); ``True`` or ``False`` decides.
    """

    def __init__(self, epochs, batches, show=None):
        self.epochs, self.start = epochs, time.perf_counter()
        self.head = f"fit: {epochs} epochs of {batches} minibatches"
        self.show = _watched() if show is None else bool(show)
        self.display = None
        if self.show and _in_jupyter():
            from IPython.display import display

            self.display = display({"text/plain": self.head}, raw=True, display_id=True)

    def _write(self, text, end=""):
        if self.display is not None:
            self.display.update({"text/plain": text}, raw=True)
        elif self.show:
            sys.stderr.write("\r" + text + end)
            sys.stderr.flush()

    def update(self, epoch, loss):
        self._write(f"fit: epoch {epoch}/{self.epochs}, loss {loss:.4f} ({time.perf_counter() - self.start:.1f} s)")

    def __enter__(self):
        return self

    def __exit__(self, *error):  # also when training fails: in Jupyter the line ends without timings
        self._write(self.head if self.display is not None else "", end="\n")


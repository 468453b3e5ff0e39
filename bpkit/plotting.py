r"""Pictures for the chapters: decision regions, training curves, gradient norms per layer.

Every helper draws into the matplotlib ``Axes`` it is given (or into a new figure when
``ax=None``) and returns that ``Axes``. None of them changes matplotlib's global state (no
``rcParams``, no style sheet), and none knows about training: they take plain functions,
arrays and dicts. matplotlib is imported inside the functions, so ``import bpkit`` stays
numpy-only.
"""

import numpy as np

#: colour of class ``c`` (matplotlib's ``tab10``), used for both regions and points.
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _axes(ax, who):
    """Return ``ax``, or the ``Axes`` of a new figure if it is ``None``."""
    from matplotlib.axes import Axes

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    elif not isinstance(ax, Axes):
        raise TypeError(f"{who} got ax of type {type(ax).__name__}: expected a matplotlib Axes or None")
    return ax


def class_labels(y, n, who="class_labels"):
    """Integer class labels ``(n,)`` from labels ``(n,)``, 0/1 targets ``(n, 1)`` or one-hot rows ``(n, C)``."""
    y = np.asarray(y)
    if y.ndim not in (1, 2) or len(y) != n:
        raise ValueError(f"{who} got y of shape {y.shape} for {n} points: expected (N,), (N, 1) or (N, C) with N = {n}")
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    y = y.reshape(n)
    if y.dtype.kind == "f":
        whole = np.all(np.isfinite(y)) and np.all(y == np.round(y)) and y.min() >= 0
        return y.astype(int) if whole else (y > 0.5).astype(int)
    if y.dtype.kind not in "iub" or (y.size and y.min() < 0):
        raise ValueError(f"{who} got labels of dtype {y.dtype} (min {y.min() if y.size else None}): expected class indices 0, 1, ...")
    return y.astype(int)


def decision_grid(predict, X, grid=200, padding=0.5):
    r"""Evaluate ``predict`` on a ``grid`` x ``grid`` lattice covering the points ``X``.

    The lattice spans each coordinate of ``X`` from its minimum minus ``padding`` to its
    maximum plus ``padding``. A single score column $s$ is read as a logit: class 1 where
    $s > 0$ (that is, $\sigma(s) > 1/2$). With ``C`` columns the class is $\arg\max_c s_c$.

    Args:
        predict: function from inputs ``(M, 2)`` to scores ``(M,)``, ``(M, 1)`` or ``(M, C)``.
        X: points ``(N, 2)``. grid: points per axis. padding: margin around ``X``.
    Returns:
        ``xx, yy`` (coordinates), ``scores`` ``(grid, grid, k)`` and ``labels`` ``(grid, grid)`` (int).
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        raise ValueError(f"decision_grid got X of shape {X.shape}: expected (N, 2) points in the plane")
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"decision_grid got grid={grid!r}: expected an integer >= 2")
    lo, hi = X.min(axis=0) - padding, X.max(axis=0) + padding
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    points = np.column_stack([xx.ravel(), yy.ravel()])
    scores = np.asarray(predict(points))
    if scores.ndim == 1:
        scores = scores.reshape(-1, 1)
    if scores.ndim != 2 or len(scores) != len(points):
        raise ValueError(f"decision_grid: predict returned shape {scores.shape} for {len(points)} inputs: "
                         f"expected ({len(points)},), ({len(points)}, 1) or ({len(points)}, C)")
    if not np.isfinite(scores).all():
        raise ValueError("decision_grid: predict returned NaN or inf scores")
    labels = (scores[:, 0] > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)
    return xx, yy, scores.reshape(grid, grid, -1), labels.reshape(grid, grid)


def plot_decision_boundary(predict, X, y, ax=None, grid=200, padding=0.5):
    """Colour the plane by the predicted class and draw the points ``X`` coloured by their class ``y``.

    Regions are filled contours of the class on the :func:`decision_grid`; for one score
    column the boundary (logit 0) is drawn as a black line. Class ``c`` has colour
    ``CLASS_COLORS[c]`` in the regions (light) and in the points (solid).

    Args:
        predict: function from inputs ``(M, 2)`` to scores or logits (``MLP.predict``).
        X: points ``(N, 2)``. y: their classes, ``(N,)``, ``(N, 1)`` (0/1) or one-hot ``(N, C)``.
        ax: matplotlib ``Axes`` or ``None``. grid, padding: see :func:`decision_grid`.
    Returns:
        the ``Axes``.
    """
    from matplotlib.colors import ListedColormap

    xx, yy, scores, region = decision_grid(predict, X, grid, padding)
    X = np.asarray(X, dtype=np.float64)
    y_class = class_labels(y, len(X), "plot_decision_boundary")
    n_classes = max(2, scores.shape[-1], int(y_class.max()) + 1)
    if n_classes > len(CLASS_COLORS):
        raise ValueError(f"plot_decision_boundary can colour at most {len(CLASS_COLORS)} classes, got {n_classes}")
    ax = _axes(ax, "plot_decision_boundary")
    cmap = ListedColormap(CLASS_COLORS[:n_classes])
    ax.contourf(xx, yy, region, levels=np.arange(n_classes + 1) - 0.5, cmap=cmap, alpha=0.25)
    s = scores[..., 0]
    if scores.shape[-1] == 1 and s.min() < 0 < s.max():
        ax.contour(xx, yy, s, levels=[0.0], colors="k", linewidths=1.0)
    ax.scatter(X[:, 0], X[:, 1], c=y_class, cmap=cmap, vmin=-0.5, vmax=n_classes - 0.5,
               s=14, edgecolors="k", linewidths=0.3)
    ax.set_xlim(xx[0, 0], xx[0, -1])
    ax.set_ylim(yy[0, 0], yy[-1, 0])
    ax.set_xlabel(r"$x_1$")
    ax.set_ylabel(r"$x_2$")
    return ax


def _select(data, key):
    """The keys that ``key`` names: itself if present, else every key ending in ``_<key>``."""
    if key in data:
        return [key]
    found = [k for k in data if str(k).endswith("_" + key)]
    if not found:
        raise KeyError(f"plot_history: no key {key!r} (nor any '*_{key}'); available: {sorted(map(str, data))}")
    return found


def plot_history(history, keys=("loss",), ax=None, logy=False):
    """Plot per-epoch curves, one line per key, against the epoch number.

    Args:
        history: a dict ``{name: list of per-epoch values}``, or an object with ``.as_dict()``
            returning one (e.g. the ``History`` of ``bpkit.train.fit``).
        keys: names to plot; a name that is not a key selects every key ending in
            ``"_" + name``, so ``"loss"`` plots ``train_loss`` and ``test_loss``.
        ax: matplotlib ``Axes`` or ``None``. logy: logarithmic y axis.
    Returns:
        the ``Axes``.
    """
    data = history.as_dict() if hasattr(history, "as_dict") else history
    if not hasattr(data, "keys") or not hasattr(data, "__getitem__"):
        raise TypeError(f"plot_history got {type(history).__name__}: expected a dict of lists or an object with .as_dict()")
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    names = [name for key in keys for name in _select(data, key)]
    epochs = data["epoch"] if "epoch" in data else None
    ax = _axes(ax, "plot_history")
    for name in names:
        values = np.asarray(data[name], dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"plot_history: {name!r} has shape {values.shape}: expected a non-empty list of numbers")
        x = np.asarray(epochs) if epochs is not None and len(epochs) == len(values) else np.arange(1, len(values) + 1)
        ax.plot(x, values, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.legend()
    return ax


def plot_grad_norms(norms_by_label, ax=None):
    r"""Per-layer gradient norms $\lVert \partial L/\partial W^{(l)} \rVert$ on a log scale, one line per configuration.

    Args:
        norms_by_label: ``{label: [norm of layer 1, ..., norm of layer L]}``; every norm
            must be positive and finite (a log axis cannot show 0).
        ax: matplotlib ``Axes`` or ``None``.
    Returns:
        the ``Axes`` (layer $l$ on the x axis).
    """
    from matplotlib.ticker import MaxNLocator

    if not hasattr(norms_by_label, "items") or len(norms_by_label) == 0:
        raise ValueError("plot_grad_norms needs a non-empty dict {label: list of per-layer norms}")
    checked = {}
    for label, norms in norms_by_label.items():
        norms = np.asarray(norms, dtype=np.float64)
        if norms.ndim != 1 or norms.size == 0:
            raise ValueError(f"plot_grad_norms: {label!r} has shape {norms.shape}: expected one norm per layer")
        bad = np.flatnonzero(~np.isfinite(norms) | (norms <= 0))
        if bad.size:
            raise ValueError(f"plot_grad_norms: {label!r} has norm {norms[bad[0]]} at layer {bad[0] + 1}: "
                             "a log scale needs positive, finite values")
        checked[label] = norms
    ax = _axes(ax, "plot_grad_norms")
    for label, norms in checked.items():
        ax.plot(np.arange(1, norms.size + 1), norms, "o-", ms=4, label=label)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(r"$\|\partial L/\partial W^{(l)}\|$")
    ax.legend()
    return ax

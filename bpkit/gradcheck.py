r"""Evidence that a gradient is right: compare it with finite differences.

Central difference: $\dfrac{\partial f}{\partial x_i} \approx \dfrac{f(x + h e_i) - f(x - h e_i)}{2h}$,
error $O(h^2)$ for the step $h$ (the argument ``eps``), one pair of evaluations per coordinate (``2P`` for ``P`` parameters).

The error is *normalised by the gradient's scale*,
$\max_i |g_i - \tilde g_i| \,/\, \max(\max_i |g_i|, \max_i |\tilde g_i|)$, not per coordinate:
a per-coordinate ratio explodes where the true gradient is near zero and raises false alarms.
In float64 with $h = 10^{-6}$ a correct gradient gives about $10^{-9}$ or less.
The scale never goes below what the finite difference itself can resolve: its round-off is
about $10\,u\,|f|/h$ ($u \approx 2.2\cdot10^{-16}$), so an array whose whole gradient is
smaller than that divided by ``tol`` (vanishing gradients) is compared at that floor instead.

Always check in float64, away from kinks (ReLU at 0): a difference that straddles a kink
measures the average of two slopes.
"""

import numpy as np

from ._checks import as_float64

_TINY = 1e-300


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``x`` is perturbed *in place*, one coordinate at a time, and restored, so ``f``
    must read ``x`` (e.g. a parameter's ``value``) when called.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        what = f"an array of dtype {x.dtype}" if isinstance(x, np.ndarray) else f"a {type(x).__name__}"
        raise TypeError(f"numerical_gradient needs a float array x to perturb in place, got {what}: "
                        "an integer array cannot hold x + eps (use x.astype(np.float64), and let f read that array)")
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        try:
            x[i] = old + eps
            f_plus = _scalar(f(), "numerical_gradient")
            x[i] = old - eps
            f_minus = _scalar(f(), "numerical_gradient")
        finally:
            x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def _scalar(value, who):
    """``value`` as a float if ``f()`` returned one number, else a clear error."""
    if (not isinstance(value, (int, float, np.number, np.ndarray)) or isinstance(value, bool)
            or np.asarray(value).dtype.kind not in "iuf"):
        raise TypeError(f"{who}: f() must return one number (the loss), got {type(value).__name__}: "
                        "did it forget to return?")
    if np.ndim(value) != 0:
        raise TypeError(f"{who}: f() must return one number (the loss), got an array of shape {np.shape(value)}: "
                        "reduce it, e.g. return float(np.sum(out * G))")
    if not np.isfinite(value):
        raise ValueError(f"{who}: f() returned {float(value)}: a finite difference needs a finite loss")
    return float(value)


def rel_error(analytic, numeric, floor=0.0):
    r"""Scale-normalised error $\lVert g - \tilde g\rVert_\infty / \max(\lVert g\rVert_\infty, \lVert\tilde g\rVert_\infty, \text{floor})$ (0 if both vanish)."""
    a, n = as_float64(analytic, "rel_error", "analytic"), as_float64(numeric, "rel_error", "numeric")
    if not (np.isfinite(a).all() and np.isfinite(n).all()):
        raise ValueError("rel_error got a NaN or infinite entry: a relative error of non-finite values means nothing; "
                         "find where the gradient stopped being finite")
    if a.shape != n.shape:
        raise ValueError(f"rel_error got arrays of shapes {a.shape} and {n.shape}: they must have the same shape "
                         "(a broadcast would compare the wrong entries)")
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(n), initial=0.0), floor)
    return float(np.max(np.abs(a - n), initial=0.0) / max(scale, _TINY))


class CheckResult:
    """The outcome for one array: error, worst coordinate, both values there, pass/fail."""

    def __init__(self, name, analytic, numeric, tol, floor=0.0):
        self.name, self.tol = name, tol
        self.analytic, self.numeric = np.asarray(analytic), np.asarray(numeric)
        self.error = rel_error(analytic, numeric, floor)
        diff = np.abs(self.analytic - self.numeric)
        self.worst_index = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
        self.passed = bool(self.error < tol)

    def __repr__(self):
        w = tuple(int(i) for i in self.worst_index)
        status = "ok  " if self.passed else "FAIL"
        return (f"{status} {self.name:<8} rel. error {self.error:.2e} (tol {self.tol:.0e}); worst at {w}: "
                f"analytic {float(self.analytic[self.worst_index]):+.6e}, numeric {float(self.numeric[self.worst_index]):+.6e}")


class GradcheckReport:
    """All the ``CheckResult`` s of one check; ``passed`` only if each one passed."""

    def __init__(self, results):
        self.results = list(results)
        if not self.results:
            raise ValueError("gradient check got no parameters to check: pass a non-empty list (e.g. model.parameters())")
        self.passed = all(r.passed for r in self.results)
        self.worst = max(self.results, key=lambda r: r.error)

    @property
    def max_error(self):
        return self.worst.error

    def __repr__(self):
        head = "gradient check passed" if self.passed else "gradient check FAILED"
        return head + "\n" + "\n".join("  " + repr(r) for r in self.results)


def gradcheck(f, params, eps=1e-6, tol=1e-7):
    """Compare each parameter's ``.grad`` (already filled by backward) with central differences of ``f()``.

    Args:
        f: callable with no arguments returning the scalar loss for the current ``.value`` s.
        params: ``Parameter`` s (anything with ``.value``, ``.grad``, ``.name``), float64.
        eps: finite-difference step. tol: largest accepted ``rel_error``.
    Returns:
        a ``GradcheckReport``; ``report.passed`` says whether every parameter agreed.
    """
    if hasattr(params, "value"):
        raise TypeError(f"gradcheck got a single {params!r}: pass a list of parameters, e.g. [W] or model.parameters()")
    params = list(params)
    for p in params:
        _require_float64(p, "gradcheck")
    floor = roundoff_floor(_scalar(f(), "gradcheck"), eps, tol)
    return GradcheckReport(CheckResult(p.name, p.grad, numerical_gradient(f, p.value, eps), tol, floor) for p in params)


def roundoff_floor(f_value, eps, tol):
    r"""Smallest gradient scale a central difference resolves to ``tol``: $10\,u\,|f| / (h \cdot \text{tol})$."""
    return 10 * np.finfo(np.float64).eps * abs(float(f_value)) / (eps * tol)


def _require_float64(p, who):
    if p.value.dtype != np.float64:
        raise TypeError(f"{who} needs float64 parameters; {p.name} is {p.value.dtype} (rounding would swamp the check)")


class _Input:
    """Adapter so an input array can be checked like a parameter."""

    def __init__(self, value, grad, name="input"):
        self.value, self.grad, self.name = value, grad, name


def check_layer(layer, x, rng, eps=1e-6, tol=1e-7):
    r"""Check a layer's backward: input gradient and every parameter gradient.

    Uses the scalar $f = \sum (\text{layer}(x) \odot G)$ with a random upstream gradient $G$,
    so backward receives $G$ and every output entry is exercised. ``layer`` follows the layer
    protocol (a ``Sequential`` too) and is in training mode.
    """
    x = np.array(x, dtype=np.float64)
    G = rng.normal(size=layer.forward(x).shape)
    params = layer.parameters()
    for p in params:
        p.zero_grad()
    grad_x = layer.backward(G, input_grad=True) if params else layer.backward(G)

    def f():
        return float(np.sum(layer.forward(x) * G))

    return gradcheck(f, [_Input(x, grad_x)] + list(params), eps, tol)


def check_model(model, loss, X, y, eps=1e-6, tol=1e-7):
    """Full per-coordinate check of ``model.backward`` for ``loss(model.forward(X), y)`` (2P loss evaluations).

    The model stays in its mode, and every loss evaluation is the forward that backward differentiates:
    in training mode, ``BatchNorm`` normalises with the batch's statistics (and each evaluation moves
    its running estimates). A forward that draws random numbers (``Dropout`` in training) is refused.
    """
    model.zero_grad()
    value = loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    f = _deterministic_loss(model, loss, X, y, value, "check_model")
    return gradcheck(f, model.parameters(), eps, tol)


def _deterministic_loss(model, loss, X, y, value, who):
    def f():
        return loss.forward(model.forward(X), y)

    if f() != value:
        raise ValueError(f"{who}: two forward passes of {model!r} with the same weights gave different losses, so "
                         "finite differences would measure noise. Dropout in training mode draws a new mask each "
                         "pass: check with Dropout(0) in its place, or with model.eval()")
    return f


def directional_check(model, loss, X, y, rng, eps=1e-6, tol=1e-6, directions=12):
    r"""Cheap check for large models: two loss evaluations per direction, $2(1 + kA)$ for $A$ arrays.

    Along a unit direction $v$, backprop's slope $g \cdot v$ must match the central difference
    $\bigl(L(w + h v) - L(w - h v)\bigr)/2h$. One report line per group of directions:

    - ``dir:all``: one random direction over all $P$ parameters, error over $\lVert g\rVert$;
    - ``dir:<name>``: $k$ = ``directions`` random directions inside that array (a failure names it),
      error over the array's own $\lVert g_a\rVert$, worst direction reported.

    A bug adds $d$ to the gradient; a direction sees $d \cdot v$, for $v$ uniform on the unit sphere
    of $\mathbb{R}^{P_a}$ about $\lVert d_a\rVert Z/\sqrt{P_a}$ with $Z \sim N(0, 1)$. One direction misses
    when $|Z| < t = \mathrm{tol}\,\lVert g_a\rVert\sqrt{P_a}/\lVert d_a\rVert$, with probability $\operatorname{erf}(t/\sqrt 2)$;
    $k$ directions all miss with its $k$-th power. One row of $\partial L/\partial W_1$ 2 % too small in a
    784-256-128-10 network gives $t \approx 0.65$: one direction misses it half the time, the
    default twelve (with ``dir:all``) less than once in a thousand.

    Scales never go below ``roundoff_floor``, as in ``gradcheck``: round-off cannot fail a vanishing gradient.
    """
    for p in model.parameters():
        _require_float64(p, "directional_check")
    if isinstance(directions, bool) or not isinstance(directions, (int, np.integer)) or directions < 1:
        raise ValueError(f"directional_check needs directions >= 1 (random directions per parameter array), got {directions!r}")
    model.zero_grad()
    value = loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    f = _deterministic_loss(model, loss, X, y, value, "directional_check")
    params = model.parameters()
    floor = roundoff_floor(value, eps, tol)
    v = _unit([rng.normal(size=p.value.shape) for p in params])
    slope, numeric = _slope_pair(f, params, v, eps)
    results = [_DirectionResult("all", slope, numeric, max(_grad_norm(params), floor), tol)]
    for p in params:
        pairs = [_slope_pair(f, [p], _unit([rng.normal(size=p.value.shape)]), eps) for _ in range(directions)]
        slopes, numerics = zip(*pairs)
        results.append(_DirectionResult(p.name, slopes, numerics, max(_grad_norm([p]), floor), tol))
    return GradcheckReport(results)


def _unit(v):
    """The direction ``v`` (one array per parameter) scaled to length 1 over all its arrays."""
    norm = np.sqrt(sum(float(np.sum(vi * vi)) for vi in v))
    return [vi / norm for vi in v]


def _grad_norm(params):
    return float(np.sqrt(sum(float(np.sum(p.grad * p.grad)) for p in params)))


def _slope_pair(f, params, v, eps):
    r"""Backprop's slope $g \cdot v$ and the central difference of ``f`` along ``v``; only ``params`` move."""
    slope = sum(float(np.sum(p.grad * vi)) for p, vi in zip(params, v))
    numeric = (_loss_along(f, params, v, eps) - _loss_along(f, params, v, -eps)) / (2 * eps)
    return slope, numeric


def _loss_along(f, params, v, step):
    saved = [p.value.copy() for p in params]
    try:
        for p, vi in zip(params, v):
            p.value += step * vi
        return f()
    finally:
        for p, old in zip(params, saved):
            p.value[...] = old


class _DirectionResult(CheckResult):
    """One ``dir:`` line: the slopes along its directions from backprop (``analytic``) and from
    central differences (``numeric``); the error is the largest disagreement over ``scale``, and
    ``worst_index`` says along which direction."""

    def __init__(self, name, slopes, numerics, scale, tol):
        self.name, self.tol = f"dir:{name}", tol
        self.analytic, self.numeric = np.array(slopes), np.array(numerics)
        diff = np.abs(self.analytic - self.numeric)
        self.worst_index = np.unravel_index(int(np.argmax(diff)), diff.shape)
        self.error = float(diff.max()) / max(scale, _TINY)
        self.passed = bool(self.error < tol)

r"""A reverse-mode automatic differentiation engine on scalars.

Every operation on ``Value`` s builds one node of a computation graph. The node keeps
its result (``data``), its parents and its *local derivatives*
$\partial\,\text{node}/\partial\,\text{parent}$, computed once, in the forward pass.
``backward()`` applies the chain rule from the output back to the inputs:
$\bar p \mathrel{+}= \frac{\partial n}{\partial p}\,\bar n$ for every edge $p \to n$,
where $\bar n = \partial L/\partial n$ is stored in ``n.grad``.

Nodes refer only to their parents (no closures), so a graph has no reference cycles
and is freed by reference counting as soon as its output is dropped.
"""

import math
from numbers import Real

_isfinite, _exp = math.isfinite, math.exp


def _describe(v):
    """How error messages name a node, e.g. ``Value 'w1' (data=0.5)``."""
    name = f"Value {v.label!r}" if v.label else "Value" + (f" from {v.op!r}" if v.op else "")
    return f"{name} (data={v.data:.6g})"


def make_node(data, parents, local_grads, op):
    """The output node of an operation (the engine's fast path: no argument checks)."""
    if not _isfinite(data):
        inputs = ", ".join(map(_describe, parents))
        raise OverflowError(f"{op} of {inputs} gave {data}: beyond float64")
    out = Value.__new__(Value)
    out.data, out.grad, out.label, out.op = data, 0.0, "", op
    out.parents, out.local_grads = parents, local_grads
    return out


class Value:
    r"""A scalar node of a computation graph.

    Args:
        data: a real number (stored as a float; NaN and inf are refused).
        label: a name for error messages and drawings, e.g. ``"w1"``.
        parents, local_grads, op: only to define a new operation: the input nodes, the
            derivatives $\partial\,\text{out}/\partial\,\text{parent}$ at their current
            data, and a short name. Built-in operations fill them.

    Attributes:
        grad: $\partial L/\partial\,\text{node}$ after ``L.backward()``.
    """

    __slots__ = ("data", "grad", "label", "op", "parents", "local_grads")

    def __init__(self, data, label="", *, parents=(), local_grads=(), op=""):
        name = f"Value {label!r}" if label else "Value"
        if not isinstance(data, Real) or isinstance(data, bool):
            raise TypeError(f"{name} needs a real number, got {data!r} of type {type(data).__name__}")
        if not _isfinite(data):
            raise ValueError(f"{name} got non-finite data {data}: only finite numbers are allowed")
        if len(parents) != len(local_grads) or not all(isinstance(p, Value) for p in parents):
            raise ValueError(f"{name} needs parents that are Values and one local gradient per "
                             f"parent, got {len(parents)} parent(s), {len(local_grads)} gradient(s)")
        self.data, self.grad, self.label, self.op = float(data), 0.0, label, op
        self.parents, self.local_grads = tuple(parents), tuple(map(float, local_grads))

    def __repr__(self):
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g}{label})"

    def _lift(self, other, op):
        """``other`` as a Value: a number becomes a constant leaf; anything else fails."""
        if isinstance(other, Value):
            return other
        if isinstance(other, Real) and not isinstance(other, bool):
            return Value(other)
        raise TypeError(f"cannot use {op} between a Value and a {type(other).__name__} "
                        f"({other!r}): a Value combines only with a Value or a real number")

    def __add__(self, other):
        r"""$\partial(a+b)/\partial a = 1,\ \partial(a+b)/\partial b = 1$."""
        other = self._lift(other, "+")
        return make_node(self.data + other.data, (self, other), (1.0, 1.0), "+")

    def __mul__(self, other):
        r"""$\partial(ab)/\partial a = b,\ \partial(ab)/\partial b = a$."""
        other = self._lift(other, "*")
        a, b = self.data, other.data
        return make_node(a * b, (self, other), (b, a), "*")

    def __sub__(self, other):
        r"""$\partial(a-b)/\partial a = 1,\ \partial(a-b)/\partial b = -1$."""
        other = self._lift(other, "-")
        return make_node(self.data - other.data, (self, other), (1.0, -1.0), "-")

    def __truediv__(self, other):
        r"""$\partial(a/b)/\partial a = 1/b,\ \partial(a/b)/\partial b = -a/b^2$."""
        other = self._lift(other, "/")
        a, b = self.data, other.data
        if b == 0.0:
            raise ZeroDivisionError(f"division of {_describe(self)} by {_describe(other)}, "
                                    "which is zero")
        out, d_a = a / b, 1.0 / b
        d_b = -out / b  # -a/b^2, without forming b^2 (it underflows to 0 for |b| < 1e-154)
        if not (_isfinite(d_a) and _isfinite(d_b)):
            raise OverflowError(f"division of {_describe(self)} by {_describe(other)}: the derivatives 1/b and "
                                "-a/b^2 are beyond float64 (the divisor is too close to zero)")
        return make_node(out, (self, other), (d_a, d_b), "/")

    def __neg__(self):
        r"""$\partial(-a)/\partial a = -1$."""
        return make_node(-self.data, (self,), (-1.0,), "neg")

    def __radd__(self, other):
        return self._lift(other, "+") + self

    def __rmul__(self, other):
        return self._lift(other, "*") * self

    def __rsub__(self, other):
        return self._lift(other, "-") - self

    def __rtruediv__(self, other):
        return self._lift(other, "/") / self

    def __pow__(self, n):
        r"""Power with a constant exponent: $\partial(a^n)/\partial a = n\,a^{n-1}$."""
        if not isinstance(n, Real) or isinstance(n, bool):
            raise TypeError(f"Value ** {type(n).__name__}: only constant exponents (int or float) are "
                            "supported, because ** differentiates a**n by the rule n a**(n-1), which holds "
                            "for a constant n only; with a Value as the exponent, build the power from "
                            "operations the engine differentiates (exp and log, for a positive base)")
        a, n = self.data, float(n)
        if a == 0.0 and n < 1.0 and n != 0.0:
            raise ZeroDivisionError(f"{_describe(self)} ** {n:g}: the power or its derivative "
                                    "is infinite at 0")
        if a < 0.0 and not n.is_integer():
            raise ValueError(f"{_describe(self)} ** {n:g}: a negative number to a non-integer "
                             "power is not real")
        try:
            out, local = a**n, (n * a ** (n - 1.0) if n != 0.0 else 0.0)
        except OverflowError:
            raise OverflowError(f"{_describe(self)} ** {n:g} overflows float64") from None
        return make_node(out, (self,), (local,), f"**{n:g}")

    def __rpow__(self, base):
        raise TypeError(f"{type(base).__name__} ** Value: only constant exponents are supported, "
                        "because ** differentiates a**n by the rule n a**(n-1), which holds for a constant "
                        "n only; with a Value as the exponent, build the power from operations the engine "
                        "differentiates (exp and log, for a positive base)")

    def exp(self):
        r"""$\frac{d}{da} e^a = e^a$; ``OverflowError`` beyond $a \approx 709.78$."""
        try:
            out = _exp(self.data)
        except OverflowError:
            raise OverflowError(f"exp of {_describe(self)} overflows float64 (the largest "
                                "argument is about 709.78)") from None
        return make_node(out, (self,), (out,), "exp")

    def log(self):
        r"""$\frac{d}{da} \log a = 1/a$, for $a > 0$."""
        if self.data <= 0.0:
            raise ValueError(f"log of {_describe(self)}: the logarithm needs a positive number")
        local = 1.0 / self.data
        if not _isfinite(local):
            raise OverflowError(f"log of {_describe(self)}: its derivative 1/a is beyond float64 "
                                "(the argument is too close to zero)")
        return make_node(math.log(self.data), (self,), (local,), "log")

    def tanh(self):
        r"""$\frac{d}{da} \tanh a = 1 - \tanh^2 a$."""
        t = math.tanh(self.data)
        return make_node(t, (self,), (1.0 - t * t,), "tanh")

    def sigmoid(self):
        r"""$\sigma(a) = 1/(1+e^{-a})$, $\sigma'(a) = \sigma(a)(1-\sigma(a))$, stably."""
        a = self.data
        if a >= 0.0:
            s = 1.0 / (1.0 + _exp(-a))
        else:                                   # never forms e^{-a} for a << 0
            e = _exp(a)
            s = e / (1.0 + e)
        return make_node(s, (self,), (s * (1.0 - s),), "sigmoid")

    def relu(self):
        r"""$\max(0, a)$; derivative $1$ if $a > 0$, else $0$ (also at the kink)."""
        a = self.data
        return make_node(a if a > 0.0 else 0.0, (self,), (1.0 if a > 0.0 else 0.0,), "relu")

    def backward(self):
        r"""Set ``grad`` of every node to $\partial\,\text{self}/\partial\,\text{node}$.

        Interior gradients are recomputed; the gradients of leaves (inputs,
        parameters) accumulate, as in PyTorch: call ``zero_grad()`` between steps.
        """
        order = topological_order(self)
        for node in order:
            if node.parents:
                node.grad = 0.0
        self.grad += 1.0                        # d self / d self
        for node in reversed(order):            # each node after all of its consumers
            grad_out = node.grad
            for parent, local in zip(node.parents, node.local_grads):
                parent.grad += local * grad_out     # chain rule; += sums the paths

    def zero_grad(self):
        """Reset ``grad`` to 0 on every node reachable from this one."""
        for node in topological_order(self):
            node.grad = 0.0


def topological_order(root):
    """Every node reachable from ``root``, each after all its parents (``root`` last).

    Depth-first search with an explicit stack of (node, parents not yet visited): no
    recursion, so a graph of any depth works at Python's default recursion limit.
    """
    order, seen = [], {root}
    stack = [(root, iter(root.parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent not in seen:              # go deeper: place this parent first
                seen.add(parent)
                stack.append((parent, iter(parent.parents)))
                break
        else:                                   # every parent is placed: so is the node
            stack.pop()
            order.append(node)
    return order

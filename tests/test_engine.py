"""bpkit.engine (the scalar autodiff engine) and bpkit.graph_plot.

Every operation is checked against central differences (hypothesis) and against PyTorch
autograd; then accumulation, repeated backward, very deep graphs, the absence of reference
cycles, and every error message.
"""

import gc
import math
import re
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from bpkit.engine import Value, topological_order
from bpkit.graph_plot import draw_graph

H = 1e-6


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def rel(a, b):
    """Relative error, with the scale floored at 1 so that a zero derivative is compared absolutely."""
    return abs(a - b) / max(abs(a), abs(b), 1.0)


def central(f, x):
    return (f(x + H) - f(x - H)) / (2 * H)


# name -> (operation on Values, domain of the input)
UNARY = {
    "neg": (lambda a: -a, floats(-10, 10)),
    "exp": (lambda a: a.exp(), floats(-5, 5)),
    "log": (lambda a: a.log(), floats(0.1, 10)),
    "tanh": (lambda a: a.tanh(), floats(-3, 3)),
    "sigmoid": (lambda a: a.sigmoid(), floats(-6, 6)),
    "relu": (lambda a: a.relu(), floats(-5, 5).filter(lambda x: abs(x) > 1e-3)),
    "pow_2": (lambda a: a**2, floats(-5, 5)),
    "pow_3": (lambda a: a**3, floats(-3, 3)),
    "pow_-1": (lambda a: a**-1, floats(0.3, 5)),
    "pow_0.5": (lambda a: a**0.5, floats(0.1, 10)),
    "pow_0": (lambda a: a**0, floats(-5, 5)),
    "add_const": (lambda a: a + 1.5, floats(-10, 10)),
    "radd_const": (lambda a: 1.5 + a, floats(-10, 10)),
    "sub_const": (lambda a: a - 1.5, floats(-10, 10)),
    "rsub_const": (lambda a: 1.5 - a, floats(-10, 10)),
    "mul_const": (lambda a: a * -2.5, floats(-10, 10)),
    "rmul_const": (lambda a: -2.5 * a, floats(-10, 10)),
    "div_const": (lambda a: a / 4.0, floats(-10, 10)),
    "rdiv_const": (lambda a: 4.0 / a, floats(0.3, 5)),
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b,
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_op_matches_central_difference(name, data):
    op, domain = UNARY[name]
    x = data.draw(domain, label="x")
    v = Value(x, "x")
    out = op(v)
    out.backward()
    numeric = central(lambda t: op(Value(t)).data, x)
    assert rel(v.grad, numeric) < 1e-7, f"{name} at x={x}: engine {v.grad}, central difference {numeric}"


@pytest.mark.parametrize("name", sorted(BINARY))
@given(x=floats(-5, 5), y=floats(0.3, 5))
def test_binary_op_matches_central_difference(name, x, y):
    op = BINARY[name]
    a, b = Value(x, "a"), Value(y, "b")
    op(a, b).backward()
    grad_a = central(lambda t: op(Value(t), Value(y)).data, x)
    grad_b = central(lambda t: op(Value(x), Value(t)).data, y)
    assert rel(a.grad, grad_a) < 1e-7 and rel(b.grad, grad_b) < 1e-7, (name, a.grad, grad_a, b.grad, grad_b)


@given(x=floats(-50, 50))
def test_sigmoid_is_exact_and_symmetric(x):
    s = Value(x).sigmoid().data
    assert math.isclose(s, 1.0 / (1.0 + math.exp(-x)), rel_tol=1e-12)
    assert math.isclose(s, 1.0 - Value(-x).sigmoid().data, rel_tol=1e-9, abs_tol=1e-15)


def _random_program(draw_ops, xs):
    """Run a list of (op, i, j) on the input Values: each new node uses earlier nodes (fan-out included)."""
    nodes = list(xs)
    for op, i, j in draw_ops:
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        nodes.append({"add": lambda: a + b, "mul": lambda: a * b, "sub": lambda: a - b,
                      "tanh": lambda: a.tanh(), "sigmoid": lambda: a.sigmoid(), "square": lambda: a**2}[op]())
    return nodes[-1]


programs = st.lists(st.tuples(st.sampled_from(["add", "mul", "sub", "tanh", "sigmoid", "square"]),
                              st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=12)


@given(ops=programs, x=st.lists(floats(-1.5, 1.5), min_size=3, max_size=3))
def test_random_graphs_order_and_gradients(ops, x):
    xs = [Value(v, f"x{i}") for i, v in enumerate(x)]
    try:
        out = _random_program(ops, xs)
    except OverflowError:
        assume(False)
    order = topological_order(out)
    assume(max(abs(n.data) for n in order) < 1e3)      # keep central differences accurate
    place = {node: k for k, node in enumerate(order)}
    assert order[-1] is out and len(place) == len(order)
    assert all(place[p] < place[node] for node in order for p in node.parents)
    out.backward()
    for i, v in enumerate(xs):
        def f(t, i=i):
            return _random_program(ops, [Value(t if k == i else x[k]) for k in range(3)]).data
        numeric = central(f, x[i]) if v in place else 0.0
        assert abs(v.grad - numeric) <= 1e-6 * max(1.0, abs(numeric)), (i, v.grad, numeric)


# --- PyTorch autograd gives the same values and gradients -----------------------------------

def _composite(x, y, *, exp, log, tanh, sigmoid, relu):
    """One expression with every operation, written once for both engines."""
    a = x * y + 2.0 - x / (y + 3.0)
    b = -a + 1.0 / y - (3.0 - x) * 0.5
    c = exp(b * 0.1) + log(y * y + 1.0) + tanh(a) * sigmoid(b)
    d = relu(c - 0.2) + relu(-c) + a**2 + (c + 4.0) ** 0.5 - y**-1
    return d * d / 3.0 + d


def test_composite_expression_matches_pytorch():
    vx, vy = Value(-1.3, "x"), Value(0.7, "y")
    out = _composite(vx, vy, exp=Value.exp, log=Value.log, tanh=Value.tanh, sigmoid=Value.sigmoid, relu=Value.relu)
    out.backward()
    tx = torch.tensor(-1.3, dtype=torch.float64, requires_grad=True)
    ty = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    t_out = _composite(tx, ty, exp=torch.exp, log=torch.log, tanh=torch.tanh, sigmoid=torch.sigmoid, relu=torch.relu)
    t_out.backward()
    assert math.isclose(out.data, t_out.item(), rel_tol=1e-13)
    assert math.isclose(vx.grad, tx.grad.item(), rel_tol=1e-12)
    assert math.isclose(vy.grad, ty.grad.item(), rel_tol=1e-12)


def _two_layer_loss(X, y, W1, b1, W2, b2, tanh, sigmoid):
    """Squared error of a 3-4-1 network (tanh hidden, sigmoid output), summed over 2 examples."""
    loss = 0.0
    for x_row, target in zip(X, y):
        a1 = [tanh(sum((x_row[i] * W1[i][j] for i in range(3)), b1[j])) for j in range(4)]
        y_hat = sigmoid(sum((a1[j] * W2[j] for j in range(4)), b2))
        loss = loss + 0.5 * (y_hat - target) ** 2
    return loss * 0.5


def test_two_layer_network_matches_pytorch(rng):
    X, y = rng.normal(size=(2, 3)).tolist(), [1.0, 0.0]
    W1, b1, W2, b2 = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=4), float(rng.normal())
    V = {"W1": [[Value(w) for w in row] for row in W1], "b1": [Value(b) for b in b1],
         "W2": [Value(w) for w in W2], "b2": Value(b2)}
    loss = _two_layer_loss(X, y, V["W1"], V["b1"], V["W2"], V["b2"], Value.tanh, Value.sigmoid)
    loss.backward()
    T = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in
         {"W1": W1, "b1": b1, "W2": W2, "b2": b2}.items()}
    t_loss = _two_layer_loss(X, y, T["W1"], T["b1"], T["W2"], T["b2"], torch.tanh, torch.sigmoid)
    t_loss.backward()
    assert math.isclose(loss.data, t_loss.item(), rel_tol=1e-13)
    grads = {"W1": [[v.grad for v in row] for row in V["W1"]], "b1": [v.grad for v in V["b1"]],
             "W2": [v.grad for v in V["W2"]], "b2": V["b2"].grad}
    for name, t in T.items():
        np.testing.assert_allclose(grads[name], t.grad.numpy(), rtol=1e-12, atol=1e-15, err_msg=name)


# --- accumulation, repeated backward ---------------------------------------------------------

def test_node_used_twice_gets_both_contributions():
    x = Value(3.0, "x")
    (x * x).backward()
    assert x.grad == 6.0                       # d(x^2)/dx, not x
    a = Value(-2.0, "a")
    (a + a).backward()
    assert a.grad == 2.0
    b = Value(0.5, "b")
    (b * 3.0 + b.tanh() + b**2).backward()     # three paths out of b
    assert math.isclose(b.grad, 3.0 + (1 - math.tanh(0.5) ** 2) + 1.0, rel_tol=1e-15)


def test_backward_twice_accumulates_leaves_and_recomputes_interior():
    x, y = Value(1.5, "x"), Value(-0.5, "y")
    u = x * y
    f = u.tanh() + x
    f.backward()
    first = (x.grad, y.grad, u.grad, f.grad)
    f.backward()
    assert (x.grad, y.grad) == (2 * first[0], 2 * first[1])      # leaves accumulate
    assert (u.grad, f.grad) == first[2:]                         # interior nodes do not
    f.zero_grad()
    assert all(n.grad == 0.0 for n in topological_order(f))
    f.backward()
    assert (x.grad, y.grad, u.grad, f.grad) == first
    w = Value(2.0, "w")                        # a leaf as the output accumulates too, as in PyTorch
    w.backward()
    w.backward()
    assert w.grad == 2.0


# --- deep graphs at the default recursion limit -----------------------------------------------

def test_10000_node_chain_at_default_recursion_limit():
    limit = sys.getrecursionlimit()
    x = Value(0.3, "x")
    v = x
    for _ in range(5000):                      # 5000 x (constant + product) = 10,001 nodes
        v = v * 1.0001
    order = topological_order(v)
    assert len(order) == 10_001 > limit
    v.backward()
    assert math.isclose(x.grad, 1.0001**5000, rel_tol=1e-12)
    v.zero_grad()
    assert x.grad == 0.0
    assert sys.getrecursionlimit() == limit


def test_million_node_chain():
    gc.disable()                               # only to keep the test fast: the chain holds no cycles
    try:
        x = Value(1.0, "x")
        v = x
        for _ in range(1_000_000):
            v = v + x                          # 1,000,001 nodes in one chain, x used a million times
        v.backward()
        assert x.grad == 1_000_001.0
        del v                                  # freeing a million-deep chain must not crash either
    finally:
        gc.enable()


# --- no reference cycles: graphs are freed by reference counting alone -------------------------

def _live_values():
    return sum(type(o) is Value for o in gc.get_objects())


def test_graph_is_freed_without_the_cycle_collector():
    gc.collect()
    gc.disable()
    try:
        before = _live_values()
        x = [Value(float(i), f"x{i}") for i in range(50)]
        loss = sum((xi * xi).tanh() * 0.5 for xi in x)
        loss.backward()
        assert _live_values() > before + 200
        del loss, x
        assert _live_values() == before          # freed by refcounting, with the GC switched off
        assert gc.collect() < 50                  # and the cycle collector finds (almost) nothing
    finally:
        gc.enable()


def test_a_closure_engine_would_leave_cycles():
    """The same check on a closure-per-op node shows what the test above guards against."""

    class ClosureNode:
        def __init__(self, data, children=()):
            self.data, self.grad, self.children = data, 0.0, children
            self._backward = lambda: None

        def __mul__(self, other):
            out = ClosureNode(self.data * other.data, (self, other))

            def _backward():
                self.grad += other.data * out.grad
            out._backward = _backward          # out -> closure -> out: a cycle
            return out

    gc.collect()
    gc.disable()
    try:
        x = ClosureNode(2.0)
        y = x
        for _ in range(100):
            y = y * x
        del x, y
        assert gc.collect() >= 100             # every product node waited for the cycle collector
    finally:
        gc.enable()


# --- clear errors ----------------------------------------------------------------------------

def test_non_numeric_operand_names_both_types():
    v = Value(1.0, "v")
    with pytest.raises(TypeError, match=r"cannot use \+ between a Value and a str \('a'\)"):
        v + "a"
    with pytest.raises(TypeError, match=r"cannot use \* between a Value and a list"):
        [1.0] * v
    with pytest.raises(TypeError, match=r"cannot use - between a Value and a NoneType"):
        v - None
    with pytest.raises(TypeError, match=r"cannot use / between a Value and a bool"):
        v / True


def test_constructor_refuses_non_numbers_and_non_finite():
    with pytest.raises(TypeError, match=r"Value needs a real number, got 'x' of type str"):
        Value("x")
    with pytest.raises(TypeError, match=r"of type complex"):
        Value(1 + 2j)
    for bad in (float("nan"), float("inf"), -np.inf):
        with pytest.raises(ValueError, match=r"Value 'w' got non-finite data (nan|inf|-inf)"):
            Value(bad, "w")
    with pytest.raises(ValueError, match=r"Value .f. needs parents .*got 1 parent\(s\), 2 gradient\(s\)"):
        Value(1.0, "f", parents=(Value(0.0),), local_grads=(1.0, 2.0), op="bad")


def test_log_of_non_positive_names_the_value():
    for x in (0.0, -2.5):
        with pytest.raises(ValueError, match=rf"log of Value 'p' \(data={x:g}\): the logarithm needs a positive number"):
            Value(x, "p").log()


def test_power_with_a_value_exponent_is_refused():
    hint = r"build the power from operations the engine differentiates \(exp and log, for a positive base\)"
    for power, who in [(lambda: Value(2.0) ** Value(3.0), "Value"), (lambda: 2.0 ** Value(3.0), "float")]:
        with pytest.raises(TypeError, match=rf"{who} \*\* Value: only constant exponents") as info:
            power()
        message = str(info.value)
        assert re.search(hint, message) and "n a**(n-1)" in message
        # the message points at the tools, not at the answer of chapter 2's exercise ex-graph-power
        assert ".log()).exp()" not in message and "math.log(base)" not in message
    with pytest.raises(ValueError, match=r"negative number to a non-integer power"):
        Value(-2.0, "q") ** 0.5
    with pytest.raises(ZeroDivisionError, match=r"Value 'q' \(data=0\) \*\* -1: the power or its derivative is infinite"):
        Value(0.0, "q") ** -1
    with pytest.raises(OverflowError, match=r"\*\* 2 overflows float64"):
        Value(1e200) ** 2


def test_division_by_zero_names_the_node():
    with pytest.raises(ZeroDivisionError, match=r"division of Value 'a' \(data=1\) by Value 'b' \(data=0\), which is zero"):
        Value(1.0, "a") / Value(0.0, "b")
    with pytest.raises(ZeroDivisionError, match=r"by Value from '-' \(data=0\)"):
        Value(1.0) / (Value(2.0) - 2.0)


def test_overflow_raises_instead_of_returning_inf():
    with pytest.raises(OverflowError, match=r"exp of Value 'z' \(data=710\) overflows float64"):
        Value(710.0, "z").exp()
    with pytest.raises(OverflowError, match=r"\* of Value \(data=1e\+200\), Value \(data=1e\+200\) gave inf"):
        Value(1e200) * Value(1e200)
    assert Value(709.0).exp().data < math.inf and Value(-1e4).exp().data == 0.0


def test_sigmoid_is_stable_at_extremes():
    for z, s in ((1e4, 1.0), (-1e4, 0.0), (800.0, 1.0), (-800.0, 0.0)):
        v = Value(z)
        out = v.sigmoid()
        out.backward()
        assert out.data == s and v.grad == 0.0


# --- drawing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("direction", ["LR", "TB"])
def test_draw_graph_one_box_per_node_one_arrow_per_edge(direction):
    x, y = Value(1.5, "x"), Value(-0.5, "y")
    f = (x * y).tanh() + x * x                 # x * x: one edge drawn for a repeated parent
    f.backward()
    rc_before = dict(plt.rcParams)
    ax = draw_graph(f, direction=direction)
    order = topological_order(f)
    texts = [t.get_text() for t in ax.texts if t.get_text()]
    arrows = [t for t in ax.texts if not t.get_text()]   # each arrow is an empty annotation
    assert len(texts) == len(order) == 6
    assert len(arrows) == sum(len(set(n.parents)) for n in order) == 6
    assert "x\ndata 1.5\ngrad 2.702" in texts  # label, data and grad to 4 significant digits
    assert f"tanh\ndata {math.tanh(-0.75):.4g}\ngrad 1" in texts
    assert dict(plt.rcParams) == rc_before
    plt.close(ax.figure)


def test_draw_graph_rejects_unknown_direction():
    with pytest.raises(ValueError, match=r"direction must be 'LR' or 'TB', got 'up'"):
        draw_graph(Value(1.0), direction="up")

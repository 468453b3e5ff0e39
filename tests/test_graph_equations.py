"""Every labelled equation of chapters/02_computation_graph.ipynb, checked numerically or symbolically.

Each test name contains the label of the equation it checks (eq-graph-chain -> test_eq_graph_chain).
"""

import math

import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

from bpkit.engine import Value, topological_order

H = 1e-6


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def example(x, y):
    """eq-graph-example: u = x y, v = tanh u, f = v + x."""
    u = x * y
    v = u.tanh()
    return u, v, v + x


def consumers_of(order):
    out = {node: [] for node in order}
    for node in order:
        for parent, local in zip(node.parents, node.local_grads):
            out[parent].append((node, local))
    return out


# random expression graphs over three inputs; each op reads earlier nodes, so fan-out is common
OPS = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "sub": lambda a, b: a - b,
       "tanh": lambda a, b: a.tanh(), "sigmoid": lambda a, b: a.sigmoid()}
programs = st.lists(st.tuples(st.sampled_from(sorted(OPS)), st.integers(0, 30), st.integers(0, 30)),
                    min_size=1, max_size=8)


def run(program, xs):
    nodes = list(xs)
    for op, i, j in program:
        nodes.append(OPS[op](nodes[i % len(nodes)], nodes[j % len(nodes)]))
    return nodes[-1]


def forward_mode(root, wrt):
    """eq-graph-forward-mode: tangents carried forward along the edges."""
    dot = {}
    for node in topological_order(root):
        dot[node] = 1.0 if node is wrt else sum(g * dot[p] for p, g in zip(node.parents, node.local_grads))
    return dot[root]


@given(x=floats(-3, 3), y=floats(-3, 3))
def test_eq_graph_example(x, y):
    xv, yv = Value(x, "x"), Value(y, "y")
    u, v, f = example(xv, yv)
    assert f.data == math.tanh(x * y) + x
    assert u.parents == (xv, yv) and v.parents == (u,) and f.parents == (v, xv)


@given(a=floats(-10, 10), b=floats(-10, 10))
def test_eq_graph_local_add(a, b):
    s_a, s_b = sp.symbols("a b")
    expected = tuple(float(sp.diff(s_a + s_b, s).subs({s_a: a, s_b: b})) for s in (s_a, s_b))
    assert (Value(a) + Value(b)).local_grads == expected == (1.0, 1.0)


@given(a=floats(-10, 10), b=floats(-10, 10))
def test_eq_graph_local_mul(a, b):
    s_a, s_b = sp.symbols("a b")
    expected = tuple(float(sp.diff(s_a * s_b, s).subs({s_a: a, s_b: b})) for s in (s_a, s_b))
    assert (Value(a) * Value(b)).local_grads == expected == (b, a)


_a, _b = sp.symbols("a b", real=True)
TABLE = {  # name: (sympy expression, engine operation, arguments to check at)
    "sub": (_a - _b, lambda a, b: a - b, [(0.3, -1.7), (2.0, 5.0)]),
    "div": (_a / _b, lambda a, b: a / b, [(0.3, -1.7), (-2.0, 0.25)]),
    "neg": (-_a, lambda a, b: -a, [(0.3, 0.0), (-4.0, 0.0)]),
    "pow3": (_a**3, lambda a, b: a**3, [(0.3, 0.0), (-1.5, 0.0)]),
    "pow-0.5": (_a**-0.5, lambda a, b: a**-0.5, [(0.3, 0.0), (4.0, 0.0)]),
    "exp": (sp.exp(_a), lambda a, b: a.exp(), [(0.3, 0.0), (-2.0, 0.0)]),
    "log": (sp.log(_a), lambda a, b: a.log(), [(0.3, 0.0), (7.0, 0.0)]),
    "tanh": (sp.tanh(_a), lambda a, b: a.tanh(), [(0.3, 0.0), (-2.0, 0.0)]),
    "sigmoid": (1 / (1 + sp.exp(-_a)), lambda a, b: a.sigmoid(), [(0.3, 0.0), (-2.0, 0.0)]),
    "relu": (sp.Piecewise((_a, _a > 0), (0, True)), lambda a, b: a.relu(), [(0.3, 0.0), (-2.0, 0.0)]),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_eq_graph_local_table(name):
    expr, op, points = TABLE[name]
    for a, b in points:
        va, vb = Value(a), Value(b)
        out = op(va, vb)
        assert math.isclose(out.data, float(expr.subs({_a: a, _b: b})), rel_tol=1e-13)
        for parent, local in zip(out.parents, out.local_grads):
            symbol = _a if parent is va else _b
            assert math.isclose(local, float(sp.diff(expr, symbol).subs({_a: a, _b: b})), rel_tol=1e-13, abs_tol=1e-15)


@given(program=programs, x=st.lists(floats(-1.5, 1.5), min_size=3, max_size=3))
def test_eq_graph_chain(program, x):
    """After backward, every node's grad is the sum over its consumers of consumer grad x local derivative."""
    out = run(program, [Value(t) for t in x])
    order = topological_order(out)
    out.backward()
    consumers = consumers_of(order)
    assert out.grad == 1.0
    for node in order[:-1]:
        expected = math.fsum(c.grad * local for c, local in consumers[node])
        assert math.isclose(node.grad, expected, rel_tol=1e-12, abs_tol=1e-15)


def test_eq_graph_chain_interior_adjoint_is_a_derivative():
    """u.grad is df/du with everything downstream of u following along: here f = tanh(u) + x, x fixed."""
    x, y = Value(1.5, "x"), Value(-0.5, "y")
    u, v, f = example(x, y)
    f.backward()
    numeric = (math.tanh(u.data + H) - math.tanh(u.data - H)) / (2 * H)
    assert abs(u.grad - numeric) < 1e-9 and v.grad == 1.0


def _paths(node, target):
    """Every path from ``target`` to ``node`` as the list of local derivatives along it."""
    if node is target:
        return [[]]
    return [path + [local] for parent, local in zip(node.parents, node.local_grads) for path in _paths(parent, target)]


@given(program=programs, x=st.lists(floats(-1.5, 1.5), min_size=3, max_size=3))
def test_eq_graph_paths(program, x):
    xs = [Value(t) for t in x]
    out = run(program, xs)
    out.backward()
    for xi in xs:
        paths = _paths(out, xi)
        assume(len(paths) < 2000)
        total = math.fsum(math.prod(path) for path in paths)
        assert math.isclose(xi.grad, total, rel_tol=1e-10, abs_tol=1e-12)


@given(x=floats(-3, 3), y=floats(-3, 3))
def test_eq_graph_fanout(x, y):
    xv, yv = Value(x), Value(y)
    _, v, f = example(xv, yv)
    f.backward()
    t = v.data
    assert math.isclose(xv.grad, 1 + y * (1 - t * t), rel_tol=1e-13, abs_tol=1e-15)
    assert math.isclose(yv.grad, x * (1 - t * t), rel_tol=1e-13, abs_tol=1e-15)
    numeric = (math.tanh((x + H) * y) + x + H - math.tanh((x - H) * y) - (x - H)) / (2 * H)
    assert abs(xv.grad - numeric) < 1e-8
    assert xv.grad - y * (1 - t * t) == pytest.approx(1.0)     # the direct path x -> f adds exactly 1


@given(program=programs, x=st.lists(floats(-1.5, 1.5), min_size=3, max_size=3))
def test_eq_graph_forward_mode(program, x):
    xs = [Value(t) for t in x]
    out = run(program, xs)
    out.backward()
    for xi in xs:
        assert math.isclose(forward_mode(out, xi), xi.grad, rel_tol=1e-12, abs_tol=1e-15)


class CountingFloat(float):
    """A local derivative that counts how often the sweeps multiply it."""

    count = 0

    def __mul__(self, other):
        CountingFloat.count += 1
        return float(self) * other

    __rmul__ = __mul__


@given(program=programs, x=st.lists(floats(-1.5, 1.5), min_size=3, max_size=3))
def test_eq_graph_cost(program, x):
    """Reverse mode: one multiply-add per edge for all inputs; forward mode: that, once per input."""
    xs = [Value(t) for t in x]
    out = run(program, xs)
    order = topological_order(out)
    for node in order:
        node.local_grads = tuple(CountingFloat(g) for g in node.local_grads)
    n_edges = sum(len(node.parents) for node in order)
    CountingFloat.count = 0
    out.backward()
    assert CountingFloat.count == n_edges
    CountingFloat.count = 0
    for xi in xs:
        forward_mode(out, xi)
    assert CountingFloat.count == len(xs) * n_edges

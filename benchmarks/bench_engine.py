"""Benchmark: bpkit.engine.Value against a closure-per-op scalar engine (micrograd's design).

Both engines build the same graph: a 2-16-16-1 ReLU network on 100 make_moons points with
the hinge loss and an L2 penalty (about 66k nodes per step). One step is: zero the parameter
gradients, build the graph (forward), backward, and drop the graph. Reported per step:
time, microseconds per node, million nodes per second and full (generation-2) garbage
collections, with Python's default GC and with the GC disabled during the step.

Engines run in alternating blocks (round robin), each block starting from a clean heap
(an untimed ``gc.collect()``) with one untimed warm-up step; figures are medians.

Run: ``python benchmarks/bench_engine.py [--rounds 3] [--steps 2]`` (about 40 s of CPU time).
"""

import argparse
import gc
import statistics
import sys
import time

import numpy as np
from sklearn.datasets import make_moons

from bpkit.engine import Value, topological_order


class ClosureValue:
    """A scalar engine in micrograd's design: every op stores a closure that captures ``out``."""

    def __init__(self, data, _children=(), _op=""):
        self.data, self.grad = data, 0.0
        self._backward = lambda: None
        self._prev, self._op = set(_children), _op

    def __add__(self, other):
        other = other if isinstance(other, ClosureValue) else ClosureValue(other)
        out = ClosureValue(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, ClosureValue) else ClosureValue(other)
        out = ClosureValue(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = ClosureValue(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def topo(self):
        topo, visited = [], set()

        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)
        build_topo(self)
        return topo

    def backward(self):
        topo = self.topo()
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()


def make_params(engine, rng, sizes=(2, 16, 16, 1)):
    """Per layer, a list of neurons ``(w_list, b)`` with weights uniform in [-1, 1]."""
    return [[([engine(float(w)) for w in rng.uniform(-1, 1, n_in)], engine(0.0)) for _ in range(n_out)]
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def all_params(layers):
    return [p for layer in layers for w, b in layer for p in (*w, b)]


def total_loss(engine, layers, X, y, alpha=1e-4):
    """micrograd's demo loss: mean hinge loss max(0, 1 - y * score) + alpha * sum(p^2)."""
    losses = []
    for xrow, yi in zip(X, y):
        a = [engine(float(v)) for v in xrow]
        for i, layer in enumerate(layers):
            z = [sum((wi * ai for wi, ai in zip(w, a)), b) for w, b in layer]
            a = [zj.relu() for zj in z] if i < len(layers) - 1 else z
        losses.append((1 + -float(yi) * a[0]).relu())
    data_loss = sum(losses) * (1.0 / len(losses))
    return data_loss + alpha * sum(p * p for p in all_params(layers))


def step(engine, layers, X, y):
    """Zero grads, build, backward; the graph is dropped on return. Returns the loss value."""
    for p in all_params(layers):
        p.grad = 0.0
    loss = total_loss(engine, layers, X, y)
    loss.backward()
    return loss.data


class GCCounter:
    """Counts full (generation-2) collections through ``gc.callbacks``."""

    def __init__(self):
        self.full = 0
        gc.callbacks.append(self)

    def __call__(self, phase, info):
        if phase == "start" and info["generation"] == 2:
            self.full += 1


def check_same(X, y):
    """Both engines give the same loss and gradients on the first step."""
    layers = {e: make_params(e, np.random.default_rng(0)) for e in (Value, ClosureValue)}
    losses = {e: step(e, layers[e], X, y) for e in layers}
    grads = {e: np.array([p.grad for p in all_params(layers[e])]) for e in layers}
    assert abs(losses[Value] - losses[ClosureValue]) < 1e-12, losses
    assert np.allclose(grads[Value], grads[ClosureValue], rtol=1e-12, atol=1e-15)
    nodes = {e: len(topological_order(total_loss(e, layers[e], X, y))) if e is Value
             else len(total_loss(e, layers[e], X, y).topo()) for e in layers}
    assert nodes[Value] == nodes[ClosureValue], nodes
    print(f"first step: both engines give loss {losses[Value]:.12f} and the same {len(grads[Value])} gradients "
          f"(max difference {np.max(np.abs(grads[Value] - grads[ClosureValue])):.1e})")
    return nodes[Value]


def measure(X, y, gc_mode, rounds, steps, counter):
    """Round-robin blocks; returns {engine name: (wall times, CPU times, full collections per step)}."""
    engines = {"bpkit.engine.Value": Value, "closure engine": ClosureValue}
    layers = {name: make_params(e, np.random.default_rng(0)) for name, e in engines.items()}
    results = {name: ([], [], []) for name in engines}
    for _ in range(rounds):
        for name, engine in engines.items():
            gc.collect()
            for i in range(steps + 1):                   # step 0 is an untimed warm-up
                if gc_mode == "disabled":
                    gc.disable()
                full0, t0, c0 = counter.full, time.perf_counter(), time.process_time()
                step(engine, layers[name], X, y)
                c1, t1, full1 = time.process_time(), time.perf_counter(), counter.full
                gc.enable()
                if gc_mode == "disabled":
                    gc.collect()                         # untimed: the closure graph needs the GC to be freed
                if i > 0:
                    for column, value in zip(results[name], (t1 - t0, c1 - c0, full1 - full0)):
                        column.append(value)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per engine per round")
    args = parser.parse_args()
    start = time.perf_counter()
    sys.setrecursionlimit(10_000)                        # the closure engine's recursive topological sort
    X, y = make_moons(n_samples=100, noise=0.1, random_state=1)
    y = 2.0 * y - 1.0
    nodes = check_same(X, y)
    counter = GCCounter()
    print(f"graph: {nodes} nodes per step; {args.rounds} rounds x {args.steps} timed steps per engine; "
          f"Python {sys.version.split()[0]}\n")
    print("Medians per step. Wall time includes waiting for a shared CPU; CPU time is this process's own.")
    print(f"{'engine':<20} {'GC':<9} {'wall ms':>8} {'CPU ms':>8} {'min CPU':>8} {'us/node':>8} "
          f"{'M nodes/s':>10} {'gen-2 GC/step':>14}")
    medians = {}
    for gc_mode in ("default", "disabled"):
        for name, (wall, cpu, fulls) in measure(X, y, gc_mode, args.rounds, args.steps, counter).items():
            med_wall, med_cpu = statistics.median(wall), statistics.median(cpu)
            medians[name, gc_mode] = (med_wall, med_cpu)
            print(f"{name:<20} {gc_mode:<9} {med_wall * 1e3:8.1f} {med_cpu * 1e3:8.1f} {min(cpu) * 1e3:8.1f} "
                  f"{med_cpu / nodes * 1e6:8.2f} {nodes / med_cpu / 1e6:10.3f} {statistics.mean(fulls):14.1f}")
    print("(us/node and M nodes/s from CPU time; with the GC disabled, the closure engine's graphs are freed\n"
          " afterwards by an untimed gc.collect(), while bpkit's are freed by refcounting inside the step)")
    for gc_mode in ("default", "disabled"):
        (w_fast, c_fast), (w_slow, c_slow) = medians["bpkit.engine.Value", gc_mode], medians["closure engine", gc_mode]
        print(f"GC {gc_mode}: bpkit.engine.Value is {w_slow / w_fast:.1f}x faster than the closure engine "
              f"(wall), {c_slow / c_fast:.1f}x (CPU)")
    print(f"total run time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

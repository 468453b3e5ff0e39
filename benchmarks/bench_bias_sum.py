"""Benchmark: the bias gradient of ``Dense.backward`` as ``delta.sum(axis=0)`` or as the product ``1^T delta``.

Both give the same numbers. ``bpkit.Dense.backward`` writes ``np.ones(len(delta), delta.dtype) @ delta``;
the variant below writes ``delta.sum(axis=0)``. The two train the same network with the natural loop
(zero_grad, forward, loss, backward, step) in alternating runs, in one process at one thread, and the
report gives the median and quartiles of the per-round time ratios, for the two networks of
``bench_mlp.py``: make_moons(1000) 2-10-8-1 full batch (float64) and 784-256-128-10 at batch 128 (float32).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_bias_sum.py`` (about 30 s).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import bpkit as bk  # noqa: E402
from bpkit import data, optim  # noqa: E402


class SumDense(bk.Dense):
    def backward(self, delta, input_grad=True):
        self.W.grad += self.a_prev.T @ delta
        self.b.grad += delta.sum(axis=0)
        return delta @ self.W.value.T if input_grad else None


def trainer(sizes, dense_cls, dtype, loss, X, y):
    model = bk.MLP(sizes, "relu", rng=np.random.default_rng(1), dtype=dtype)
    for layer in model.dense_layers:
        layer.__class__ = dense_cls
    opt = optim.SGD(model.parameters(), lr=0.01)

    def run(steps):
        start = time.perf_counter()
        for i in range(steps):
            rows = slice(i * 128 % len(X), i * 128 % len(X) + 128) if len(X) > 1000 else slice(None)
            opt.zero_grad()
            loss.forward(model.forward(X[rows]), y[rows])
            model.backward(loss.backward())
            opt.step()
        return time.perf_counter() - start
    return run


def paired(a, b, steps, rounds=40):
    a(steps), b(steps)  # warm-up
    ratios = []
    for r in range(rounds):
        first, second = (a, b) if r % 2 else (b, a)
        t_first, t_second = first(steps), second(steps)
        ratios.append(t_first / t_second if first is a else t_second / t_first)
    q = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), q[0], q[2]


def main():
    rng = np.random.default_rng(0)
    X, y = data.load_moons(1000, 0.2, rng)
    small = [trainer([2, 10, 8, 1], cls, np.float64, bk.BCEWithLogits(), X, y) for cls in (SumDense, bk.Dense)]
    Xl = rng.normal(size=(12_800, 784)).astype(np.float32)
    yl = rng.integers(0, 10, size=12_800)
    large = [trainer([784, 256, 128, 10], cls, np.float32, bk.SoftmaxCrossEntropy(), Xl, yl) for cls in (SumDense, bk.Dense)]
    print("time with delta.sum(axis=0) / time with 1^T delta, per round (median, quartiles), one thread")
    for name, (a, b), steps in (("moons 2-10-8-1, full batch", small, 100), ("784-256-128-10, batch 128", large, 50)):
        median, q1, q3 = paired(a, b, steps)
        print(f"  {name:28s} {median:.3f} ({q1:.3f}-{q3:.3f})")


if __name__ == "__main__":
    main()

r"""How often the directional check catches a small bug: measured over seeds, against the formula.

The bug: in a 784-256-128-10 tanh network (softmax cross-entropy, a batch of 32 standard-normal
inputs with random labels), the gradient of one row of $W_1$ comes out 2 % too small. Seed ``s``
builds the network, the data and the row, and draws the check's directions.

The formula. Backprop returns $g + d$. A unit direction $v$ confined to a block of $P_b$ parameters
(all of them, or one array) sees $|d \cdot v|$, distributed like $\lVert d\rVert\, |Z| / \sqrt{P_b}$ with
$Z \sim N(0, 1)$; the line fails when that exceeds $\mathrm{tol} \cdot s$, $s$ the line's scale. So one
direction misses with probability $\operatorname{erf}(t / \sqrt 2)$, $t = \mathrm{tol}\, s \sqrt{P_b} / \lVert d\rVert$,
and a report misses when every line that can see the bug misses (here ``dir:all`` and ``dir:W1``).

Rows of the table, all from ``bk.directional_check`` (the first three from ``directions=1``, whose
lines each use one direction):

- one whole-network direction: the ``dir:all`` line alone, scale $\lVert g\rVert$;
- ``dir:all`` and one direction per array, every line scaled by the whole network's $\lVert g\rVert$;
- ``dir:all`` and one direction per array, each array's line scaled by its own $\lVert g_a\rVert$;
- the default: ``dir:all`` and twelve directions per array, scaled by $\lVert g_a\rVert$.

"predicted" is the expected number of seeds caught, $\sum_s (1 - \Pr_s[\text{miss}])$, with the 95 %
interval of that count. The last line pools every single direction inside ``W1`` of the default runs.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/directional_power.py [--seeds 200]``
(about a minute and a half of CPU time for 200 seeds).
"""

import os

if __name__ == "__main__":  # one BLAS thread, set before numpy loads (tests import this module as it is)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from math import erf, sqrt  # noqa: E402

import numpy as np  # noqa: E402

import bpkit as bk  # noqa: E402
from bpkit import planted_bugs  # noqa: E402

SIZES, BATCH, TOL, TOO_SMALL = [784, 256, 128, 10], 32, 1e-6, 0.02


class RowTooSmallDense(bk.Dense):
    """A ``Dense`` whose weight gradient comes out 2 % too small in row ``row``."""

    row = 0

    def backward(self, delta, input_grad=True):
        out = super().backward(delta, input_grad)
        self.W.grad[self.row] -= TOO_SMALL * (self.a_prev[:, self.row] @ delta)
        return out


def build(seed):
    """The seeded set-up ``(model, loss, X, y)``, with the bug planted in ``W1``."""
    rng = np.random.default_rng(seed)
    model = bk.MLP(SIZES, "tanh", rng=rng)
    X, y = rng.normal(size=(BATCH, SIZES[0])), rng.integers(0, SIZES[-1], size=BATCH)
    planted_bugs.swap_layer(model, 0, RowTooSmallDense).row = int(rng.integers(SIZES[0]))
    return model, bk.SoftmaxCrossEntropy(), X, y


def miss(t):
    r"""Probability that one random direction misses: $\Pr[|Z| < t] = \operatorname{erf}(t/\sqrt2)$."""
    return erf(t / sqrt(2))


def thresholds(model):
    r"""$t$ of the ``dir:all`` line, and of a ``W1`` direction scaled by $\lVert g\rVert$ and by $\lVert g_{W_1}\rVert$.

    Call right after a check: ``.grad`` holds the gradient it checked, $g + d$.
    """
    params = model.parameters()
    W1 = model.dense_layers[0]
    g_norm = np.sqrt(sum(np.sum(p.grad ** 2) for p in params))
    g_W1 = np.linalg.norm(W1.W.grad)
    d_norm = TOO_SMALL / (1 - TOO_SMALL) * np.linalg.norm(W1.W.grad[W1.row])  # |d| from the row's (1 - 2 %) value
    P, P_W1 = sum(p.value.size for p in params), W1.W.value.size
    return TOL * g_norm * sqrt(P) / d_norm, TOL * g_norm * sqrt(P_W1) / d_norm, TOL * g_W1 * sqrt(P_W1) / d_norm


def run(seed):
    """Outcomes (True = caught) of the four rows, miss probabilities, and the single ``W1`` directions."""
    model, loss, X, y = build(seed)
    one = bk.directional_check(model, loss, X, y, np.random.default_rng(seed + 10_000), tol=TOL, directions=1)
    g_norm = np.sqrt(sum(np.sum(p.grad ** 2) for p in model.parameters()))
    t_all, t_W1_by_g, t_W1 = thresholds(model)
    default = bk.directional_check(model, loss, X, y, np.random.default_rng(seed + 10_000), tol=TOL)
    k = default.results[1].analytic.size
    whole = not one.results[0].passed
    by_g = any(np.max(np.abs(r.analytic - r.numeric)) / g_norm >= TOL for r in one.results)
    own = not one.passed
    caught = (whole, by_g, own, not default.passed)
    p_all = miss(t_all)
    missing = (p_all, p_all * miss(t_W1_by_g), p_all * miss(t_W1), p_all * miss(t_W1) ** k)
    W1 = default.results[1]
    assert W1.name == "dir:W1" and one.results[0].name == "dir:all"
    W1_scale = float(np.linalg.norm(model.dense_layers[0].W.grad))
    W1_caught = np.abs(W1.analytic - W1.numeric) / W1_scale >= TOL
    return caught, missing, W1_caught, miss(t_W1), (t_all, t_W1_by_g, t_W1), k


def interval(probabilities):
    """Expected number of successes of independent trials, and its 95 % interval (normal approximation)."""
    p = np.asarray(probabilities)
    mean, sd = p.sum(), np.sqrt(np.sum(p * (1 - p)))
    return mean, max(0.0, mean - 1.96 * sd), min(len(p), mean + 1.96 * sd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    n_seeds = parser.parse_args().seeds
    start = time.perf_counter()
    runs = [run(seed) for seed in range(n_seeds)]
    elapsed = time.perf_counter() - start
    k = runs[0][5]
    ts = np.array([r[4] for r in runs])
    print(f"MLP {'-'.join(map(str, SIZES))}, tanh, softmax cross-entropy, batch {BATCH}; one row of dW1 "
          f"{TOO_SMALL:.0%} too small; tol {TOL:g}; {n_seeds} seeds in {elapsed:.0f} s")
    print(f"median t: dir:all {np.median(ts[:, 0]):.3f}, W1 scaled by |g| {np.median(ts[:, 1]):.3f}, "
          f"W1 scaled by |g_W1| {np.median(ts[:, 2]):.3f}")
    names = ["one whole-network direction (scale |g|)",
             "dir:all + 1 per array, scale |g|",
             "dir:all + 1 per array, scale |g_a|",
             f"default: dir:all + {k} per array, scale |g_a|"]
    print()
    print("| check | caught, seeds 0-19 | predicted | caught, all seeds | predicted (95 % interval) | P(miss), median seed |")
    print("|---|---|---|---|---|---|")
    for i, name in enumerate(names):
        caught = [r[0][i] for r in runs]
        p_caught = [1 - r[1][i] for r in runs]
        mean20 = sum(p_caught[:20])
        mean, lo, hi = interval(p_caught)
        print(f"| {name} | {sum(caught[:20])}/{min(20, n_seeds)} | {mean20:.1f} | {sum(caught)}/{n_seeds} "
              f"| {mean:.1f} ({lo:.1f}-{hi:.1f}) | {np.median([r[1][i] for r in runs]):.2g} |")
    single = np.concatenate([r[2] for r in runs])
    p_single = np.repeat([1 - r[3] for r in runs], k)
    mean, lo, hi = interval(p_single)
    print(f"| one direction inside W1, scale |g_W1| | | | {int(single.sum())}/{single.size} directions "
          f"| {mean:.1f} ({lo:.1f}-{hi:.1f}) | {np.median([r[3] for r in runs]):.2g} |")
    p_all, p_W1 = np.array([r[1][0] for r in runs]), np.array([r[3] for r in runs])
    print()
    print("predicted probability that the report misses the bug, mean over the seeds (and the worst seed), "
          "by directions per array:")
    for n_dir in (1, 5, 8, 9, 10, 11, 12, 15):
        p_report = p_all * p_W1 ** n_dir
        print(f"  {n_dir:>2}: {p_report.mean():.1e} ({p_report.max():.1e})")

if __name__ == "__main__":
    main()

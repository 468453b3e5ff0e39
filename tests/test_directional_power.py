r"""How often ``directional_check`` catches a small bug in a large network, against its formula.

The network: 784-256-128-10, tanh, softmax cross-entropy, a batch of 32 standard-normal inputs
with random labels. The bug: the gradient of one row of $W_1$ comes out 2 % too small, so backprop
returns $g + d$ with $d$ in that row only. Seed ``s`` builds the network, the data and the row.

A unit direction $v$ confined to a block of $P_b$ parameters sees $d \cdot v$, close to
$\lVert d\rVert Z / \sqrt{P_b}$ with $Z \sim N(0, 1)$; a line whose error is scaled by $s$ misses the bug
when $|d \cdot v| < \mathrm{tol}\cdot s$, with probability $\operatorname{erf}(t/\sqrt 2)$,
$t = \mathrm{tol}\, s \sqrt{P_b} / \lVert d\rVert$. The miss counts below are compared with that formula:
the prediction is the sum of the per-seed probabilities, its 95 % interval $\pm 1.96$ standard deviations
of a sum of independent Bernoulli trials. (The seeds are fixed, so each comparison is deterministic.)
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import bpkit as bk

# The set-up, the bug and the formula are the benchmark's own (benchmarks/directional_power.py).
_spec = importlib.util.spec_from_file_location(
    "directional_power", Path(__file__).parents[1] / "benchmarks" / "directional_power.py")
power = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(power)
build, TOL = power.build, power.TOL


def miss_probabilities(model):
    """Predicted miss of one ``dir:all`` direction and of one direction inside ``W1`` (on its own scale)."""
    t_all, _, t_W1 = power.thresholds(model)
    return power.miss(t_all), power.miss(t_W1)


def within_95_percent(observed, probabilities):
    mean, low, high = power.interval(probabilities)
    return low <= observed <= high, f"observed {observed}, predicted {mean:.1f} in [{low:.1f}, {high:.1f}]"


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """Products of this size run faster on one thread, and far faster on a busy machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def default_runs():
    """(report, predicted misses, |g_W1|) of the default check on seeds 0-19."""
    runs = []
    for seed in range(20):
        model, loss, X, y = build(seed)
        report = bk.directional_check(model, loss, X, y, np.random.default_rng(seed + 10_000), tol=TOL)
        runs.append((report, miss_probabilities(model), np.linalg.norm(model.dense_layers[0].W.grad)))
    return runs


def test_eq_gradcheck_directions_needed_default_catches_the_row_bug_for_every_seed(default_runs):
    """Twelve directions per array, the default: the bug is caught on every seed and only the lines
    that can see it fail; the predicted miss, erf(t_all / sqrt 2) erf(t_W1 / sqrt 2)^12, averages below 1e-3."""
    for report, _, _ in default_runs:
        W1_line = report.results[1]
        assert W1_line.name == "dir:W1" and W1_line.analytic.size == 12
        assert not W1_line.passed, report
        assert {r.name for r in report.results if not r.passed} <= {"dir:all", "dir:W1"}, report
    p_report = [p_all * p_W1 ** 12 for _, (p_all, p_W1), _ in default_runs]
    assert np.mean(p_report) < 1e-3


def test_eq_gradcheck_direction_miss_one_direction_inside_W1_as_predicted(default_runs):
    """Every single direction of the dir:W1 lines (20 seeds x 12), error over |g_W1|."""
    missed, probabilities = 0, []
    for report, (_, p_W1), W1_scale in default_runs:
        line = report.results[1]
        missed += int(np.sum(np.abs(line.analytic - line.numeric) / W1_scale < TOL))
        probabilities += [p_W1] * line.analytic.size
    ok, message = within_95_percent(missed, probabilities)
    assert ok, message
    assert 0.3 < missed / len(probabilities) < 0.7          # one direction misses about half the time


def test_eq_gradcheck_direction_miss_one_whole_network_direction_as_predicted():
    """The dir:all line alone (one direction over all P parameters, error over |g|), 60 seeds."""
    missed, probabilities = 0, []
    for seed in range(60):
        model, loss, X, y = build(seed)
        report = bk.directional_check(model, loss, X, y, np.random.default_rng(seed + 10_000), tol=TOL, directions=1)
        missed += report.results[0].passed
        probabilities.append(miss_probabilities(model)[0])
    ok, message = within_95_percent(missed, probabilities)
    assert ok, message
    assert missed > 20                                      # far from "caught with probability one"

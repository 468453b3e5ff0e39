"""Benchmark: bpkit's natural training loop against a hand-written numpy loop and PyTorch, on one CPU thread.

Method. Everything runs in one process with one thread (the thread variables are set before numpy and
torch load, and ``torch.set_num_threads(1)``). The three implementations start from the same initial
weights and train on the same minibatches (rows of a seeded permutation, gathered with ``X[idx]``).
They run in short runs that alternate, in an order that rotates from round to round; each ratio is
taken within one round, so a slow moment of a shared machine hits both of its sides, and the report
gives the median and quartiles of the per-round ratios. One untimed round warms up first.

Cases: (1) MLP 784-256-128-10, ReLU, softmax cross-entropy, batch 128, float32, SGD, 60,000 seeded
synthetic samples, 50 batches per run; (2) make_moons(1000), 2-10-8-1, ReLU, BCE with logits,
float64, full-batch SGD, 100 epochs per run. "Same work": 20 float64 steps of case 1 from the same
weights on the same batches must give the same loss in all three to 1e-10.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_mlp.py [--rounds 60]`` (about two minutes on a 2-core machine).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import itertools  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bpkit as bk  # noqa: E402
from bpkit import data, optim  # noqa: E402

torch.set_num_threads(1)

SIZES, BATCH, N_SAMPLES, LR = [784, 256, 128, 10], 128, 60_000, 0.01
SMALL_SIZES, SMALL_LR = [2, 10, 8, 1], 0.1
STEPS_PER_RUN, EPOCHS_PER_RUN = 50, 100
TARGETS = [  # (name, case, numerator, denominator, goal, ">=" or "<=")
    ("bpkit time / numpy-loop time, MLP", "large", "bpkit", "numpy", 1.10, "<="),
    ("PyTorch time / bpkit time, MLP", "large", "PyTorch", "bpkit", 1.15, ">="),
    ("PyTorch time / bpkit time, moons", "small", "PyTorch", "bpkit", 2.0, ">="),
]


# --- the three implementations: each runs `steps` minibatches from `batches` and returns the last loss ---

def bpkit_run(model, loss, opt, batches, steps):
    """The natural loop a learner writes on bpkit's public API."""
    for _ in range(steps):
        X_batch, y_batch = next(batches)
        opt.zero_grad()
        y_hat = model.forward(X_batch)
        value = loss.forward(y_hat, y_batch)
        model.backward(loss.backward())
        opt.step()
    return value


def numpy_run(params, loss_and_delta, lr, batches, steps):
    """The same algorithm by hand: no checks, no classes, no input gradient for the first layer."""
    W1, b1, W2, b2, W3, b3 = params
    for _ in range(steps):
        x, t = next(batches)
        z1 = x @ W1 + b1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ W2 + b2
        a2 = np.maximum(z2, 0)
        z3 = a2 @ W3 + b3
        value, d3 = loss_and_delta(z3, t)
        d2 = (d3 @ W3.T) * (z2 > 0)
        d1 = (d2 @ W2.T) * (z1 > 0)
        for w, g in ((W3, a2.T @ d3), (b3, d3.sum(0)), (W2, a1.T @ d2), (b2, d2.sum(0)),
                     (W1, x.T @ d1), (b1, d1.sum(0))):
            w -= lr * g
    return value


def torch_run(model, loss, opt, batches, steps):
    """PyTorch's usual loop: nn.Sequential, autograd, torch.optim.SGD."""
    for _ in range(steps):
        X_batch, y_batch = next(batches)
        opt.zero_grad()
        value = loss(model(X_batch), y_batch)
        value.backward()
        opt.step()
    return value.item()


def softmax_ce(z, t):
    """Mean softmax cross-entropy of logits ``z`` for integer labels ``t``, and its gradient ``(p - Y) / N``."""
    shifted = z - z.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows, n = np.arange(len(t)), len(t)
    p = np.exp(logp)
    p[rows, t] -= 1
    return -logp[rows, t].sum() / n, p / n


def bce_logits(z, y):
    """Mean binary cross-entropy of logits ``z`` for targets ``y`` ``(N, 1)``; its gradient ``(sigmoid(z) - y) / N``."""
    n = len(z)
    return np.sum(np.logaddexp(0, z) - y * z) / n, (1 / (1 + np.exp(-z)) - y) / n


# --- models from the same initial weights, and the minibatches -----------------------------------------

def bpkit_model(sizes, params):
    model = bk.MLP(sizes, "relu", rng=np.random.default_rng(0), dtype=params[0].dtype)
    for p, value in zip(model.parameters(), params):
        p.value[...] = value
    return model


def torch_model(params):
    """nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) with these weights (a Linear's weight is W.T)."""
    layers = []
    for W, b in zip(params[::2], params[1::2]):
        linear = torch.nn.Linear(*W.shape, dtype=torch.float64 if W.dtype == np.float64 else torch.float32)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def minibatches(X, y, seed, index=lambda idx: idx):
    """Endless batches of BATCH rows, gathered along a seeded permutation (a new one each epoch)."""
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(len(X))
        for start in range(0, len(X) - BATCH + 1, BATCH):
            idx = index(perm[start:start + BATCH])
            yield X[idx], y[idx]


def trainers(X, y, params, loss_and_delta, bk_loss, torch_loss, lr, batches):
    """``{name: run(steps)}`` for the three implementations, each on its own copy of ``params``.

    ``batches(X, y, index)`` gives an endless iterator of (inputs, targets); ``index`` converts row indices.
    """
    model = bpkit_model([params[0].shape[0]] + [W.shape[1] for W in params[::2]], params)
    opt = optim.SGD(model.parameters(), lr=lr)
    own = [p.copy() for p in params]
    twin = torch_model(params)
    twin_opt = torch.optim.SGD(twin.parameters(), lr=lr)
    b_bpkit, b_numpy = batches(X, y, lambda i: i), batches(X, y, lambda i: i)
    b_torch = batches(torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy)
    return {"bpkit": lambda n: bpkit_run(model, bk_loss, opt, b_bpkit, n),
            "numpy": lambda n: numpy_run(own, loss_and_delta, lr, b_numpy, n),
            "PyTorch": lambda n: torch_run(twin, torch_loss, twin_opt, b_torch, n)}


# --- pairing ------------------------------------------------------------------------------------------

def paired(runs, amount, rounds):
    """Time ``runs[name](amount)`` for every name in every round, in an order that rotates each round.

    One untimed warm-up round first. Returns ``{name: [seconds per round]}`` and ``{name: last loss}``.
    """
    names = list(runs)
    times, last = {name: [] for name in names}, {}
    for r in range(-1, rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            last[name] = runs[name](amount)
            if r >= 0:
                times[name].append(time.perf_counter() - start)
    return times, last


def ratio_stats(times, num, den):
    """Median, quartiles, min and max of ``times[num][r] / times[den][r]`` over the rounds ``r``."""
    ratios = [a / b for a, b in zip(times[num], times[den])]
    q1, med, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return {"median": med, "q1": q1, "q3": q3, "min": min(ratios), "max": max(ratios)}


# --- the cases -----------------------------------------------------------------------------------------

def large_data(seed):
    """60,000 x 784 float32 standard-normal inputs, labels of a random linear teacher, the initial weights."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N_SAMPLES, SIZES[0]), dtype=np.float32)
    y = (X @ rng.standard_normal((SIZES[0], SIZES[-1])).astype(np.float32)).argmax(axis=1)
    params = [p.value for p in bk.MLP(SIZES, "relu", rng=rng, dtype=np.float32).parameters()]
    return X, y, params


def same_work(X, y, params, steps=20):
    """Train float64 copies for ``steps`` batches in all three; their losses must agree to 1e-10."""
    X64, y64, p64 = X[:steps * BATCH].astype(np.float64), y[:steps * BATCH], [p.astype(np.float64) for p in params]
    runs = trainers(X64, y64, p64, softmax_ce, bk.SoftmaxCrossEntropy(), torch.nn.CrossEntropyLoss(), LR,
                    lambda X_, y_, index: minibatches(X_, y_, 1, index))
    losses = {name: float(run(steps)) for name, run in runs.items()}
    spread = max(losses.values()) - min(losses.values())
    assert spread < 1e-10, f"the three implementations did not do the same work: {losses}"
    return losses, spread


def large_case(X, y, params, rounds):
    runs = trainers(X, y, params, softmax_ce, bk.SoftmaxCrossEntropy(), torch.nn.CrossEntropyLoss(), LR,
                    lambda X_, y_, index: minibatches(X_, y_, 2, index))
    return paired(runs, STEPS_PER_RUN, rounds)


def small_case(rounds, seed):
    rng = np.random.default_rng(seed)
    X, y = data.load_moons(1000, 0.2, rng)
    params = [p.value for p in bk.MLP(SMALL_SIZES, "relu", rng=rng).parameters()]
    runs = trainers(X, y, params, bce_logits, bk.BCEWithLogits(), torch.nn.BCEWithLogitsLoss(), SMALL_LR,
                    lambda X_, y_, index: itertools.repeat((X_, y_)))
    return paired(runs, EPOCHS_PER_RUN, rounds)


# --- report --------------------------------------------------------------------------------------------

def machine():
    cpuinfo = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    lines = [f"CPU: {model}, {os.cpu_count()} logical CPUs, avx512f {'present' if 'avx512f' in flags else 'absent'}, "
             f"avx2 {'present' if 'avx2' in flags else 'absent'}; load average at start {os.getloadavg()[0]:.2f}",
             f"Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
             f"(torch threads: {torch.get_num_threads()})",
             "environment: " + ", ".join(f"{v}={os.environ.get(v, '(unset)')}" for v in
                                         ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        lines.append("numpy's BLAS: threadpoolctl is not installed, so the BLAS library and kernel are not reported")
    else:
        for pool in threadpool_info():
            lines.append(f"thread pool: {pool.get('internal_api')} {pool.get('version') or ''}, kernel "
                         f"{pool.get('architecture', '-')}, {pool.get('num_threads')} thread(s), "
                         f"{os.path.basename(pool.get('filepath', ''))}")
    return lines


def print_ratios(title, times, pairs):
    print(f"\n{title}\n\n| ratio (per round) | median | quartiles | min - max |\n|---|---|---|---|")
    for num, den in pairs:
        s = ratio_stats(times, num, den)
        print(f"| {num} time / {den} time | {s['median']:.3f} | {s['q1']:.3f} - {s['q3']:.3f} "
              f"| {s['min']:.2f} - {s['max']:.2f} |")


def print_case(title, times, last, per_label, per_value, loss_format):
    print(f"\n## {title}\n")
    print(f"| implementation | median ms per run | {per_label} | last loss |\n|---|---|---|---|")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"| {name} | {med * 1e3:.1f} | {per_value(med)} | {loss_format.format(last[name])} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="paired rounds per case")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    print("# bench_mlp: one process, one thread\n")
    print("\n".join(machine()))

    X, y, params = large_data(args.seed)
    losses, spread = same_work(X, y, params)
    print(f"\nsame work: after 20 float64 steps from the same weights on the same batches, the losses are "
          + ", ".join(f"{k} {v:.15f}" for k, v in losses.items()) + f" (spread {spread:.1e} < 1e-10: ok)")

    large, large_last = large_case(X, y, params, args.rounds)
    print_case(f"MLP {'-'.join(map(str, SIZES))}, ReLU, softmax CE, batch {BATCH}, float32, SGD lr {LR}: "
               f"{args.rounds} rounds of {STEPS_PER_RUN} batches", large, large_last,
               "median samples/s", lambda med: f"{STEPS_PER_RUN * BATCH / med:,.0f}", "{:.6f}")
    print_ratios("Per-round ratios, MLP:", large, [("bpkit", "numpy"), ("PyTorch", "bpkit"), ("PyTorch", "numpy")])

    small, small_last = small_case(args.rounds, args.seed)
    print_case(f"make_moons(1000), {'-'.join(map(str, SMALL_SIZES))}, ReLU, BCE with logits, float64, full batch, "
               f"SGD lr {SMALL_LR}: {args.rounds} rounds of {EPOCHS_PER_RUN} epochs", small, small_last,
               "median µs per epoch", lambda med: f"{med / EPOCHS_PER_RUN * 1e6:.0f}", "{:.12f}")
    print_ratios("Per-round ratios, moons:", small, [("PyTorch", "bpkit"), ("bpkit", "numpy")])

    print("\n## Targets (per-round ratio, median; met by the median)\n")
    print("| target | median | quartiles | goal | met |\n|---|---|---|---|---|")
    missed = 0
    for name, case, num, den, goal, sense in TARGETS:
        s = ratio_stats(large if case == "large" else small, num, den)
        met = s["median"] <= goal if sense == "<=" else s["median"] >= goal
        missed += not met
        print(f"| {name} | {s['median']:.3f} | {s['q1']:.3f} - {s['q3']:.3f} | {sense} {goal:.2f} "
              f"| {'yes' if met else 'NO'} |")
    print(f"\n{'all targets met' if not missed else f'{missed} target(s) MISSED'}; "
          f"load average at end {os.getloadavg()[0]:.2f}; total run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

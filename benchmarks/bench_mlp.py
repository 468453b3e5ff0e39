"""Benchmark: bpkit's training throughput against PyTorch CPU, a plain numpy loop and a per-sample loop.

Every timed implementation runs in its own fresh subprocess that imports only what it needs
(bpkit's and numpy's processes never import torch; each worker checks this and records it).
The driver starts the subprocesses round robin, A,B,C,A,B,C, for ``--repeats`` rounds, so drift
on a shared machine hits them all alike; each subprocess loads the data, warms up, then times its
runs. Every figure is a median over all the timed runs of all the rounds, by wall clock (the
figure) and by CPU time (kept in the JSON and the targets table: on a shared machine it moves less).

Cases:

1. MLP 784-256-128-10, ReLU, softmax cross-entropy, batch 128, float32, SGD, 60,000 seeded
   synthetic samples, one epoch per subprocess and round; at 1 thread and at all threads
   (OMP/OPENBLAS/MKL_NUM_THREADS set before numpy and torch load, plus ``torch.set_num_threads``).
   All start from the same initial weights, written once with the data. bpkit trains with
   ``bpkit.train.fit``; PyTorch with ``nn.Sequential`` + autograd + ``optim.SGD``; "numpy
   reference" is the same algorithm written out by hand (loss value included; no checks; no input
   gradient for the first layer). The per-sample loop (column vectors, one example at a time, as
   in Nielsen's ``network.py``) trains 3 batches of 128 per subprocess; its samples/s stand for a
   whole epoch.
2. The GEMM limit: the 8 matrix products of one training step (3 forward, 3 weight gradients,
   2 input gradients; the first layer's input gradient is never needed), 469 steps of them,
   with numpy alone, in the same round robin. Efficiency = samples/s / GEMM-only samples/s,
   which is the real GEMM FLOP/s achieved over numpy's own GEMM FLOP/s.
2b. Cases 1 and 2 paired in one process, at 1 thread: short runs of 50 batches alternate, 60 rounds,
   in an order that rotates each round; bpkit, the numpy reference and the GEMMs alone share one
   process (no torch), bpkit and PyTorch share another. Each ratio is taken within one round, so
   a slow moment of the shared machine hits both of its sides, and the table gives the median and
   quartiles over the rounds. The one-epoch figures of separate processes move by up to 25% from
   round to round; a ratio within one round is spared most of that drift. (A separate process per
   implementation is still what a user runs, so both are shown.)
3. Small regime: make_moons(1000), 2-10-8-1 ReLU, BCE with logits, float64, 1000 full-batch
   epochs of SGD, 1 thread: bpkit (``fit``) against PyTorch and a hand-written numpy loop, plus
   two controls that run bpkit in a process that has imported torch (see the note below).
3b. Case 3 paired in one process: runs of 100 epochs of bpkit, PyTorch and the numpy loop alternate,
   60 rounds, in a rotating order; ratios per round, as in 2b.
4. Peak resident memory (``ru_maxrss``) of one epoch of case 1 at 1 thread, per implementation,
   each in a fresh process.
5. Where one bpkit step goes (each piece timed alone; numpy and bpkit only).
6. Same work: 20 identical float64 steps in bpkit and PyTorch end at the same loss (this check,
   not timed, imports both).

Note on importing torch next to numpy. An earlier version timed bpkit, numpy and PyTorch in one
process, and bpkit's small case looked slower there (0.58-0.72 s against 0.40 s in a process
without torch). A direct test (36 fresh processes, alternating: numpy/bpkit only; ``import
torch``; ``import torch`` + ``torch.set_num_threads(1)``; only torch's libgomp/libc10/libtorch_cpu
loaded with ctypes; torch imported and trained between the timed runs) found no effect larger
than the noise: medians of bpkit's CPU time were 0.49-0.63 s in every variant, and two processes
of the same variant differed by up to 30% (load average 1.5-4.5). The control rows of case 3
measure it in every run, in the same round robin: within 5% so far (1.03-1.06x with torch
imported, 0.96-1.06x with torch also trained in between), with no extra page faults.
Each implementation now runs in its own process, so the figures do not depend on it.

Note on page faults. Each timed run records its minor page faults and system time. In a process
of its own, the hand-written numpy reference of case 1 takes about 170,000 minor page faults per
epoch (about 0.4-0.5 s of system time), most likely glibc giving the top of its heap back to
the kernel after each step and faulting it in again for the 400-800 KB temporaries (``X[idx]``,
``x.T @ d1``), while bpkit's allocation pattern (about 120 faults per epoch) escapes this.
Whether a process hits it depends on its heap layout, so a same-process comparison can reverse.
Running everything with ``MALLOC_TOP_PAD_=67108864`` (inherited by the workers) removes these
faults for every implementation.

Prints Markdown tables, the ratios and the targets; writes benchmarks/results/bench_mlp.json.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_mlp.py [--repeats 5]`` (about 5 minutes on a
2-core machine).
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES, BATCH, N_SAMPLES, LR = (784, 256, 128, 10), 128, 60_000, 0.05
# forward 2*sum(n_in*n_out), weight gradients the same, input gradients of layers 2 and 3 only
WEIGHTS = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
FLOPS_PER_SAMPLE = 2 * WEIGHTS + 2 * WEIGHTS + 2 * sum(a * b for a, b in zip(SIZES[1:-1], SIZES[2:]))
TARGETS = {"vs_torch_1thread": 1.2, "gemm_fraction": 0.75, "small_vs_torch": 2.0}
RESULTS = Path(__file__).resolve().parent / "results" / "bench_mlp.json"
WARMUP_BATCHES, PER_SAMPLE_BATCHES, SMALL_RUNS, SMALL_EPOCHS = 20, 3, 2, 1000
PAIRED_ROUNDS, PAIRED_STEPS, SMALL_PAIRED_EPOCHS = 60, 50, 100
MLP_IMPLS = {"bpkit": "bpkit", "torch": "PyTorch", "numpy": "numpy reference",
             "per_sample": f"per-sample loop ({PER_SAMPLE_BATCHES} batches per process)", "gemm": "numpy GEMMs only"}
SMALL_IMPLS = {"bpkit": "bpkit", "torch": "PyTorch", "numpy": "numpy reference",
               "bpkit_torch_imported": "bpkit, torch imported (control)",
               "bpkit_torch_run": "bpkit, torch imported and trained in between (control)"}


# --- shared data: written once, loaded by every worker ------------------------------------------------

def worker_data(out, seed):
    """60,000 x 784 float32 standard-normal inputs, labels from a random linear teacher, and bpkit's initial weights."""
    import numpy as np

    import bpkit as bk

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N_SAMPLES, SIZES[0]), dtype=np.float32)
    teacher = rng.standard_normal((SIZES[0], SIZES[-1])).astype(np.float32)
    model = bk.MLP(list(SIZES), "relu", rng=rng, dtype=np.float32)
    out = Path(out)
    np.save(out / "X.npy", X)
    np.save(out / "y.npy", (X @ teacher).argmax(axis=1))
    np.savez(out / "params.npz", *[p.value for p in model.parameters()])
    return {"written": str(out)}


def load_data(path):
    """``X`` (60000, 784) float32, ``y`` (60000,) int, ``params`` [W1, b1, W2, b2, W3, b3] with W of shape (n_in, n_out)."""
    import numpy as np

    path = Path(path)
    with np.load(path / "params.npz") as f:
        params = [f[f"arr_{k}"] for k in range(2 * (len(SIZES) - 1))]
    return np.load(path / "X.npy"), np.load(path / "y.npy"), params


def bpkit_model(params, dtype):
    """A bpkit MLP holding copies of ``params`` (cast to ``dtype``)."""
    import numpy as np

    import bpkit as bk

    model = bk.MLP([params[0].shape[0]] + [W.shape[1] for W in params[::2]], "relu",
                   rng=np.random.default_rng(0), dtype=dtype)
    for p, value in zip(model.parameters(), params):
        p.value[...] = value
    return model


def torch_model(params, dtype):
    """nn.Sequential with the weights ``params`` (torch weight = W.T), ReLU between the layers."""
    import torch

    layers, pairs = [], list(zip(params[::2], params[1::2]))
    for k, (W, b) in enumerate(pairs):
        linear = torch.nn.Linear(*W.shape, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear] + ([torch.nn.ReLU()] if k < len(pairs) - 1 else [])
    return torch.nn.Sequential(*layers)


# --- one training epoch of each implementation ----------------------------------------------------------

def bpkit_epoch(model, loss, opt, X, y, rng, batches=None):
    from bpkit import train

    if batches is not None:
        X, y = X[:batches * BATCH], y[:batches * BATCH]
    train.fit(model, loss, opt, X, y, epochs=1, batch_size=BATCH, rng=rng, metric=None, progress=False)
    return len(X)


def torch_epoch(model, opt, X, y, gen, batches=None):
    import torch
    import torch.nn.functional as F

    n = len(X) if batches is None else batches * BATCH
    perm = torch.randperm(n, generator=gen)
    for start in range(0, n, BATCH):
        idx = perm[start:start + BATCH]
        opt.zero_grad()
        F.cross_entropy(model(X[idx]), y[idx]).backward()
        opt.step()
    return n


def bpkit_trainer(X, y, params, rng):
    """``run(batches=None)``: one epoch (or its first ``batches`` batches) of a bpkit float32 copy of ``params``, SGD."""
    import numpy as np

    import bpkit as bk
    from bpkit import optim

    model = bpkit_model(params, np.float32)
    loss, opt = bk.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=LR)
    return lambda batches=None: bpkit_epoch(model, loss, opt, X, y, rng, batches)


def torch_trainer(X, y, params, threads, seed):
    """The same for PyTorch: a float32 ``nn.Sequential`` copy of ``params``, ``optim.SGD``, shuffles seeded by ``seed``."""
    import torch

    torch.set_num_threads(threads)
    twin, gen = torch_model(params, torch.float32), torch.Generator().manual_seed(seed)
    opt, X_t, y_t = torch.optim.SGD(twin.parameters(), lr=LR), torch.from_numpy(X), torch.from_numpy(y)
    return lambda batches=None: torch_epoch(twin, opt, X_t, y_t, gen, batches)


def numpy_epoch(params, X, y, rng, batches=None):
    """The reference: the same algorithm by hand (loss value included), no checks, no unused first-layer grad_X."""
    import numpy as np

    W1, b1, W2, b2, W3, b3 = params
    n = len(X) if batches is None else batches * BATCH
    perm = rng.permutation(n)
    for start in range(0, n, BATCH):
        idx = perm[start:start + BATCH]
        x, t, m = X[idx], y[idx], len(idx)
        z1 = x @ W1 + b1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ W2 + b2
        a2 = np.maximum(z2, 0)
        z3 = a2 @ W3 + b3
        shifted = z3 - z3.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(m)
        value = -logp[rows, t].sum() / m  # the loss value, as bpkit and torch compute it  # noqa: F841
        p = np.exp(logp)
        p[rows, t] -= 1
        d3 = p / m
        d2 = (d3 @ W3.T) * (z2 > 0)
        d1 = (d2 @ W2.T) * (z1 > 0)
        for w, g in ((W3, a2.T @ d3), (b3, d3.sum(0)), (W2, a1.T @ d2), (b2, d2.sum(0)), (W1, x.T @ d1), (b1, d1.sum(0))):
            w -= LR * g
    return n


def per_sample_batch(model_state, X, y, k):
    """Nielsen-style loop over batch ``k``: column vectors, W of shape (n_out, n_in), one example at a time."""
    import numpy as np

    Ws, bs = model_state
    nabla_W, nabla_b = [np.zeros_like(W) for W in Ws], [np.zeros_like(b) for b in bs]
    for i in range(k * BATCH, (k + 1) * BATCH):
        a = X[i].reshape(-1, 1)
        activations, zs = [a], []
        for j, (W, b) in enumerate(zip(Ws, bs)):
            z = W @ a + b
            zs.append(z)
            a = np.maximum(z, 0) if j < len(Ws) - 1 else z
            activations.append(a)
        p = np.exp(a - a.max())
        delta = p / p.sum()
        delta[y[i]] -= 1
        for j in range(len(Ws) - 1, -1, -1):
            nabla_b[j] += delta
            nabla_W[j] += delta @ activations[j].T
            if j > 0:
                delta = (Ws[j].T @ delta) * (zs[j - 1] > 0)
    for W, b, gW, gb in zip(Ws, bs, nabla_W, nabla_b):
        W -= (LR / BATCH) * gW
        b -= (LR / BATCH) * gb
    return BATCH


def gemm_products(dtype):
    """The 8 GEMMs of one step (3 forward, 3 weight gradients, 2 input gradients), outputs preallocated."""
    import numpy as np

    rng = np.random.default_rng(0)
    m, (n0, n1, n2, n3) = BATCH, SIZES

    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x, a1, a2, d1, d2, d3 = r(m, n0), r(m, n1), r(m, n2), r(m, n1), r(m, n2), r(m, n3)
    W1, W2, W3 = r(n0, n1), r(n1, n2), r(n2, n3)
    products = [(x, W1), (a1, W2), (a2, W3), (a2.T, d3), (d3, W3.T), (a1.T, d2), (d2, W2.T), (x.T, d1)]
    assert sum(2 * A.shape[0] * A.shape[1] * B.shape[1] for A, B in products) == FLOPS_PER_SAMPLE * m
    return [(A, B, np.empty((A.shape[0], B.shape[1]), dtype=dtype)) for A, B in products]


def gemm_epoch(products, steps=-(-N_SAMPLES // BATCH)):
    """The GEMMs alone of one epoch (469 steps): numpy's own limit for this model."""
    import numpy as np

    for _ in range(steps):
        for A, B, out in products:
            np.matmul(A, B, out=out)
    return steps * BATCH


# --- timed workers (one implementation per process) ----------------------------------------------------

def timed(run, times):
    """Call ``run()`` (returns the samples it processed) ``times`` times: [{samples, wall, cpu, sys, minflt}, ...]."""
    out = []
    for _ in range(times):
        before, wall, cpu = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), time.process_time()
        samples = run()
        wall, cpu, after = time.perf_counter() - wall, time.process_time() - cpu, resource.getrusage(resource.RUSAGE_SELF)
        out.append({"samples": samples, "wall": wall, "cpu": cpu, "sys": after.ru_stime - before.ru_stime,
                    "minflt": after.ru_minflt - before.ru_minflt})
    return out


def process_info(impl, threads=None):
    """What this worker process has loaded: torch or not (bpkit and numpy workers must not), BLAS pools."""
    info = {"torch_loaded": "torch" in sys.modules, "threadpools": _threadpools()}
    if info["torch_loaded"]:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    elif threads is not None:
        info["torch_threads"] = None
    if "torch" not in impl and info["torch_loaded"]:
        raise RuntimeError(f"the {impl} worker imported torch: its timing would not be clean")
    return info


def worker_mlp(impl, threads, data, seed, rnd):
    """One implementation of case 1 (or the GEMMs of case 2): load, warm up, time one epoch (3 batches per-sample)."""
    import numpy as np

    X, y, params = load_data(data)
    rng = np.random.default_rng([seed, rnd])
    if impl == "bpkit":
        run = bpkit_trainer(X, y, params, rng)
    elif impl == "torch":
        run = torch_trainer(X, y, params, threads, 1000 * seed + rnd)
    elif impl == "numpy":
        run = lambda batches=None: numpy_epoch(params, X, y, rng, batches)  # noqa: E731
    elif impl == "per_sample":
        state = ([W.T.copy() for W in params[::2]], [b.reshape(-1, 1).copy() for b in params[1::2]])
        batch = iter(range(rnd * (PER_SAMPLE_BATCHES + 1), (rnd + 1) * (PER_SAMPLE_BATCHES + 1)))
        run = lambda batches=None: per_sample_batch(state, X, y, next(batch))  # noqa: E731
    elif impl == "gemm":
        products = gemm_products(np.float32)
        run = lambda batches=None: gemm_epoch(products, batches or -(-N_SAMPLES // BATCH))  # noqa: E731
    else:
        raise ValueError(f"--worker mlp has no implementation {impl!r}: choose one of {sorted(MLP_IMPLS)}")
    run(WARMUP_BATCHES if impl != "per_sample" else None)  # warm-up: caches, allocator, BLAS buffers
    runs = timed(run, PER_SAMPLE_BATCHES if impl == "per_sample" else 1)
    return {"impl": impl, "runs": runs, **process_info(impl, threads)}


def small_trainers(seed, with_torch):
    """Case 3's three trainers: each trains from the same initial weights for ``epochs`` and appends its final loss.

    Returns ``(runs, final)``: ``runs`` maps "bpkit", "numpy" and, with torch, "torch" to ``run(epochs)``.
    """
    import numpy as np

    import bpkit as bk
    from bpkit import data, optim, train

    rng = np.random.default_rng(seed)
    X, y = data.load_moons(1000, 0.2, rng)
    params = [p.value for p in bk.MLP([2, 10, 8, 1], "relu", rng=rng).parameters()]
    final = []

    def run_bpkit(epochs):
        model = bpkit_model(params, np.float64)
        h = train.fit(model, bk.BCEWithLogits(), optim.SGD(model.parameters(), lr=0.1), X, y,
                      epochs=epochs, batch_size=len(X), rng=rng, metric=None, progress=False)
        final.append(h.train_loss[-1])

    def run_torch(epochs):
        import torch
        import torch.nn.functional as F

        twin, X_t, y_t = torch_model(params, torch.float64), torch.from_numpy(X), torch.from_numpy(y)
        opt = torch.optim.SGD(twin.parameters(), lr=0.1)
        for _ in range(epochs):
            opt.zero_grad()
            value = F.binary_cross_entropy_with_logits(twin(X_t), y_t)
            value.backward()
            opt.step()
        final.append(value.item())

    def run_numpy(epochs):
        W1, b1, W2, b2, W3, b3 = [p.copy() for p in params]
        n = len(X)
        for _ in range(epochs):
            z1 = X @ W1 + b1
            a1 = np.maximum(z1, 0)
            z2 = a1 @ W2 + b2
            a2 = np.maximum(z2, 0)
            z3 = a2 @ W3 + b3
            value = np.sum(np.logaddexp(0, z3) - y * z3) / n
            d3 = (1 / (1 + np.exp(-z3)) - y) / n
            d2 = (d3 @ W3.T) * (z2 > 0)
            d1 = (d2 @ W2.T) * (z1 > 0)
            for w, g in ((W3, a2.T @ d3), (b3, d3.sum(0)), (W2, a1.T @ d2), (b2, d2.sum(0)), (W1, X.T @ d1), (b1, d1.sum(0))):
                w -= 0.1 * g
        final.append(float(value))

    runs = {"bpkit": run_bpkit, "numpy": run_numpy}
    if with_torch:
        runs["torch"] = run_torch
    return runs, final


def worker_small(impl, seed):
    """Case 3: make_moons(1000), 2-10-8-1, full batch, float64, 1 thread; warm up, then time 1000 epochs twice."""
    if "torch" in impl:
        import torch

        torch.set_num_threads(1)
    runs, final = small_trainers(seed, "torch" in impl)
    run = runs.get(impl, runs["bpkit"])
    run(100)  # warm-up
    if impl == "bpkit_torch_run":
        timings = []
        for _ in range(SMALL_RUNS):
            runs["torch"](SMALL_EPOCHS)  # untimed: torch works in this process between bpkit's timed runs
            timings += timed(lambda: runs["bpkit"](SMALL_EPOCHS) or 1, 1)
    else:
        timings = timed(lambda: run(SMALL_EPOCHS) or 1, SMALL_RUNS)
    return {"impl": impl, "runs": timings, "final_loss": final[-1], **process_info(impl)}


def alternate(runs, amount, rounds):
    """Time ``runs[name](amount)`` for every name, ``rounds`` times, in an order that rotates each round.

    Returns ``{name: [seconds per round]}``; entry i of every list comes from the same round.
    """
    for run in runs.values():
        run(amount)  # warm-up
    names, times = list(runs), {name: [] for name in runs}
    for rnd in range(rounds):
        for name in names[rnd % len(names):] + names[:rnd % len(names)]:
            start = time.perf_counter()
            runs[name](amount)
            times[name].append(time.perf_counter() - start)
    return times


def worker_small_paired(seed, rounds=PAIRED_ROUNDS, epochs=SMALL_PAIRED_EPOCHS):
    """Case 3b: bpkit, PyTorch and the numpy loop of case 3 alternate in ONE process, ``epochs`` epochs at a time."""
    import torch

    torch.set_num_threads(1)
    runs, _ = small_trainers(seed, True)
    times = alternate(runs, epochs, rounds)
    return {"epochs": epochs, "rounds": rounds, "times": times, **process_info("torch")}


def worker_paired(data, seed, with_torch, rounds=PAIRED_ROUNDS, steps=PAIRED_STEPS):
    """Case 2b: short runs of ``steps`` batches, alternating in ONE process, ``rounds`` times; ratios per round.

    Without torch: bpkit, the numpy reference and the GEMMs alone (the GEMM share). With torch: bpkit and
    PyTorch. Each round times every implementation once, in an order that rotates from round to round;
    a ratio is taken within a round, so a slow moment of the machine hits both sides of it.
    """
    import numpy as np

    X, y, params = load_data(data)
    rng = np.random.default_rng(seed)
    runs = {"bpkit": bpkit_trainer(X, y, params, rng)}
    if with_torch:
        runs["torch"] = torch_trainer(X, y, params, 1, seed)
    else:
        mine, products = [p.copy() for p in params], gemm_products(np.float32)
        runs["numpy"] = lambda batches: numpy_epoch(mine, X, y, rng, batches)
        runs["gemm"] = lambda batches: gemm_epoch(products, batches)
    times = alternate(runs, steps, rounds)
    return {"steps": steps, "rounds": rounds, "times": times, **process_info("torch" if with_torch else "paired")}


def paired_ratios(num, den):
    """Median and quartiles of num[i] / den[i] over the rounds."""
    ratios = [a / b for a, b in zip(num, den)]
    q1, q2, q3 = statistics.quantiles(ratios, n=4)
    return {"median": q2, "q1": q1, "q3": q3, "min": min(ratios), "max": max(ratios)}


# --- untimed workers ----------------------------------------------------------------------------------

def same_work_check(data):
    """20 identical steps (same weights, same batches) in bpkit and torch, float64: the final losses agree."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    import bpkit as bk
    from bpkit import optim

    X, y, params = load_data(data)
    X, params = X[:20 * BATCH].astype(np.float64), [p.astype(np.float64) for p in params]
    model, twin = bpkit_model(params, np.float64), torch_model(params, torch.float64)
    loss, opt, opt_t = bk.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=LR), torch.optim.SGD(twin.parameters(), lr=LR)
    for k in range(20):
        xb, yb = X[k * BATCH:(k + 1) * BATCH], y[k * BATCH:(k + 1) * BATCH]
        ours = loss.forward(model.forward(xb), yb)
        model.backward(loss.backward(), input_grad=False)
        opt.step()
        opt.zero_grad()
        opt_t.zero_grad()
        theirs = F.cross_entropy(twin(torch.from_numpy(xb)), torch.from_numpy(yb))
        theirs.backward()
        opt_t.step()
    return {"bpkit_loss": ours, "torch_loss": theirs.item(), "abs_diff": abs(ours - theirs.item())}


def _threadpools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{k: d.get(k) for k in ("internal_api", "num_threads", "version", "architecture")} for d in threadpool_info()]


def _cpu():
    """The processor as Linux names it, and whether it has AVX-512 (OpenBLAS then picks a faster GEMM kernel)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "avx512": None}
    fields = dict(line.split(":", 1) for line in text.splitlines()[:40] if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return {"model": f"{fields.get('model name', '?')}, family {fields.get('cpu family', '?')} model {fields.get('model', '?')}",
            "avx512": "avx512f" in fields.get("flags", "").split()}


def _median_us(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def step_pieces(model, loss, opt, X_batch, y_batch, reps):
    """Median µs of each piece of one bpkit step, measured one at a time on real intermediate arrays."""
    from bpkit import _checks
    from bpkit.activations import relu_prime

    pieces, inputs, checks, masks = {}, [X_batch], 0.0, 0.0
    for layer in model.layers:
        a = inputs[-1]
        pieces[f"forward {layer!r}"] = pieces.get(f"forward {layer!r}", 0) + _median_us(lambda: layer.forward(a), reps)
        if layer.check_input:  # in an MLP, only the first layer checks its input
            checks += _median_us(lambda: _checks.batch_input(a, "x", width=a.shape[1]), reps)
        if not hasattr(layer, "W"):
            masks += _median_us(lambda: relu_prime(a), reps)
        inputs.append(layer.forward(a))
    pieces["loss forward"] = _median_us(lambda: loss.forward(inputs[-1], y_batch), reps)
    pieces["loss backward"] = _median_us(loss.backward, reps)
    grads = [loss.backward()]
    layers = list(reversed(model.layers))
    for k, layer in enumerate(layers):
        g, first = grads[-1], k == len(layers) - 1

        def backward():  # as in training: the gradients were zeroed after the last step
            for p in getattr(layer, "parameters", list)():
                p.zero_grad()
            return layer.backward(g, input_grad=False) if first else layer.backward(g)

        pieces[f"backward {layer!r}"] = pieces.get(f"backward {layer!r}", 0) + _median_us(backward, reps)
        grads.append(backward())
    pieces["optimizer step (SGD)"] = _median_us(opt.step, reps)
    pieces["zero_grad"] = _median_us(opt.zero_grad, reps)
    detail = {"input check of the first layer (batch_input)": checks,
              "ReLU derivative masks (z > 0).astype(dtype)": masks}
    deltas = [g for g in grads[1:] if g is not None and g.shape[1] > 1]
    if deltas:
        import numpy as np

        widest = max(deltas, key=lambda d: d.shape[1])
        detail[f"bias gradient of a {widest.shape} delta as 1^T delta (bpkit)"] = _median_us(
            lambda: np.ones(len(widest), dtype=widest.dtype) @ widest, reps)
        detail["same, as delta.sum(axis=0)"] = _median_us(lambda: widest.sum(axis=0), reps)
    W, a, d = layers[-1].W, inputs[0], grads[-2]  # the first layer: its weight gradient is the largest

    def eager():
        W.grad.fill(0)
        W.grad += a.T @ d

    detail[f"weight gradient {W.value.shape} after zero_grad, written into .grad (bpkit)"] = _median_us(
        lambda: (W.zero_grad(), W.accumulate(a.T, d)), reps)
    detail["same, with zeros written first and the product added (grad.fill(0); grad += a.T @ delta)"] = _median_us(eager, reps)
    return {"pieces_us": pieces, "detail_us": detail, "sum_us": sum(pieces.values())}


def worker_profile(data, seed, reps=200):
    """Where one step goes: the MLP case (float32, batch 128) and the small case (float64, full batch)."""
    import numpy as np

    import bpkit as bk
    from bpkit import data as bk_data
    from bpkit import optim
    from bpkit.activations import sigmoid

    X, y, params = load_data(data)
    rng = np.random.default_rng(seed)
    model = bpkit_model(params, np.float32)
    idx = rng.permutation(N_SAMPLES)[:BATCH]
    mlp = step_pieces(model, bk.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=LR), X[idx], y[idx], reps)
    mlp["detail_us"]["batch gather X[idx], y[idx] (in fit)"] = _median_us(lambda: (X[idx], y[idx]), reps)
    Xs, ys = bk_data.load_moons(1000, 0.2, rng)
    small_model = bk.MLP([2, 10, 8, 1], "relu", rng=rng)
    small = step_pieces(small_model, bk.BCEWithLogits(), optim.SGD(small_model.parameters(), lr=0.1), Xs, ys, 5 * reps)
    zs = small_model.predict(Xs)
    small["detail_us"]["sigmoid(z) in BCEWithLogits.backward (np.where form)"] = _median_us(lambda: sigmoid(zs), 5 * reps)
    small["detail_us"]["same, as np.exp(-np.logaddexp(0, -z))"] = _median_us(lambda: np.exp(-np.logaddexp(0, -zs)), 5 * reps)
    small["detail_us"]["BCE target check (0 <= y <= 1, which also refuses NaN and inf)"] = _median_us(
        lambda: not (ys.min() >= 0 and ys.max() <= 1), 5 * reps)
    return {"mlp": mlp, "small": small, **process_info("profile")}


def worker_memory(impl, data):
    """Peak resident set of one training epoch at 1 thread, in a fresh process (MiB)."""
    import numpy as np

    if impl == "bpkit":
        import bpkit  # noqa: F401  (everything the epoch needs, before the first reading)
        from bpkit import optim, train  # noqa: F401
    elif impl == "torch":
        import torch
        import torch.nn.functional  # noqa: F401
    rss = {"after_import": _rss_mib()}
    X, y, params = load_data(data)
    rng = np.random.default_rng(0)
    if impl == "bpkit":
        run = bpkit_trainer(X, y, params, rng)
    elif impl == "torch":
        run = torch_trainer(X, y, params, 1, 0)
    else:
        run = lambda b=None: numpy_epoch(params, X, y, rng, b)  # noqa: E731
    rss["with_data"] = _rss_mib()
    run(5)
    rss["before_epoch"] = _rss_mib()
    run()
    rss["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**rss, **process_info(impl)}


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- driver ---------------------------------------------------------------------------------------------

def spawn(args, threads):
    """Run this script as a worker with the thread count fixed in the environment; return its JSON line."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    proc = subprocess.run([sys.executable, __file__, "--threads", str(threads)] + args,
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"worker {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def round_robin(jobs, repeats, threads, label):
    """Spawn each job once per round, A,B,C,A,B,C; median samples/s (wall and CPU) over every timed run."""
    out = {name: [] for name in jobs}
    for rnd in range(repeats):
        print(f"  {label}, {threads} thread(s): round {rnd + 1}/{repeats}", file=sys.stderr, flush=True)
        for name, args in jobs.items():
            out[name].append(spawn(args + ["--round", str(rnd)], threads))
    results = {}
    for name, procs in out.items():
        runs = [run for proc in procs for run in proc["runs"]]
        results[name] = {"samples_per_s": statistics.median(r["samples"] / r["wall"] for r in runs),
                         "samples_per_s_cpu": statistics.median(r["samples"] / max(r["cpu"], 1e-9) for r in runs),
                         "wall_s": statistics.median(r["wall"] for r in runs),
                         "cpu_s": statistics.median(r["cpu"] for r in runs),
                         "sys_s": statistics.median(r["sys"] for r in runs),
                         "minor_faults": statistics.median(r["minflt"] for r in runs),
                         "all_wall": [r["wall"] for r in runs], "all_cpu": [r["cpu"] for r in runs],
                         "torch_loaded": procs[0]["torch_loaded"], "threadpools": procs[0]["threadpools"],
                         "torch_threads": procs[0].get("torch_threads"),
                         "final_loss": procs[-1].get("final_loss")}
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="round-robin rounds per case and thread count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["data", "mlp", "paired", "profile", "small", "small_paired", "memory", "check"])
    parser.add_argument("--impl", choices=sorted(set(MLP_IMPLS) | set(SMALL_IMPLS)), default="bpkit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--round", type=int, default=0, help="worker: round number (seeds the shuffles)")
    parser.add_argument("--data", help="worker: directory with X.npy, y.npy, params.npz")
    args = parser.parse_args()
    if args.worker:
        work = {"data": lambda: worker_data(args.data, args.seed),
                "mlp": lambda: worker_mlp(args.impl, args.threads, args.data, args.seed, args.round),
                "paired": lambda: worker_paired(args.data, args.seed, args.impl == "torch"),
                "profile": lambda: worker_profile(args.data, args.seed),
                "small": lambda: worker_small(args.impl, args.seed),
                "small_paired": lambda: worker_small_paired(args.seed),
                "memory": lambda: worker_memory(args.impl, args.data),
                "check": lambda: same_work_check(args.data)}[args.worker]
        print(json.dumps(work()))
        return
    started = time.perf_counter()
    all_threads = os.cpu_count() or 1
    r = {"machine": {"python": platform.python_version(), "cpus": all_threads, "cpu": _cpu(), "loadavg_start": os.getloadavg()},
         "flops_per_sample": FLOPS_PER_SAMPLE, "targets": TARGETS, "repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="bench_mlp_") as tmp:
        common = ["--seed", str(args.seed), "--data", tmp]
        print("  writing the data and the initial weights", file=sys.stderr, flush=True)
        spawn(["--worker", "data"] + common, 1)
        r["check"] = spawn(["--worker", "check"] + common, 1)
        r["mlp"] = {}
        for t in sorted({1, all_threads}):
            jobs = {name: ["--worker", "mlp", "--impl", impl] + common for impl, name in MLP_IMPLS.items()}
            res = round_robin(jobs, args.repeats, t, "MLP case")
            r["mlp"][str(t)] = {"threads": t, "results": res,
                                "gemm_gflops": res["numpy GEMMs only"]["samples_per_s"] * FLOPS_PER_SAMPLE / 1e9}
        print("  MLP case, paired runs in one process", file=sys.stderr, flush=True)
        r["paired"] = {kind: spawn(["--worker", "paired", "--impl", impl] + common, 1)
                       for kind, impl in (("numpy", "bpkit"), ("torch", "torch"))}
        t = r["paired"]["numpy"]["times"]
        r["paired"]["ratios"] = {"bpkit share of numpy GEMM throughput": paired_ratios(t["gemm"], t["bpkit"]),
                                 "numpy reference share of numpy GEMM throughput": paired_ratios(t["gemm"], t["numpy"]),
                                 "bpkit time / numpy reference time": paired_ratios(t["bpkit"], t["numpy"]),
                                 "bpkit / PyTorch throughput": paired_ratios(r["paired"]["torch"]["times"]["torch"],
                                                                             r["paired"]["torch"]["times"]["bpkit"])}
        jobs = {name: ["--worker", "small", "--impl", impl] + common for impl, name in SMALL_IMPLS.items()}
        small = round_robin(jobs, args.repeats, 1, "small case")
        r["small"] = {"wall_s": {k: v["wall_s"] for k, v in small.items()}, "cpu_s": {k: v["cpu_s"] for k, v in small.items()},
                      "final_loss": {k: v["final_loss"] for k, v in small.items()}, "results": small}
        print("  small case, paired runs in one process", file=sys.stderr, flush=True)
        sp = spawn(["--worker", "small_paired"] + common, 1)
        sp["ratios"] = {"PyTorch time / bpkit time": paired_ratios(sp["times"]["torch"], sp["times"]["bpkit"]),
                        "bpkit time / numpy reference time": paired_ratios(sp["times"]["bpkit"], sp["times"]["numpy"])}
        r["small"]["paired"] = sp
        print("  memory and profile", file=sys.stderr, flush=True)
        r["memory"] = {impl: spawn(["--worker", "memory", "--impl", impl] + common, 1) for impl in ("bpkit", "torch", "numpy")}
        r["profile"] = spawn(["--worker", "profile"] + common, 1)
    r["machine"]["loadavg_end"] = os.getloadavg()
    r["verdict"] = verdict(r)
    r["total_s"] = time.perf_counter() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(r, indent=2))
    report(r)


def verdict(r):
    """Each target: measured by wall time (the figure) and by CPU time (robust when the machine is shared)."""
    one, small, mem = r["mlp"]["1"]["results"], r["small"], r["memory"]
    rows = {}
    for clock, key in (("wall", "samples_per_s"), ("cpu", "samples_per_s_cpu")):
        rows.setdefault("bpkit / PyTorch throughput, 1 thread", {})[clock] = one["bpkit"][key] / one["PyTorch"][key]
        rows.setdefault("bpkit share of numpy GEMM throughput, 1 thread", {})[clock] = (
            one["bpkit"][key] / one["numpy GEMMs only"][key])
        rows.setdefault("small case: PyTorch time / bpkit time", {})[clock] = (
            small[f"{clock}_s"]["PyTorch"] / small[f"{clock}_s"]["bpkit"])
    paired = r["paired"]["ratios"]
    rows["bpkit / PyTorch throughput, 1 thread"]["paired"] = paired["bpkit / PyTorch throughput"]
    rows["bpkit share of numpy GEMM throughput, 1 thread"]["paired"] = paired["bpkit share of numpy GEMM throughput"]
    rows["small case: PyTorch time / bpkit time"]["paired"] = small["paired"]["ratios"]["PyTorch time / bpkit time"]
    rows["peak memory: bpkit / PyTorch"] = {"wall": mem["bpkit"]["peak"] / mem["torch"]["peak"]}
    goals = {"bpkit / PyTorch throughput, 1 thread": TARGETS["vs_torch_1thread"],
             "bpkit share of numpy GEMM throughput, 1 thread": TARGETS["gemm_fraction"],
             "small case: PyTorch time / bpkit time": TARGETS["small_vs_torch"]}
    for name, row in rows.items():
        goal = goals.get(name)
        row["goal"] = ("<= 1" if goal is None else f">= {goal:.0%}" if "share" in name else f">= {goal}")
        row["met"] = bool(row["wall"] >= goal) if goal else bool(row["wall"] <= 1)
        if "paired" in row:
            row["met_paired"] = bool(row["paired"]["median"] >= goal)
    return rows


def report(r):
    m = r["machine"]
    print(f"# bpkit training benchmark ({m['cpus']} CPUs; load average {m['loadavg_start'][0]:.1f} at start, "
          f"{m['loadavg_end'][0]:.1f} at end, this benchmark's own process included; {r['repeats']} round-robin "
          f"rounds, one process per implementation and round)\n")
    blas = r["mlp"]["1"]["results"]["bpkit"]["threadpools"]
    kernel = ", ".join(f"{d['internal_api']} {d['version']} ({d.get('architecture') or 'kernel not reported'} kernel)"
                       for d in blas) or "not reported (threadpoolctl missing)"
    avx = {True: "with AVX-512", False: "without AVX-512", None: "AVX-512 unknown"}[m["cpu"]["avx512"]]
    print(f"Processor: {m['cpu']['model']}, {avx}; numpy's BLAS: {kernel}; Python {m['python']}. Absolute figures "
          f"belong to this processor and kernel: compare the ratios.\n")
    # the one-minute average at the end counts the benchmark itself, about one busy process
    if max(m["loadavg_start"][0], m["loadavg_end"][0] - 1) > 0.5 * m["cpus"]:
        print("**The machine was busy: wall-clock figures are indicative only; compare the ratios, "
              "and the CPU-time column of the targets.**\n")
    c = r["check"]
    print(f"Same work: after 20 identical float64 steps, bpkit loss {c['bpkit_loss']:.10f}, "
          f"PyTorch {c['torch_loss']:.10f} (difference {c['abs_diff']:.1e}).\n")
    print("## MLP 784-256-128-10, ReLU, softmax CE, batch 128, float32, SGD, one epoch of 60,000\n")
    print("| implementation | threads | samples/s | epoch (s) | GFLOP/s (real) | % of numpy GEMM peak | vs PyTorch "
          "| page faults (sys s) per run | torch loaded |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t, run in r["mlp"].items():
        res = run["results"]
        for name, v in res.items():
            sps = v["samples_per_s"]
            print(f"| {name} | {t} | {sps:,.0f} | {N_SAMPLES / sps:.2f} | {sps * FLOPS_PER_SAMPLE / 1e9:.1f} | "
                  f"{sps / res['numpy GEMMs only']['samples_per_s']:.0%} | {sps / res['PyTorch']['samples_per_s']:.2f}x | "
                  f"{v['minor_faults']:,.0f} ({v['sys_s']:.2f}) | {'yes' if v['torch_loaded'] else 'no'} |")
    print(f"\nReal GEMM work: {FLOPS_PER_SAMPLE / 1e6:.3f} MFLOP per sample (3 forward, 3 weight-gradient and 2 "
          f"input-gradient GEMMs). \"numpy GEMMs only\" runs exactly those for 469 steps: the limit for this model.")
    pr = r["paired"]
    print(f"\n## The same MLP case, paired in one process ({pr['numpy']['rounds']} rounds of {pr['numpy']['steps']} "
          f"batches each, wall clock, 1 thread)\n")
    print("Each round runs every implementation once, in a rotating order, in the same process; each ratio is "
          "taken within one round, so a slow moment of the shared machine hits both of its sides. bpkit, the "
          "numpy reference and the GEMMs share a process without torch; bpkit and PyTorch share another.\n")
    print("| ratio (per round) | median | quartiles | min - max |")
    print("|---|---|---|---|")
    for name, v in pr["ratios"].items():
        fmt = "{:.1%}" if "share" in name else "{:.2f}"
        print(f"| {name} | {fmt.format(v['median'])} | {fmt.format(v['q1'])} - {fmt.format(v['q3'])} | "
              f"{fmt.format(v['min'])} - {fmt.format(v['max'])} |")
    s = r["small"]
    print("\n## Small case: make_moons(1000), 2-10-8-1, full batch, 1000 epochs, float64, 1 thread\n")
    print("| implementation | wall (s) | CPU (s) | µs per epoch | time vs bpkit | final loss | page faults (sys s) "
          "per run | torch loaded |")
    print("|---|---|---|---|---|---|---|---|")
    for name, wall in s["wall_s"].items():
        v = s["results"][name]
        print(f"| {name} | {wall:.3f} | {s['cpu_s'][name]:.3f} | {wall * 1e3:.0f} | {wall / s['wall_s']['bpkit']:.2f}x | "
              f"{s['final_loss'][name]:.6f} | {v['minor_faults']:,.0f} ({v['sys_s']:.2f}) | {'yes' if v['torch_loaded'] else 'no'} |")
    sp = s["paired"]
    print(f"\nPaired in one process ({sp['rounds']} rounds of {sp['epochs']} epochs each, wall clock, the three "
          f"implementations in a rotating order; torch imported):\n")
    print("| ratio (per round) | median | quartiles | min - max |")
    print("|---|---|---|---|")
    for name, v in sp["ratios"].items():
        print(f"| {name} | {v['median']:.2f} | {v['q1']:.2f} - {v['q3']:.2f} | {v['min']:.2f} - {v['max']:.2f} |")
    for key in ("bpkit, torch imported (control)", "bpkit, torch imported and trained in between (control)"):
        print(f"\nTorch-import effect ({key.split(', ', 1)[1].replace(' (control)', '')}): bpkit takes "
              f"{s['wall_s'][key] / s['wall_s']['bpkit']:.2f}x its wall time and "
              f"{s['cpu_s'][key] / s['cpu_s']['bpkit']:.2f}x its CPU time in a clean process.")
    print("\n## Peak resident memory, one epoch of the MLP case, 1 thread, one process each (MiB; the data is 179 MiB)\n")
    print("| implementation | after import | with data and model | before epoch | peak (ru_maxrss) |")
    print("|---|---|---|---|---|")
    for name, v in r["memory"].items():
        print(f"| {name} | {v['after_import']:.0f} | {v['with_data']:.0f} | {v['before_epoch']:.0f} | {v['peak']:.0f} |")
    for case, title in (("mlp", "MLP case, float32, batch 128"), ("small", "small case, float64, 1000 rows")):
        p = r["profile"][case]
        print(f"\n## Where one bpkit step goes: {title} (1 thread; median µs, each piece timed alone)\n")
        print("| piece | µs |")
        print("|---|---|")
        for name, us in list(p["pieces_us"].items()) + [("**sum**", p["sum_us"])]:
            print(f"| {name} | {us:.0f} |")
        for name, us in p["detail_us"].items():
            print(f"| of which / compare: {name} | {us:.0f} |")
    print("\n## Targets\n")
    print("| target | by wall time | by CPU time | paired, one process: median (quartiles) | goal | met (wall) "
          "| met (paired median) |")
    print("|---|---|---|---|---|---|---|")
    for name, v in r["verdict"].items():
        fmt = "{:.1%}" if "share" in name else "{:.2f}"
        cpu = fmt.format(v["cpu"]) if "cpu" in v else "-"
        pr = v.get("paired")
        paired = (f"{fmt.format(pr['median'])} ({fmt.format(pr['q1'])}-{fmt.format(pr['q3'])})" if pr else "-")
        met_paired = "-" if "met_paired" not in v else "yes" if v["met_paired"] else "NO"
        print(f"| {name} | {fmt.format(v['wall'])} | {cpu} | {paired} | {v['goal']} | {'yes' if v['met'] else 'NO'} "
              f"| {met_paired} |")
    print(f"\nTotal run time {r['total_s']:.0f} s. JSON: {RESULTS}")


if __name__ == "__main__":
    main()

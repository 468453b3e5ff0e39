r"""Data parallelism on ``torch.distributed``: $K$ processes, one shard of the batch each.

Worker $k$ holds a replica of the model and $N_k$ of the $N$ examples. It computes with bpkit the
gradient $g_k$ of the mean loss over its shard, multiplies it by $N_k/N$, and one all-reduce
(``torch.distributed.all_reduce``, a sum over the processes) leaves every worker holding

$$g = \sum_k \frac{N_k}{N}\, g_k,$$

the full-batch gradient. Every replica then takes the same step, so the replicas stay identical.
The processes talk through the ``gloo`` backend over loopback, so this runs on one CPU machine.

``run(...)`` starts the processes from Python (a notebook too: the worker functions live here, in a
module the new processes can import) and returns what each worker computed. ``run_ddp(...)`` trains
the same network with PyTorch's ``DistributedDataParallel``, for comparison.
"""

import datetime
import os
import time
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .activations import Activation
from .layers import Dense


def flat_grad(model):
    """Every parameter's ``.grad``, concatenated into one vector (the order of ``model.parameters()``)."""
    return np.concatenate([p.grad.ravel() for p in model.parameters()])


def unflatten(vector, model):
    """Split a vector like ``flat_grad``'s back into arrays of the parameters' shapes."""
    sizes = [p.value.size for p in model.parameters()]
    pieces = np.split(vector, np.cumsum(sizes)[:-1])
    return [piece.reshape(p.value.shape) for piece, p in zip(pieces, model.parameters())]


def shard_bounds(shard_sizes, N):
    """Start and end row of each shard; the sizes must be positive and add up to ``N``."""
    if sum(shard_sizes) != N or min(shard_sizes) < 1:
        raise ValueError(f"shard sizes {list(shard_sizes)} must be positive and add up to the batch size N = {N}")
    ends = np.cumsum(shard_sizes)
    return [(int(e - n), int(e)) for n, e in zip(shard_sizes, ends)]


def _join(rendezvous, rank, K):
    """Join the group of ``K`` processes that meet through the file ``rendezvous`` (no port to choose)."""
    dist.init_process_group("gloo", init_method="file://" + rendezvous, rank=rank, world_size=K,
                            timeout=datetime.timedelta(seconds=60))


def worker(rank, K, rendezvous, model, loss, X, y, bounds, lr, steps, results):
    """Process ``rank`` of ``K``: ``steps`` steps of SGD on the all-reduced gradient of its shard."""
    _join(rendezvous, rank, K)
    try:
        start, end = bounds[rank]
        X_k, y_k = X[start:end], y[start:end]
        gradients = []
        for _ in range(steps):
            model.zero_grad()
            loss.forward(model.forward(X_k), y_k)
            model.backward(loss.backward())                        # g_k: the mean over this shard
            g = torch.from_numpy(len(X_k) / len(X) * flat_grad(model))
            dist.all_reduce(g, op=dist.ReduceOp.SUM)               # now sum_k (N_k / N) g_k, on every worker
            gradients.append(g.numpy().copy())
            for p, g_p in zip(model.parameters(), unflatten(g.numpy(), model)):
                p.value -= lr * g_p
        results.put((rank, gradients, [p.value for p in model.parameters()]))
    finally:
        dist.destroy_process_group()


def _guarded(rank, fn, K, rendezvous, *args):
    """Run one worker; if it fails, report its error through the results queue before the process ends."""
    results = args[-1]
    torch.set_num_threads(1)  # one thread per worker, as torchrun sets: K workers must not each spin up a pool
    try:
        fn(rank, K, rendezvous, *args)
    except Exception as exc:
        results.put((rank, "failed", f"{type(exc).__name__}: {exc}", time.monotonic()))
        raise


def _start(fn, K, args):
    """Run ``fn(rank, K, rendezvous, *args, results)`` in ``K`` new processes; return their results by rank.

    If a worker fails, the others are stopped and the first error is raised here: nothing waits forever.
    """
    if not isinstance(K, int) or K < 1:
        raise ValueError(f"the number of workers K must be a positive integer, got {K!r}")
    # "spawn": each worker is a fresh Python that imports what it needs. Forking a process that holds
    # threads (a Jupyter kernel, torch's thread pools) can leave a lock locked forever in the child.
    results = mp.get_context("spawn").SimpleQueue()
    out = []
    with tempfile.TemporaryDirectory() as folder:
        processes = mp.start_processes(_guarded, args=(fn, K, os.path.join(folder, "rendezvous"), *args, results),
                                       nprocs=K, join=False, start_method="spawn")
        try:
            while not processes.join(timeout=0.05):  # raises if a worker failed, after stopping the others
                while not results.empty():  # read as they come: a worker blocks on a full pipe until read
                    out.append(results.get())
        except mp.ProcessRaisedException:
            while not results.empty():
                out.append(results.get())
            # The cause: not a worker that lost its connection because a peer had died; else the earliest.
            lost = ("Connection reset by peer", "Connection closed by peer")
            failures = sorted((r for r in out if r[1:2] == ("failed",)),
                              key=lambda r: (any(text in r[2] for text in lost), r[3]))
            if failures:
                rank, _, error, _ = failures[0]
                raise RuntimeError(f"data-parallel run failed: worker {rank} of {K} raised {error} "
                                   "(the other workers were stopped)") from None
            raise
        while not results.empty():
            out.append(results.get())
    return sorted(out, key=lambda r: r[0])


def run(K, model, loss, X, y, shard_sizes=None, lr=0.1, steps=1):
    """Train replicas of ``model`` on ``K`` processes, each on its shard of ``(X, y)``.

    Args:
        K: number of worker processes. shard_sizes: examples per worker (default: ``N`` split evenly).
        lr, steps: plain SGD steps on the all-reduced gradient.
    Returns:
        one ``(rank, gradients, parameters)`` per worker: the all-reduced gradient of each step (a flat
        vector) and the replica's final parameter arrays. ``model`` itself is not changed.
    """
    N = len(X)
    shard_sizes = shard_sizes or [len(part) for part in np.array_split(np.arange(N), K)]
    if len(shard_sizes) != K:
        raise ValueError(f"got {len(shard_sizes)} shard sizes for K = {K} workers")
    return _start(worker, K, (model, loss, X, y, shard_bounds(shard_sizes, N), lr, steps))


def torch_network(model):
    """The same network as a ``torch.nn.Sequential`` in float64 (``Dense`` becomes ``Linear`` with ``weight = W.T``)."""
    modules = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            linear = torch.nn.Linear(layer.n_in, layer.n_out, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.W.value.T.copy()))
                linear.bias.copy_(torch.from_numpy(layer.b.value))
            modules.append(linear)
        elif isinstance(layer, Activation) and layer.name in ("tanh", "relu", "sigmoid"):
            modules.append({"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}[layer.name]())
        else:
            raise TypeError(f"torch_network handles Dense and tanh/relu/sigmoid layers, not {layer!r}")
    return torch.nn.Sequential(*modules)


def ddp_worker(rank, K, rendezvous, model, X, y, lr, steps, results):
    """Process ``rank`` of ``K``: PyTorch's DistributedDataParallel, SGD on the MSE of bpkit (half the squared error)."""
    _join(rendezvous, rank, K)
    try:
        net = torch.nn.parallel.DistributedDataParallel(torch_network(model))
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        X_k, y_k = (torch.from_numpy(a) for a in (np.array_split(X, K)[rank], np.array_split(y, K)[rank]))
        for _ in range(steps):
            optimizer.zero_grad()
            loss = 0.5 * ((net(X_k) - y_k) ** 2).sum(dim=1).mean()
            loss.backward()                                        # DDP all-reduces: the mean of the K shard means
            optimizer.step()
        params = []
        for module in net.module:
            if isinstance(module, torch.nn.Linear):
                params += [module.weight.detach().numpy().T.copy(), module.bias.detach().numpy().copy()]
        results.put((rank, params))
    finally:
        dist.destroy_process_group()


def run_ddp(K, model, X, y, lr=0.1, steps=1):
    """Train ``model``'s network with ``DistributedDataParallel`` on ``K`` equal shards; return each worker's parameters.

    DDP averages the $K$ shard gradients with equal weights, which is the full-batch gradient only when
    the shards are equal: ``N`` must be a multiple of ``K``.
    """
    if len(X) % K:
        raise ValueError(f"run_ddp needs N = {len(X)} to be a multiple of K = {K}: DDP weighs every shard equally")
    return _start(ddp_worker, K, (model, X, y, lr, steps))

"""Data parallelism on torch.distributed (gloo, loopback): K worker processes, bpkit gradients, one all-reduce."""

import numpy as np
import pytest

import bpkit as bk
from bpkit import parallel


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(48, 3)), rng.normal(size=(48, 2))
    model = bk.MLP([3, 8, 2], "tanh", rng=rng)
    mse = bk.MSE()
    model.zero_grad()
    mse.forward(model.forward(X), y)
    model.backward(mse.backward())
    return model, mse, X, y, parallel.flat_grad(model)


def sgd_reference(model, loss, X, y, lr, steps):
    import copy

    model = copy.deepcopy(model)
    for _ in range(steps):
        model.zero_grad()
        loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        for p in model.parameters():
            p.value -= lr * p.grad
    return [p.value for p in model.parameters()]


@pytest.mark.parametrize("K, shard_sizes", [(2, None), (4, [20, 20, 5, 3])])
def test_the_all_reduced_gradient_is_the_full_batch_gradient_and_replicas_stay_identical(problem, K, shard_sizes):
    model, mse, X, y, g_full = problem
    before = [p.value.copy() for p in model.parameters()]
    out = parallel.run(K, model, mse, X, y, shard_sizes=shard_sizes, lr=0.1, steps=3)
    assert [rank for rank, _, _ in out] == list(range(K))
    for _, gradients, _ in out:
        assert np.max(np.abs(gradients[0] - g_full)) < 1e-14
    for _, _, params in out[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(out[0][2], params))
    reference = sgd_reference(model, mse, X, y, 0.1, 3)
    assert max(np.max(np.abs(a - b)) for a, b in zip(out[0][2], reference)) < 1e-14
    assert all(np.array_equal(p.value, b) for p, b in zip(model.parameters(), before))  # the caller's model untouched


def test_the_plain_mean_of_unequal_shards_is_not_the_full_batch_gradient(problem):
    model, mse, X, y, g_full = problem
    out = parallel.run(2, model, mse, X, y, shard_sizes=[40, 8], lr=0.1, steps=1)
    g = out[0][1][0]
    # undo the N_k/N weights and average plainly: what an unweighted all-reduce would give
    grads = []
    for (start, end) in parallel.shard_bounds([40, 8], 48):
        model.zero_grad()
        mse.forward(model.forward(X[start:end]), y[start:end])
        model.backward(mse.backward())
        grads.append(parallel.flat_grad(model))
    assert bk.rel_error(np.mean(grads, axis=0), g_full) > 1e-2 and bk.rel_error(g, g_full) < 1e-14


def test_distributed_data_parallel_reaches_the_same_parameters(problem):
    model, mse, X, y, _ = problem
    ddp = parallel.run_ddp(2, model, X, y, lr=0.1, steps=3)
    ours = parallel.run(2, model, mse, X, y, lr=0.1, steps=3)
    for _, params in ddp:
        assert max(np.max(np.abs(a - b)) for a, b in zip(params, ours[0][2])) < 1e-14


@pytest.mark.parametrize("sizes, words", [([40, 9], "add up to the batch size N = 48"), ([48, 0], "must be positive")])
def test_bad_shards_are_refused_before_any_process_starts(problem, sizes, words):
    model, mse, X, y, _ = problem
    with pytest.raises(ValueError, match=words):
        parallel.run(2, model, mse, X, y, shard_sizes=sizes)


def test_ddp_refuses_unequal_shards(problem):
    model, _, X, y, _ = problem
    with pytest.raises(ValueError, match=r"N = 47 to be a multiple of K = 2"):
        parallel.run_ddp(2, model, X[:47], y[:47])


def test_a_failing_worker_stops_the_others_and_its_error_is_raised_here(problem):
    model, mse, X, y, _ = problem
    bad = y.copy()
    bad[40:] = np.nan  # only the last worker's shard: it fails, the first waits in all_reduce
    with pytest.raises(RuntimeError, match=r"data-parallel run failed: worker 1 of 2 raised ValueError: MSE.*NaN"):
        parallel.run(2, model, mse, X, bad, shard_sizes=[40, 8])

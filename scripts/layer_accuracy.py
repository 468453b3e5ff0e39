"""How exact is each bpkit layer? Two figures per layer, over many random cases (float64):

- the worst relative error of its gradient check (``bk.check_layer``: the input gradient and every
  parameter gradient against central differences);
- the largest absolute difference from PyTorch, over the forward output, the input gradient and every
  parameter gradient (for BatchNorm also the running statistics after three steps and the evaluation output).

    .venv/bin/python scripts/layer_accuracy.py            # 40 cases per layer
    .venv/bin/python scripts/layer_accuracy.py --cases 5
"""

import argparse

import numpy as np
import torch

import bpkit as bk

F = torch.nn.functional


def _t(a):
    return torch.from_numpy(np.array(a, dtype=np.float64))


def _diff(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - b.detach().numpy()))) if np.size(a) else 0.0


# Each case returns (our layer, input, gradient-checkable?, a function computing PyTorch's output from the input
# tensor and the layer's parameters as tensors).


def dense(rng):
    N, n_in, n_out = rng.integers(1, 7, size=3)
    layer = bk.Dense(n_in, n_out, rng=rng)
    layer.b.value[...] = rng.normal(size=n_out)
    return layer, rng.normal(size=(N, n_in)), lambda x, W, b: x @ W + b


def dropout(rng):
    N, n = rng.integers(1, 7, size=2)
    p = float(rng.choice([0.1, 0.5, 0.9]))
    seed = int(rng.integers(2**31))
    layer = bk.Dropout(p, rng=np.random.default_rng(seed))
    layer.reset = lambda: setattr(layer, "rng", np.random.default_rng(seed))  # the same mask every forward
    return layer, rng.normal(size=(N, n)), lambda x: x * _t(layer.mask != 0) / (1 - p)


def batch_norm(rng):
    N, n = int(rng.integers(2, 7)), int(rng.integers(1, 6))
    layer = bk.BatchNorm(n)
    layer.gamma.value[...], layer.beta.value[...] = rng.normal(size=n), rng.normal(size=n)
    return layer, rng.normal(size=(N, n)) * 3 + 1, lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True)


def layer_norm(rng):
    N, n = int(rng.integers(1, 7)), int(rng.integers(2, 6))
    layer = bk.LayerNorm(n)
    layer.gamma.value[...], layer.beta.value[...] = rng.normal(size=n), rng.normal(size=n)
    return layer, rng.normal(size=(N, n)) * 3 + 1, lambda x, g, b: F.layer_norm(x, (n,), g, b, eps=1e-5)


def embedding(rng):
    num, dim, N, T = rng.integers(1, 6, size=4)
    layer = bk.Embedding(num, dim, rng=rng)
    return layer, rng.integers(0, num, size=(N, T)), lambda ids, E: F.embedding(ids, E)


def flatten(rng):
    N, a, b = rng.integers(1, 5, size=3)
    return bk.Flatten(), rng.normal(size=(N, a, b)), lambda x: x.reshape(len(x), -1)


def residual(rng):
    N, n = rng.integers(1, 6, size=2)
    layer = bk.Residual(bk.Dense(n, n, rng=rng), bk.Activation("tanh"), bk.Dense(n, n, rng=rng))
    return layer, rng.normal(size=(N, n)), lambda x, W1, b1, W2, b2: x + torch.tanh(x @ W1 + b1) @ W2 + b2


LAYERS = {"Dense": dense, "Dropout": dropout, "BatchNorm": batch_norm, "LayerNorm": layer_norm,
          "Embedding": embedding, "Flatten": flatten, "Residual": residual}


def gradcheck_error(layer, x, rng):
    """Worst relative error of the layer's gradient check (``Embedding``: its table only, ids have no gradient)."""
    reset = getattr(layer, "reset", lambda: None)
    if isinstance(layer, bk.Embedding):
        G = rng.normal(size=x.shape + (layer.dim,))
        layer.E.zero_grad()
        layer.forward(x)
        layer.backward(G)
        return bk.gradcheck(lambda: float(np.sum(layer.forward(x) * G)), layer.parameters()).max_error
    if isinstance(layer, bk.Dropout):
        reset()
        G = rng.normal(size=x.shape)
        layer.forward(x)
        grad_x = layer.backward(G)

        def f():
            reset()
            return float(np.sum(layer.forward(x) * G))
        return bk.rel_error(grad_x, bk.numerical_gradient(f, x))
    return bk.check_layer(layer, x, rng).max_error


def torch_difference(layer, x, torch_forward, rng):
    """Largest |ours - PyTorch| over output, input gradient and parameter gradients."""
    getattr(layer, "reset", lambda: None)()
    params = layer.parameters()
    for p in params:
        p.zero_grad()
    y = layer.forward(x)
    G = rng.normal(size=y.shape)
    dx = layer.backward(G, input_grad=True) if params and not isinstance(layer, bk.Embedding) else layer.backward(G)
    xt = torch.from_numpy(x) if x.dtype.kind in "iu" else _t(x).requires_grad_()
    pts = [_t(p.value).requires_grad_() for p in params]
    yt = torch_forward(xt, *pts)
    yt.backward(_t(G))
    diffs = [_diff(y, yt)] + [_diff(p.grad, q.grad) for p, q in zip(params, pts)]
    if dx is not None:
        diffs.append(_diff(dx, xt.grad))
    return max(diffs)


def batch_norm_statistics_difference(rng, steps=3):
    """Running mean and variance after ``steps`` training batches, then the evaluation output, against BatchNorm1d."""
    n = int(rng.integers(1, 6))
    ours, theirs = bk.BatchNorm(n, momentum=0.1), torch.nn.BatchNorm1d(n, momentum=0.1, dtype=torch.float64)
    for _ in range(steps):
        x = rng.normal(size=(int(rng.integers(2, 9)), n)) * 2 + 1
        ours.forward(x), theirs(_t(x))
    ours.eval(), theirs.eval()
    x = rng.normal(size=(4, n))
    return max(_diff(ours.running_mean, theirs.running_mean), _diff(ours.running_var, theirs.running_var),
               _diff(ours.forward(x), theirs(_t(x))))


def l2_penalty_figures(rng):
    """Gradient check of an MLP under L2Penalty, and the largest difference from PyTorch's autograd of the same sum."""
    n_in, n_h, N = rng.integers(1, 6, size=3)
    model = bk.MLP([int(n_in), int(n_h), 3], "tanh", rng=rng)
    lam = float(rng.uniform(0, 5))
    loss = bk.L2Penalty(bk.SoftmaxCrossEntropy(), model, lam)
    X, y = rng.normal(size=(N, n_in)), rng.integers(0, 3, size=N)
    error = bk.check_model(model, loss, X, y).max_error
    model.zero_grad()
    value = loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    W1, b1, W2, b2 = (_t(p.value).requires_grad_() for p in model.parameters())
    total = F.cross_entropy(torch.tanh(_t(X) @ W1 + b1) @ W2 + b2, torch.from_numpy(y)) \
        + lam / 2 * (W1.square().sum() + W2.square().sum())
    total.backward()
    grads = [_diff(p.grad, q.grad) for p, q in zip(model.parameters(), (W1, b1, W2, b2))]
    return error, max([abs(value - total.item())] + grads)


def measure(cases=40, seed=0):
    """``{layer name: (worst gradcheck error, largest PyTorch difference)}`` over ``cases`` random cases each."""
    rng = np.random.default_rng(seed)
    figures = {}
    for name, make in LAYERS.items():
        errors, diffs = [], []
        for _ in range(cases):
            layer, x, torch_forward = make(rng)
            errors.append(gradcheck_error(layer, x, rng))
            diffs.append(torch_difference(layer, x, torch_forward, rng))
        if name == "BatchNorm":
            diffs += [batch_norm_statistics_difference(rng) for _ in range(cases)]
        figures[name] = (max(errors), max(diffs))
    l2 = [l2_penalty_figures(rng) for _ in range(cases)]
    figures["L2Penalty"] = (max(e for e, _ in l2), max(d for _, d in l2))
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    args = parser.parse_args()
    figures = measure(args.cases)
    print(f"{'layer':<10} {'worst gradcheck rel. error':>27} {'largest |bpkit - PyTorch|':>26}   ({args.cases} cases each)")
    for name, (error, diff) in figures.items():
        print(f"{name:<10} {error:>27.1e} {diff:>26.1e}")


if __name__ == "__main__":
    main()

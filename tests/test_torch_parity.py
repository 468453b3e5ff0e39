"""bpkit and PyTorch (float64) agree: outputs, losses, every gradient, and 100 optimizer steps.

torch's ``Linear.weight`` is ``(n_out, n_in)``, bpkit's ``W`` is ``(n_in, n_out)``: weights are
copied as ``W.T`` and gradients compared as ``weight.grad.T``.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bpkit as bk
from bpkit import data, optim, train

TORCH_ACTIVATIONS = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
    "gelu": lambda z: F.gelu(z, approximate="tanh"),
}


class TorchMLP(torch.nn.Module):
    """The torch twin of a bpkit MLP, with bpkit's initial weights copied in."""

    def __init__(self, model, activations):
        super().__init__()
        self.linears = torch.nn.ModuleList()
        for layer in model.dense_layers:
            linear = torch.nn.Linear(layer.n_in, layer.n_out, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.W.value.T))
                linear.bias.copy_(torch.from_numpy(layer.b.value))
            self.linears.append(linear)
        self.activations = [TORCH_ACTIVATIONS[a] for a in activations]

    def forward(self, x):
        for linear, f in zip(self.linears[:-1], self.activations):
            x = f(linear(x))
        return self.linears[-1](x)

    def bpkit_layout(self):
        """[W1, b1, W2, b2, ...] as numpy, in bpkit's shapes."""
        return [t for lin in self.linears for t in (lin.weight.detach().numpy().T, lin.bias.detach().numpy())]

    def bpkit_grads(self):
        return [t for lin in self.linears for t in (lin.weight.grad.numpy().T, lin.bias.grad.numpy())]


def torch_loss(kind, y_hat, y):
    """bpkit's losses in torch: mean over the batch of a per-example loss summed over outputs."""
    n = y_hat.shape[0]
    if kind == "softmax_ce":
        return F.cross_entropy(y_hat, torch.from_numpy(y))
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(y_hat, torch.from_numpy(y), reduction="sum") / n
    return F.mse_loss(y_hat, torch.from_numpy(y), reduction="sum") / (2 * n)  # bpkit's MSE has the 1/2


BPKIT_LOSSES = {"softmax_ce": bk.SoftmaxCrossEntropy, "bce": bk.BCEWithLogits, "mse": bk.MSE}


def problem(kind, sizes, rng, n=12):
    X = rng.normal(size=(n, sizes[0]))
    if kind == "softmax_ce":
        y = rng.integers(0, sizes[-1], size=n)
    elif kind == "bce":
        y = rng.integers(0, 2, size=(n, sizes[-1])).astype(np.float64)
    else:
        y = rng.normal(size=(n, sizes[-1]))
    return X, y


def max_diff(ours, theirs):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs))


# --- one forward and backward ------------------------------------------------------------------------

CASES = [
    ([4, 5, 3, 2], ["tanh", "relu"], "softmax_ce"),
    ([3, 6, 1], ["sigmoid"], "bce"),
    ([3, 4, 4, 2], ["gelu", "leaky_relu"], "mse"),
    ([5, 3], [], "softmax_ce"),
]


@pytest.mark.parametrize("sizes, activations, kind", CASES)
def test_outputs_loss_and_every_gradient_match_torch(sizes, activations, kind, rng):
    model = bk.MLP(sizes, activations, rng=rng)
    X, y = problem(kind, sizes, rng)
    twin = TorchMLP(model, activations)
    loss = BPKIT_LOSSES[kind]()

    y_hat = model.forward(X)
    value = loss.forward(y_hat, y)
    model.backward(loss.backward())

    x_t = torch.from_numpy(X).requires_grad_(True)
    y_hat_t = twin(x_t)
    value_t = torch_loss(kind, y_hat_t, y)
    value_t.backward()

    assert np.max(np.abs(y_hat - y_hat_t.detach().numpy())) < 1e-10
    assert abs(value - value_t.item()) < 1e-10
    grads = [p.grad for p in model.parameters()]
    assert len(grads) == 2 * (len(sizes) - 1)
    assert max_diff(grads, twin.bpkit_grads()) < 1e-10


@pytest.mark.parametrize("activation", sorted(bk.ACTIVATIONS))
def test_every_activation_backpropagates_like_torch(activation, rng):
    model = bk.MLP([3, 6, 2], activation, rng=rng)
    X, y = problem("softmax_ce", [3, 6, 2], rng, n=9)
    twin = TorchMLP(model, [activation])
    loss = bk.SoftmaxCrossEntropy()
    loss.forward(model.forward(X), y)
    grad_X = model.backward(loss.backward(), input_grad=True)
    x_t = torch.from_numpy(X).requires_grad_(True)
    torch_loss("softmax_ce", twin(x_t), y).backward()
    assert max_diff([p.grad for p in model.parameters()], twin.bpkit_grads()) < 1e-10
    assert np.max(np.abs(grad_X - x_t.grad.numpy())) < 1e-10


# --- 100 optimizer steps, with schedules and clipping ---------------------------------------------

OPTIMIZERS = {
    "SGD": (lambda ps: optim.SGD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "Momentum": (lambda ps: optim.Momentum(ps, lr=0.05, beta=0.9),
                 lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    "Nesterov": (lambda ps: optim.Momentum(ps, lr=0.05, beta=0.8, nesterov=True),
                 lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True)),
    "RMSprop": (lambda ps: optim.RMSprop(ps, lr=0.01, rho=0.9, eps=1e-6),
                lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6)),
    "Adam": (lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.95)),
             lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-8)),
    "AdamW": (lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
              lambda ps: torch.optim.AdamW(ps, lr=0.01, eps=1e-8, weight_decay=0.1)),
}

SCHEDULES = {
    "constant": (None, None),
    "step": (lambda o: optim.StepLR(o, step_size=4, gamma=0.7),
             lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.7)),
    "cosine": (lambda o: optim.CosineLR(o, t_max=20, lr_min=1e-3),
               lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=1e-3)),
}

EPOCHS, N, BATCH = 20, 40, 8  # 5 steps per epoch, 100 steps


def torch_training(model, activations, make_opt, make_sched, X, y, clip_norm, seed):
    """The same 100 steps in torch, on the very batches bpkit's fit draws."""
    twin = TorchMLP(model, activations)
    opt = make_opt(twin.parameters())
    sched = make_sched(opt) if make_sched else None
    rng, norms = np.random.default_rng(seed), []
    for _ in range(EPOCHS):
        for X_batch, y_batch in data.minibatches(X, y, BATCH, rng):
            opt.zero_grad()
            torch_loss("softmax_ce", twin(torch.from_numpy(X_batch)), y_batch).backward()
            if clip_norm is not None:
                norms.append(float(torch.nn.utils.clip_grad_norm_(twin.parameters(), clip_norm)))
            opt.step()
        if sched:
            sched.step()
    return twin, norms


@pytest.mark.parametrize("clip_norm", [None, 0.3])
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_one_hundred_steps_end_at_the_same_weights(name, schedule, clip_norm):
    rng = np.random.default_rng(11)
    activations = ["tanh", "relu"]
    model = bk.MLP([4, 5, 3, 2], activations, rng=rng)
    X, y = problem("softmax_ce", [4, 5, 3, 2], rng, n=N)
    make_opt, make_opt_t = OPTIMIZERS[name]
    make_sched, make_sched_t = SCHEDULES[schedule]

    twin, norms = torch_training(model, activations, make_opt_t, make_sched_t, X, y, clip_norm, seed=5)
    start = [p.value.copy() for p in model.parameters()]
    opt = make_opt(model.parameters())
    history = train.fit(model, bk.SoftmaxCrossEntropy(), opt, X, y, epochs=EPOCHS, batch_size=BATCH,
                        rng=np.random.default_rng(5), clip_norm=clip_norm,
                        schedule=make_sched(opt) if make_sched else None)

    assert opt.t == 100
    assert max_diff([p.value for p in model.parameters()], twin.bpkit_layout()) < 1e-10
    assert max_diff([p.value for p in model.parameters()], start) > 1e-2  # the weights travelled
    if clip_norm is not None:
        assert max(norms) > clip_norm  # the clipping did act
    if schedule != "constant":
        assert history.lr[-1] < history.lr[0]

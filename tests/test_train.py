"""The training loop: it learns, it records, it accumulates exactly, it stops loudly, it shows progress only to someone watching."""

import re
import sys

import numpy as np
import pytest

import bpkit as bk
from bpkit import data, optim, train


def moons_model(seed=0, n=400):
    rng = np.random.default_rng(seed)
    X, y = data.load_moons(n, 0.1, rng)
    model = bk.MLP([2, 16, 16, 1], "relu", rng=rng)
    return model, X, y, rng


def max_weight_diff(a, b):
    return max(float(np.max(np.abs(p.value - q.value))) for p, q in zip(a.parameters(), b.parameters()))


# --- it learns and records -------------------------------------------------------------------------

def test_loss_falls_on_moons_and_train_accuracy_exceeds_95_percent():
    model, X, y, rng = moons_model()
    loss = bk.BCEWithLogits()
    history = train.fit(model, loss, optim.Adam(model.parameters(), lr=0.01), X, y, epochs=60, batch_size=32, rng=rng)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert np.mean(np.diff(history.train_loss) < 0) > 0.6  # mostly falling, epoch after epoch
    final_loss, final_acc = train.evaluate(model, loss, X, y)
    assert final_acc > 0.95 and history.train_acc[-1] > 0.95
    assert final_loss < history.train_loss[0]


def test_history_contents_with_validation_and_schedule():
    model, X, y, rng = moons_model(1, n=200)
    X_train, X_val, y_train, y_val = data.train_test_split(X, y, 0.25, rng)
    opt = optim.SGD(model.parameters(), lr=0.4)
    history = train.fit(model, bk.BCEWithLogits(), opt, X_train, y_train, epochs=6, batch_size=50, rng=rng,
                        val=(X_val, y_val), schedule=optim.StepLR(opt, step_size=2, gamma=0.5))
    d = history.as_dict()
    assert list(d) == ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert all(len(v) == 6 for v in d.values()) and len(history) == 6
    assert d["epoch"] == [1, 2, 3, 4, 5, 6]
    assert np.allclose(d["lr"], [0.4, 0.4, 0.2, 0.2, 0.1, 0.1], rtol=1e-15)
    assert all(0 <= a <= 1 for a in d["train_acc"] + d["val_acc"])
    val_loss, val_acc = train.evaluate(model, bk.BCEWithLogits(), X_val, y_val)
    assert d["val_loss"][-1] == pytest.approx(val_loss, rel=1e-14) and d["val_acc"][-1] == val_acc
    d["train_loss"].append(0.0)
    assert len(history.train_loss) == 6  # as_dict returns copies
    assert repr(history).startswith("History(6 epochs; last: train_loss=")


def test_a_regression_loss_records_no_accuracy(rng):
    X = rng.normal(size=(40, 3))
    y = X @ rng.normal(size=(3, 2))
    model = bk.MLP([3, 2], "relu", rng=rng)
    assert not bk.MSE().classifier
    history = train.fit(model, bk.MSE(), optim.SGD(model.parameters(), lr=0.1), X, y,
                        epochs=3, batch_size=10, rng=rng)
    assert list(history.as_dict()) == ["epoch", "lr", "train_loss"]
    assert not hasattr(history, "train_acc")
    history = train.fit(model, bk.MSE(), optim.SGD(model.parameters(), lr=0.1), X, y,
                        epochs=2, batch_size=10, rng=rng, val=(X[:8], y[:8]))
    assert list(history.as_dict()) == ["epoch", "lr", "train_loss", "val_loss"]
    assert history.val_loss[-1] == pytest.approx(train.evaluate(model, bk.MSE(), X[:8], y[:8])[0], rel=1e-14)
    assert train.evaluate(model, bk.MSE(), X[:8], y[:8])[1] is None


@pytest.mark.parametrize("loss", [bk.BCEWithLogits(), bk.SoftmaxCrossEntropy()], ids=["bce", "softmax"])
def test_a_classification_loss_records_accuracy(loss, rng):
    X = rng.normal(size=(30, 2))
    y = (X[:, 0] > 0).astype(np.float64).reshape(-1, 1) if isinstance(loss, bk.BCEWithLogits) else (X[:, 0] > 0).astype(int)
    model = bk.MLP([2, 4, y.shape[1] if y.ndim == 2 else 2], "tanh", rng=rng)
    assert loss.classifier
    history = train.fit(model, loss, optim.SGD(model.parameters(), lr=0.1), X, y, epochs=2, batch_size=30, rng=rng,
                        val=(X[:10], y[:10]))
    assert list(history.as_dict()) == ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert history.val_acc[-1] == train.evaluate(model, loss, X[:10], y[:10])[1]
    assert history.val_acc[-1] == train.accuracy(model.predict(X[:10]), y[:10])


def test_fit_is_the_plain_loop_written_out():
    """fit == zero_grad, forward, loss, backward, step per batch; train_loss = mean over samples."""
    model_a, X, y, _ = moons_model(2, n=90)
    model_b, _, _, _ = moons_model(2, n=90)
    loss = bk.BCEWithLogits()
    history = train.fit(model_a, loss, optim.Momentum(model_a.parameters(), lr=0.1), X, y,
                        epochs=3, batch_size=20, rng=np.random.default_rng(7))
    opt, rng, means = optim.Momentum(model_b.parameters(), lr=0.1), np.random.default_rng(7), []
    for _ in range(3):
        total = 0.0
        for X_batch, y_batch in data.minibatches(X, y, 20, rng):
            total += loss.forward(model_b.forward(X_batch), y_batch) * len(X_batch)
            model_b.backward(loss.backward())
            opt.step()
            opt.zero_grad()
        means.append(total / len(X))
    assert max_weight_diff(model_a, model_b) == 0.0
    assert np.allclose(history.train_loss, means, rtol=1e-14)


@pytest.mark.parametrize("labels", ["integers", "one_hot"])
def test_multiclass_training_on_digits(labels):
    rng = np.random.default_rng(0)
    X, y = data.load_digits_data()
    X, y = X[:600], y[:600]
    target = y if labels == "integers" else data.one_hot(y, 10)
    model = bk.MLP([64, 32, 10], "relu", rng=rng)
    history = train.fit(model, bk.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=0.01), X, target,
                        epochs=15, batch_size=64, rng=rng)
    assert history.train_acc[-1] > 0.95
    assert history.train_loss[-1] < 0.2 * history.train_loss[0]


def test_accuracy_by_hand():
    logits = np.array([[2.0], [-1.0], [0.5], [-3.0]])
    assert train.accuracy(logits, np.array([[1.0], [0.0], [0.0], [0.0]])) == 0.75
    Z = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert train.accuracy(Z, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert train.accuracy(Z, data.one_hot(np.array([1, 1, 2]), 3)) == pytest.approx(2 / 3)


# --- gradient accumulation and clipping --------------------------------------------------------------

@pytest.mark.parametrize("k, B", [(2, 8), (4, 5), (3, 1)])
def test_accumulated_gradient_equals_the_big_batch_gradient(k, B, rng):
    model = bk.MLP([4, 7, 3], "tanh", rng=rng)
    loss = bk.SoftmaxCrossEntropy()
    X, y = rng.normal(size=(k * B, 4)), rng.integers(0, 3, size=k * B)
    model.zero_grad()
    losses = train.accumulate_gradients(model, loss, [(X[j * B:(j + 1) * B], y[j * B:(j + 1) * B]) for j in range(k)])
    accumulated = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    big = loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    assert np.mean(losses) == pytest.approx(big, rel=1e-13)
    for p, g in zip(model.parameters(), accumulated):
        assert np.max(np.abs(p.grad - g)) < 1e-12
        assert np.max(np.abs(p.grad)) > 1e-3


def test_accumulated_gradient_with_unequal_batches_equals_the_big_batch_gradient(rng):
    """Batches of 16, 16, 16 and 2: each must weigh by its size, not by 1/k."""
    model = bk.MLP([4, 7, 3], "tanh", rng=rng)
    loss = bk.SoftmaxCrossEntropy()
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, size=50)
    edges = [0, 16, 32, 48, 50]
    model.zero_grad()
    train.accumulate_gradients(model, loss, [(X[a:b], y[a:b]) for a, b in zip(edges[:-1], edges[1:])])
    accumulated = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    for p, g in zip(model.parameters(), accumulated):
        assert np.max(np.abs(p.grad - g)) < 1e-12


@pytest.mark.parametrize("make_opt", [lambda ps: optim.SGD(ps, lr=0.2), lambda ps: optim.Adam(ps, lr=0.01)],
                         ids=["SGD", "Adam"])
@pytest.mark.parametrize("sizes", [(10, 10, 10, 10), (10, 10, 10)], ids=["full group", "short group"])
def test_accumulate_gradients_then_one_step_takes_the_big_batch_step(make_opt, sizes):
    """Minibatches of 10 accumulated, then one optimizer step: the same weights as one step on the batch they make up."""
    model_a, X, y, _ = moons_model(3, n=sum(sizes))
    model_b, _, _, _ = moons_model(3, n=sum(sizes))
    loss = bk.BCEWithLogits()
    opt_a, opt_b = make_opt(model_a.parameters()), make_opt(model_b.parameters())
    edges = np.cumsum((0,) + sizes)
    for _ in range(2):  # two steps: the second starts from gradients and optimizer state the first left
        opt_a.zero_grad()
        train.accumulate_gradients(model_a, loss, [(X[a:b], y[a:b]) for a, b in zip(edges[:-1], edges[1:])])
        opt_a.step()
        opt_b.zero_grad()
        loss.forward(model_b.forward(X), y)
        model_b.backward(loss.backward())
        opt_b.step()
    assert max_weight_diff(model_a, model_b) < 1e-12
    assert max_weight_diff(model_a, moons_model(3, n=sum(sizes))[0]) > 1e-3  # and the weights did move


def test_clip_norm_bounds_each_sgd_step(rng):
    model, X, y, rng = moons_model(4, n=100)
    before = [p.value.copy() for p in model.parameters()]
    lr, c = 1.0, 0.01
    train.fit(model, bk.BCEWithLogits(), optim.SGD(model.parameters(), lr=lr), X, y,
              epochs=1, batch_size=100, rng=rng, clip_norm=c)
    step = np.sqrt(sum(float(np.sum((p.value - b) ** 2)) for p, b in zip(model.parameters(), before)))
    assert step == pytest.approx(lr * c, rel=1e-4)


# --- it stops loudly, and is quiet ---------------------------------------------------------------------

def test_divergence_raises_floating_point_error_naming_epoch_and_step(rng):
    X = rng.normal(size=(64, 3))
    y = X @ rng.normal(size=(3, 1))
    model = bk.MLP([3, 8, 1], "tanh", rng=rng)
    with pytest.raises(FloatingPointError, match=r"diverged at epoch \d+, step [1-4]\b.*smaller learning rate \(lr=10\)"):
        train.fit(model, bk.MSE(), optim.SGD(model.parameters(), lr=10.0), X, y,
                  epochs=200, batch_size=16, rng=rng)


class LossThatTurnsNaN(bk.MSE):
    """An MSE that reports NaN from its 4th call on (fit's check of the targets, then two steps): stands for any
    loss that stops being finite."""

    calls = 0

    def forward(self, y_hat, y):
        self.calls += 1
        value = super().forward(y_hat, y)
        return float("nan") if self.calls >= 4 else value


def test_a_nan_loss_raises_before_any_step_with_it(rng):
    X, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 1))
    model = bk.MLP([2, 1], "relu", rng=rng)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match=r"at epoch 2, step 1: the loss is nan\. Try a smaller learning rate"):
        train.fit(model, LossThatTurnsNaN(), opt, X, y, epochs=3, batch_size=10, rng=rng)
    assert opt.t == 2


def test_shape_errors_are_not_reported_as_divergence(rng):
    model, X, y, rng = moons_model(5, n=50)
    with pytest.raises(ValueError, match=r"Dense\(2->16\) got input of shape \(50, 3\)"):
        train.fit(model, bk.BCEWithLogits(), optim.SGD(model.parameters(), lr=0.1), np.ones((50, 3)), y,
                  epochs=1, batch_size=10, rng=rng)


def test_every_entry_of_x_is_checked_before_training_and_named_by_its_row_in_x(rng):
    model, X, y, rng = moons_model(6, n=50)
    X = X.copy()
    X[47, 1] = np.nan
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"fit got X with 1 non-finite value\(s\) \(NaN or inf\); the first is nan at index \(47, 1\)"):
        train.fit(model, bk.BCEWithLogits(), opt, X, y, epochs=3, batch_size=10, rng=rng)
    assert opt.t == 0  # refused before the first step


@pytest.mark.parametrize("bad, message", [
    (lambda X: np.where(np.arange(len(X))[:, None] == 3, np.inf, X), r"fit got X_val with 2 non-finite value\(s\).*index \(3, 0\)"),
    (lambda X: X[:, :1], r"fit got X_val of shape \(10, 1\) and dtype float64 for X of shape \(50, 2\)"),
    (lambda X: X.astype(np.float32), r"fit got X_val of shape \(10, 2\) and dtype float32 for X of shape \(50, 2\) and dtype float64"),
    (lambda X: X[:9], r"fit \(validation data\) got X with 9 rows"),
    (lambda X: [X], r"fit got val of type list: expected a pair \(X_val, y_val\)"),
    (lambda X: (X,), r"fit got val of type tuple: expected a pair \(X_val, y_val\)"),
])
def test_bad_validation_data_is_refused_before_training(bad, message):
    model, X, y, rng = moons_model(8, n=50)
    opt = optim.SGD(model.parameters(), lr=0.1)
    val = bad(X[:10])
    with pytest.raises(ValueError, match=message):
        train.fit(model, bk.BCEWithLogits(), opt, X, y, epochs=2, batch_size=10, rng=rng,
                  val=val if isinstance(val, (list, tuple)) else (val, y[:10]))
    assert opt.t == 0


def test_big_data_is_checked_and_the_first_bad_entry_is_named():
    X = np.zeros((3 * (1 << 18) // 7 + 5, 7), dtype=np.float32)
    X[-1, 6] = -np.inf
    X[-2, 0] = np.nan
    with pytest.raises(ValueError, match=rf"fit got X with 2 non-finite value\(s\) \(NaN or inf\); the first is nan at index \({len(X) - 2}, 0\)"):
        bk._checks.check_finite(X, "fit", "X")
    X[-2:] = 0
    bk._checks.check_finite(X, "fit", "X")  # all finite: no error


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_entries_whose_squares_overflow_are_still_finite(dtype):
    """The fast test sums squares; entries near the top of the dtype overflow it, and each entry is then tested."""
    big = np.full((4, 3), np.finfo(dtype).max / 2, dtype=dtype)
    with np.errstate(over="ignore"):  # the sum of squares overflows by design here
        assert bk._checks.finite(big)
        big[2, 1] = np.inf
        assert not bk._checks.finite(big)


def test_the_model_checks_each_batch_once_at_its_first_layer_and_fit_changes_no_layer(monkeypatch):
    model, X, y, rng = moons_model(7, n=40)
    seen = {}

    def recorded(i, check):
        def check_and_record(a):
            seen[i].append(len(a))
            return check(a)
        return check_and_record

    for i, layer in enumerate(model.layers):
        if isinstance(layer, bk.Dense):
            seen[i] = []
            monkeypatch.setattr(layer, "check_input", recorded(i, layer.check_input))

    def state(layer):  # everything but what forward keeps, the mode, and the check wrapped above
        return {k: v for k, v in vars(layer).items() if k not in ("a_prev", "z", "training", "check_input")}

    before = [state(layer) for layer in model.layers]
    train.fit(model, bk.BCEWithLogits(), optim.SGD(model.parameters(), lr=0.1), X, y,
              epochs=3, batch_size=10, rng=rng, val=(X[:8], y[:8]), progress=False)
    # fit's check of the targets (all of X once), then every training batch (4 a epoch) and the validation set
    # (once a epoch) pass the first layer's check
    assert seen[0] == [40] + ([10] * 4 + [8]) * 3
    assert all(seen[i] == [] for i in seen if i > 0)
    after = [state(layer) for layer in model.layers]
    assert [d.keys() for d in after] == [d.keys() for d in before]  # nothing set on a layer, nothing flipped
    assert all(a[k] is b[k] for a, b in zip(after, before) for k in b)
    assert model.training and all(layer.training for layer in model.layers)


@pytest.mark.parametrize("batch_size", [500, 101, 0, -3, 12.5])
def test_batch_size_larger_than_the_data_or_not_positive(batch_size):
    model, X, y, rng = moons_model(6, n=100)
    with pytest.raises(ValueError, match=rf"batch_size={batch_size!r} for 100 examples: expected an integer from 1 to 100"):
        train.fit(model, bk.BCEWithLogits(), optim.SGD(model.parameters(), lr=0.1), X, y,
                  epochs=1, batch_size=batch_size, rng=rng)


def test_one_full_batch_is_shuffled_like_any_other_and_equals_plain_gradient_descent():
    """batch_size = N: every epoch is one step on the whole data set, its rows in the order of rng's permutation."""
    model_a, X, y, rng = moons_model(10, n=80)
    model_b, _, _, _ = moons_model(10, n=80)
    model_c, _, _, _ = moons_model(10, n=80)
    loss = bk.BCEWithLogits()
    rng_b = np.random.default_rng(12)
    train.fit(model_a, loss, optim.SGD(model_a.parameters(), lr=0.3), X, y, epochs=5, batch_size=80,
              rng=np.random.default_rng(12))
    opt_b, opt_c = optim.SGD(model_b.parameters(), lr=0.3), optim.SGD(model_c.parameters(), lr=0.3)
    for _ in range(5):
        order = rng_b.permutation(80)  # what minibatches draws for one epoch
        for model, opt, rows in ((model_b, opt_b, order), (model_c, opt_c, np.arange(80))):
            opt.zero_grad()
            loss.forward(model.forward(X[rows]), y[rows])
            model.backward(loss.backward())
            opt.step()
    assert max_weight_diff(model_a, model_b) == 0.0  # the very same arithmetic
    assert max_weight_diff(model_a, model_c) < 1e-12  # the order of the rows only changes the rounding


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "fit got epochs=0: expected a positive integer"),
    ({"epochs": 2.0}, "fit got epochs=2.0: expected a positive integer"),
    ({"clip_norm": -1.0}, "fit got clip_norm=-1.0"),
    ({"val": np.zeros((3, 2))}, r"fit got val of type ndarray: expected a pair \(X_val, y_val\)"),
])
def test_bad_fit_arguments(kwargs, message):
    model, X, y, rng = moons_model(7, n=40)
    args = {"epochs": 1, "batch_size": 10, "rng": rng} | kwargs
    with pytest.raises(ValueError, match=message):
        train.fit(model, bk.BCEWithLogits(), optim.SGD(model.parameters(), lr=0.1), X, y, **args)
    with pytest.raises(TypeError, match="fit needs rng=np.random.default_rng"):
        train.fit(model, bk.BCEWithLogits(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=1, batch_size=10, rng=1)


def quick_fit(**kwargs):
    model, X, y, rng = moons_model(8, n=60)
    return train.fit(model, bk.BCEWithLogits(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=3, batch_size=20,
                     rng=rng, **kwargs)


def test_nothing_is_printed_with_progress_false_even_when_watched(capfd, monkeypatch):
    monkeypatch.setattr(train, "_watched", lambda: True)
    quick_fit(progress=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


class FakeTerminal:
    """A stderr that is a terminal and keeps what is written to it."""

    def __init__(self, tty=True):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_true_outside_a_terminal_writes_the_line_to_stderr_only(capfd):
    quick_fit(progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert err.startswith("\rfit: epoch 1/3, loss ") and "\rfit: epoch 3/3, loss " in err and err.endswith("\n")
    assert err.count("\n") == 1


def test_in_a_terminal_the_line_goes_to_stderr_only_and_ends_with_a_newline(capfd, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert train._watched()
    quick_fit()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    lines = terminal.text.split("\r")
    assert lines[0] == ""  # each update starts by going back to the start of the line
    assert [line.split(",")[0] for line in lines[1:4]] == ["fit: epoch 1/3", "fit: epoch 2/3", "fit: epoch 3/3"]
    assert all(re.fullmatch(r"fit: epoch \d/3, loss \d\.\d{4} \(\d+\.\d s\)", line) for line in lines[1:4])
    assert terminal.text.endswith("\n") and terminal.text.count("\n") == 1


@pytest.mark.parametrize("watched", [True, False])
def test_the_default_shows_a_line_exactly_when_someone_is_watching(watched, capfd, monkeypatch):
    monkeypatch.setattr(train, "_watched", lambda: watched)
    quick_fit()
    out, err = capfd.readouterr()
    assert out == ""
    assert ("epoch 3/3" in err) == watched and (err == "") == (not watched)


@pytest.mark.parametrize("tty", [True, False])
def test_watched_means_a_terminal_on_stderr(tty, monkeypatch):
    monkeypatch.setattr("sys.stderr", FakeTerminal(tty))
    assert train._watched() == tty


def test_a_stderr_without_isatty_is_not_watched(monkeypatch):
    monkeypatch.setattr("sys.stderr", object())
    assert not train._watched()


def test_watched_in_a_jupyter_kernel(monkeypatch):
    from types import SimpleNamespace

    class ZMQInteractiveShell:  # the class name IPython's Jupyter shell has
        pass

    class TerminalInteractiveShell:  # plain IPython in a terminal
        pass

    monkeypatch.setattr("sys.stderr", FakeTerminal(False))
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=ZMQInteractiveShell))
    assert train._watched()
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=TerminalInteractiveShell))
    assert not train._watched()
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: None))
    assert not train._watched()


FIT_CELL = """
import numpy as np
import bpkit as bk
from bpkit import data, optim, train
rng = np.random.default_rng(0)
X, y = data.load_moons(60, 0.1, rng)
model = bk.MLP([2, 8, 1], "relu", rng=rng)
history = train.fit(model, bk.BCEWithLogits(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=3, batch_size=20,
                    rng=rng{progress})
print(len(history))
"""


@pytest.mark.parametrize("progress", [None, False])
def test_in_a_real_jupyter_kernel_the_stored_output_is_one_line_without_timings(progress, tmp_path):
    """The line is a display updated live that ends as its first text: a stored notebook holds exactly that."""
    import nbformat
    from nbclient import NotebookClient

    class RecordingClient(NotebookClient):
        updates = []  # the text of every update of a display, as the kernel sent it

        def process_message(self, msg, cell, cell_index):
            if msg["msg_type"] == "update_display_data":
                self.updates.append(msg["content"]["data"]["text/plain"])
            return super().process_message(msg, cell, cell_index)

    source = FIT_CELL.format(progress="" if progress is None else f", progress={progress}")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    RecordingClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    streams = [out for out in outputs if out["output_type"] == "stream"]
    displays = [out for out in outputs if out["output_type"] == "display_data"]
    assert [(out["name"], out["text"]) for out in streams] == [("stdout", "3\n")]  # and no stderr
    if progress is None:
        assert len(outputs) == 2 and outputs[0]["output_type"] == "display_data"
        assert [out["data"] for out in displays] == [{"text/plain": "fit: 3 epochs of 3 minibatches"}]
        # live: one update per epoch, with the loss and the time so far, then back to the first text
        assert [u.split(",")[0] for u in RecordingClient.updates[:3]] == ["fit: epoch 1/3", "fit: epoch 2/3", "fit: epoch 3/3"]
        assert all(re.fullmatch(r"fit: epoch \d/3, loss \d\.\d{4} \(\d+\.\d s\)", u) for u in RecordingClient.updates[:3])
        assert RecordingClient.updates[3:] == ["fit: 3 epochs of 3 minibatches"]
    else:
        assert outputs == streams and RecordingClient.updates == []


DIVERGING_CELL = """
import numpy as np
import bpkit as bk
from bpkit import optim, train
rng = np.random.default_rng(0)
X, y = rng.normal(size=(40, 3)), 1e3 * rng.normal(size=(40, 1))
model = bk.MLP([3, 8, 1], "relu", rng=rng)
try:
    train.fit(model, bk.MSE(), optim.SGD(model.parameters(), lr=10.0), X, y, epochs=5, batch_size=10, rng=rng)
except FloatingPointError:
    print("diverged")
"""


def test_in_a_real_jupyter_kernel_a_failed_fit_also_leaves_the_line_without_timings(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(DIVERGING_CELL)])
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert [out["data"] for out in outputs if out["output_type"] == "display_data"] == [
        {"text/plain": "fit: 5 epochs of 4 minibatches"}]
    assert [out["text"] for out in outputs if out["output_type"] == "stream"] == ["diverged\n"]


def test_a_failed_fit_keeps_the_history_of_the_epochs_before_and_the_last_good_step():
    """The third epoch meets a NaN target: the error carries two epochs of history, and the weights are those
    after the last step that succeeded."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    model = bk.MLP([3, 6, 1], "tanh", rng=rng)
    opt = optim.SGD(model.parameters(), lr=0.05)

    class FailsInEpoch3(bk.MSE):
        calls = 0

        def forward(self, y_hat, y):
            self.calls += 1
            if self.calls == 1 + 2 * 4 + 2:  # fit's check of the targets, 4 minibatches per epoch: step 2 of epoch 3
                raise ValueError("a bad batch")
            return super().forward(y_hat, y)

    snapshots = []
    original_step = opt.step

    def step_and_remember():
        original_step()
        snapshots.append([p.value.copy() for p in model.parameters()])
    opt.step = step_and_remember
    with pytest.raises(ValueError, match="a bad batch") as info:
        train.fit(model, FailsInEpoch3(), opt, X, y, epochs=5, batch_size=10, rng=rng, progress=False)
    history = info.value.history
    assert history.epoch == [1, 2] and len(history.train_loss) == 2
    assert len(snapshots) == 2 * 4 + 1
    assert all(np.array_equal(p.value, s) for p, s in zip(model.parameters(), snapshots[-1]))


def test_a_diverging_fit_names_the_step_and_keeps_the_model_finite():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 3)), 1e3 * rng.normal(size=(40, 1))
    model = bk.MLP([3, 8, 1], "relu", rng=rng)
    with pytest.raises(FloatingPointError, match=r"fit: training diverged at epoch \d+, step \d+") as info:
        train.fit(model, bk.MSE(), optim.SGD(model.parameters(), lr=10.0), X, y, epochs=20, batch_size=10,
                  rng=rng, progress=False)
    assert isinstance(info.value.history, train.History)
    assert all(np.isfinite(p.value).all() for p in model.parameters())


def test_fit_refuses_an_optimizer_of_another_model_or_of_some_parameters():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 1))
    old, model = bk.MLP([2, 4, 1], "tanh", rng=rng), bk.MLP([2, 4, 1], "tanh", rng=rng)
    stale = optim.SGD(old.parameters(), lr=0.1)  # as after re-running the cell that builds the model
    with pytest.raises(ValueError, match=r"missing: W1, b1, W2, b2; not the model's: W1, b1, W2, b2\): build it from "
                                         r"this model, optim\.SGD\(model\.parameters\(\), \.\.\.\)"):
        train.fit(model, bk.MSE(), stale, X, y, epochs=1, batch_size=5, rng=rng)
    some = optim.SGD(model.dense_layers[-1].parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"missing: W1, b1; not the model's: none"):
        train.fit(model, bk.MSE(), some, X, y, epochs=1, batch_size=5, rng=rng)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"fit got a schedule built on another optimizer"):
        train.fit(model, bk.MSE(), opt, X, y, epochs=1, batch_size=5, rng=rng, schedule=optim.StepLR(stale, 1))
    with pytest.raises(TypeError, match=r"fit needs a bpkit optimizer, got str"):
        train.fit(model, bk.MSE(), "sgd", X, y, epochs=1, batch_size=5, rng=rng)
    assert train.fit(model, bk.MSE(), opt, X, y, epochs=1, batch_size=5, rng=rng, progress=False).epoch == [1]


def test_train_step_is_one_step_of_the_loop():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 2)), rng.normal(size=(8, 1))
    a, b = bk.MLP([2, 3, 1], "tanh", rng=np.random.default_rng(1)), bk.MLP([2, 3, 1], "tanh", rng=np.random.default_rng(1))
    loss = bk.MSE()
    value, y_hat = train.train_step(a, loss, optim.SGD(a.parameters(), lr=0.1), X, y)
    y_hat_b = b.forward(X)
    expected = loss.forward(y_hat_b, y)
    b.backward(loss.backward())
    for p in b.parameters():
        p.value -= 0.1 * p.grad
    assert value == expected and np.array_equal(y_hat, y_hat_b)
    assert all(np.array_equal(p.value, q.value) for p, q in zip(a.parameters(), b.parameters()))


def test_a_step_that_overflows_half_way_is_undone_by_fit():
    """Adam's second moment overflows for gradients near 1e155, after the first moment has moved: fit puts the
    parameters, both moments and t back as they were before the step."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 2)), rng.normal(size=(10, 1))
    model = bk.MLP([2, 3, 1], "tanh", rng=rng)
    opt = optim.Adam(model.parameters(), lr=0.1)

    class HugeGradient(bk.MSE):
        def _grad(self, diff):
            return np.full_like(diff, 1e160)

    before = opt.snapshot()
    with pytest.raises(FloatingPointError, match=r"fit: training diverged at epoch 1, step 1: overflow") as info:
        train.fit(model, HugeGradient(), opt, X, y, epochs=2, batch_size=10, rng=rng, progress=False)
    assert info.value.history.epoch == []
    values, state, t = before
    assert opt.t == t == 0
    assert all(np.array_equal(p.value, v) for p, v in zip(model.parameters(), values))
    assert all(np.array_equal(a, b) for k in ("m", "v") for a, b in zip(getattr(opt, k), state[k]))


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Momentum(ps, lr=0.1),
                                  lambda ps: optim.RMSprop(ps, lr=0.1), lambda ps: optim.AdamW(ps, lr=0.1)])
def test_snapshot_and_restore_put_everything_back(make):
    rng = np.random.default_rng(1)
    model = bk.MLP([2, 3, 1], "tanh", rng=rng)
    opt = make(model.parameters())
    for p in model.parameters():
        p.grad[...] = rng.normal(size=p.grad.shape)
    opt.step()
    snap = opt.snapshot()
    kept = [p.value.copy() for p in model.parameters()]
    opt.step()
    after = [p.value.copy() for p in model.parameters()]
    opt.restore(snap)
    assert opt.t == 1 and all(np.array_equal(p.value, k) for p, k in zip(model.parameters(), kept))
    opt.step()  # from the restored state (state arrays included), the same step gives the same weights
    assert all(np.array_equal(p.value, a) for p, a in zip(model.parameters(), after))

"""The "is it training?" checks: each computes what it says, and each catches its planted problem."""

import math

import numpy as np
import pytest

import bpkit as bk
from bpkit import diagnostics as dg


@pytest.fixture(scope="module")
def digits():
    X, y = bk.data.load_digits_data()
    return X[:300], y[:300]


def mlp(init="auto", seed=0):
    return bk.MLP([64, 32, 10], "relu", rng=np.random.default_rng(seed), init=init)


def test_eq_optim_initial_loss_zero_logits_give_exactly_log_c_and_log_2():
    """eq-optim-initial-loss: zero logits give the uniform softmax, so L = log C (and log 2 for one logit)."""
    model = mlp(init=0.0)  # every weight 0: every logit 0
    X = np.random.default_rng(0).normal(size=(5, 64))
    value, expected = dg.initial_loss(model, bk.SoftmaxCrossEntropy(), X, np.arange(5))
    assert value == pytest.approx(math.log(10), rel=1e-15) and expected == math.log(10)
    assert dg.expected_initial_loss(bk.BCEWithLogits(), 1) == math.log(2)
    assert dg.expected_initial_loss(bk.MSE(), 3) is None


def test_the_initial_loss_exposes_weights_that_are_too_large(digits):
    X, y = digits
    good, expected = dg.initial_loss(mlp(), bk.SoftmaxCrossEntropy(), X, y)
    bad, _ = dg.initial_loss(mlp(init=10.0), bk.SoftmaxCrossEntropy(), X, y)
    assert abs(good - expected) < 0.5 < 100 < bad - expected


class Ascent(bk.optim.SGD):
    """A planted bug: the step goes up the gradient."""

    def update(self, i, w, g):
        w += self.lr * g


def test_overfitting_a_tiny_batch_works_and_catches_a_step_with_the_wrong_sign(digits):
    X, y = digits[0][:12], digits[1][:12]
    model = mlp()
    losses = dg.overfit_batch(model, bk.SoftmaxCrossEntropy(), bk.optim.Adam(model.parameters(), lr=0.01), X, y, 150)
    assert losses[-1] < 0.01 * losses[0]
    model = mlp()
    try:
        losses = dg.overfit_batch(model, bk.SoftmaxCrossEntropy(), Ascent(model.parameters(), lr=0.1), X, y, 150)
        diverged = losses[-1] > 10 * losses[0]
    except FloatingPointError:  # the loss may climb until it is no longer finite
        diverged = True
    assert diverged


def test_update_ratios_are_the_relative_step_of_each_weight_and_scale_with_the_rate(digits):
    X, y = digits[0][:64], digits[1][:64]
    ratios = {lr: dg.update_ratios(m, bk.SoftmaxCrossEntropy(), bk.optim.SGD(m.parameters(), lr=lr), X, y)
              for lr, m in ((1e-3, mlp()), (1.0, mlp()))}
    assert list(ratios[1.0]) == ["0:W1", "2:W2"]  # weights only
    for name in ratios[1.0]:
        assert ratios[1.0][name] == pytest.approx(1000 * ratios[1e-3][name], rel=1e-9)  # one SGD step: lr g
    assert all(1e-3 < r < 1 for r in ratios[1.0].values()) and all(r < 1e-4 for r in ratios[1e-3].values())


def test_the_range_test_rises_geometrically_and_stops_where_the_loss_blows_up(digits):
    X, y = digits
    rates, losses = dg.lr_range_test(mlp, bk.SoftmaxCrossEntropy(), lambda ps, lr: bk.optim.SGD(ps, lr=lr), X, y,
                                     1e-4, 100.0, 100, 32, np.random.default_rng(1))
    assert rates[0] == pytest.approx(1e-4) and np.allclose(np.diff(np.log(rates)), np.log(1e6) / 99)
    assert len(rates) < 100 and rates[-1] > 1  # it stopped early, at a large rate
    assert min(losses) < 0.7 * losses[0]  # in between, the loss fell
    with pytest.raises(ValueError, match=r"0 < lr_min < lr_max"):
        dg.lr_range_test(mlp, bk.SoftmaxCrossEntropy(), bk.optim.SGD, X, y, 1.0, 0.1, 10, 8, np.random.default_rng(0))

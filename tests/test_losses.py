"""Tests for bpkit.losses: closed-form values, gradients, stability and clear errors.

Hypothesis examples per gradient property:
- test_mse_gradient, test_bce_gradient: 40 examples each;
- test_softmax_ce_gradient_labels_and_one_hot: 40 examples (each checks labels and one-hot);
- test_softmax_ce_gradient_probability_targets: 30 examples.
Value and softmax-property tests run 30-40 examples each.
"""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import bpkit as bk
from strategies import batch_sizes, float_arrays, widths

EPS = 1e-5  # central-difference step; MSE is quadratic, so only rounding (about 1e-16 L / EPS) remains
FLOOR = 1e-2  # relative to the loss scale: below it a difference quotient cannot resolve 1e-7


def gradient_error(analytic, numeric, scale):
    r"""$\max|g - \tilde g| / \max(\max|g|, \max|\tilde g|, \text{FLOOR}\cdot\text{scale})$.

    Equal to ``bk.rel_error`` whenever the gradient is above the floor. Where the whole
    gradient is smaller (a near-perfect fit), the difference quotient's rounding error,
    about 1e-11 times the loss scale, is itself 1e-7 of the gradient, so the test asks for
    an absolute agreement of 1e-9 times the loss scale instead.
    """
    top = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)), FLOOR * scale)
    return float(np.max(np.abs(analytic - numeric)) / top)


def check_loss_gradient(loss, y_hat, y):
    """Assert loss.backward() equals the central difference of loss.forward in y_hat."""
    value = loss.forward(y_hat, y)
    analytic = loss.backward()
    numeric = bk.numerical_gradient(lambda: loss.forward(y_hat, y), y_hat, EPS)
    scale = max(1.0, abs(value), float(np.max(np.abs(y_hat))))
    assert analytic.shape == y_hat.shape
    assert gradient_error(analytic, numeric, scale) < 1e-7


@st.composite
def pairs(draw, lo=-5.0, hi=5.0, min_width=1):
    """(y_hat, second array of the same shape), both float64 in [lo, hi]."""
    shape = (draw(batch_sizes), draw(st.integers(min_width, 6)))
    return draw(float_arrays(shape, lo, hi)), draw(float_arrays(shape, lo, hi))


@st.composite
def logits_and_labels(draw, lo=-5.0, hi=5.0):
    n, c = draw(batch_sizes), draw(st.integers(2, 6))
    z = draw(float_arrays((n, c), lo, hi))
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    return z, labels


def one_hot(labels, c):
    Y = np.zeros((labels.size, c))
    for n, label in enumerate(labels):
        Y[n, label] = 1.0
    return Y


def softmax_by_hand(row):
    e = [math.exp(v) for v in row]
    return [v / math.fsum(e) for v in e]


def probability_rows(n, c, seed):
    w = np.random.default_rng(seed).random((n, c)) + 0.01
    return w / w.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- values


@settings(max_examples=40)
@given(pairs())
def test_mse_value(pair):
    y_hat, y = pair
    N = y_hat.shape[0]
    expected = math.fsum(0.5 * (p - t) ** 2 for row_p, row_t in zip(y_hat, y) for p, t in zip(row_p, row_t)) / N
    assert bk.MSE().forward(y_hat, y) == pytest.approx(expected, rel=1e-12, abs=1e-300)


@settings(max_examples=40)
@given(pairs(lo=-10.0, hi=10.0), st.data())
def test_bce_value(pair, data):
    z, _ = pair
    y = data.draw(float_arrays(z.shape, 0.0, 1.0))
    N = z.shape[0]
    terms = []
    for zi, yi in zip(z.ravel(), y.ravel()):
        s = 1 / (1 + math.exp(-zi))
        terms.append(-(yi * math.log(s) + (1 - yi) * math.log(1 - s)))
    assert bk.BCEWithLogits().forward(z, y) == pytest.approx(math.fsum(terms) / N, rel=1e-9, abs=1e-12)


@settings(max_examples=40)
@given(logits_and_labels(lo=-10.0, hi=10.0))
def test_softmax_ce_value(pair):
    z, labels = pair
    expected = -math.fsum(math.log(softmax_by_hand(row)[label]) for row, label in zip(z, labels)) / len(labels)
    assert bk.SoftmaxCrossEntropy().forward(z, labels) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_softmax_ce_value_with_probability_targets():
    z = np.array([[1.0, 2.0, 3.0], [0.5, -0.5, 0.0]])
    Y = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    expected = -sum(math.fsum(t * math.log(p) for t, p in zip(Y[n], softmax_by_hand(z[n]))) for n in range(2)) / 2
    assert bk.SoftmaxCrossEntropy().forward(z, Y) == pytest.approx(expected, rel=1e-12)


def test_mse_has_the_one_half_factor():
    # one example, one output, error 2: 1/2 * 2^2 = 2 (PyTorch's MSELoss would give 4)
    assert bk.MSE().forward(np.array([[3.0]]), np.array([[1.0]])) == 2.0


def test_losses_are_callable():
    for loss, y in ((bk.MSE(), np.zeros((2, 2))), (bk.BCEWithLogits(), np.zeros((2, 2))),
                    (bk.SoftmaxCrossEntropy(), np.array([0, 1]))):
        y_hat = np.array([[0.3, -0.2], [1.0, 0.5]])
        assert loss(y_hat, y) == loss.forward(y_hat, y)


# ----------------------------------------------------------------------------- gradients


@settings(max_examples=40)
@given(pairs())
def test_mse_gradient(pair):
    y_hat, y = pair
    check_loss_gradient(bk.MSE(), y_hat, y)


@settings(max_examples=40)
@given(pairs(), st.data())
def test_bce_gradient(pair, data):
    z, _ = pair
    y = data.draw(float_arrays(z.shape, 0.0, 1.0))
    check_loss_gradient(bk.BCEWithLogits(), z, y)


@settings(max_examples=40)
@given(logits_and_labels())
def test_softmax_ce_gradient_labels_and_one_hot(pair):
    z, labels = pair
    Y = one_hot(labels, z.shape[1])
    check_loss_gradient(bk.SoftmaxCrossEntropy(), z, labels)
    check_loss_gradient(bk.SoftmaxCrossEntropy(), z, Y)
    by_label, by_one_hot = bk.SoftmaxCrossEntropy(), bk.SoftmaxCrossEntropy()
    assert by_label.forward(z, labels) == pytest.approx(by_one_hot.forward(z, Y), rel=1e-14, abs=1e-300)
    np.testing.assert_allclose(by_label.backward(), by_one_hot.backward(), rtol=1e-14, atol=1e-300)


@settings(max_examples=30)
@given(logits_and_labels(), st.integers(0, 2**32 - 1))
def test_softmax_ce_gradient_probability_targets(pair, seed):
    z, _ = pair
    check_loss_gradient(bk.SoftmaxCrossEntropy(), z, probability_rows(*z.shape, seed))


def test_gradients_in_closed_form():
    y_hat = np.array([[0.5, -1.0], [2.0, 0.0]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    mse, bce, ce = bk.MSE(), bk.BCEWithLogits(), bk.SoftmaxCrossEntropy()
    mse.forward(y_hat, y)
    bce.forward(y_hat, y)
    ce.forward(y_hat, np.array([0, 1]))
    np.testing.assert_allclose(mse.backward(), (y_hat - y) / 2)
    np.testing.assert_allclose(bce.backward(), (1 / (1 + np.exp(-y_hat)) - y) / 2)
    p = np.exp(y_hat) / np.exp(y_hat).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ce.backward(), (p - y) / 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_keeps_the_prediction_dtype(dtype):
    y_hat = np.array([[0.5, -1.0], [2.0, 0.0]], dtype=dtype)
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    for loss, target in ((bk.MSE(), y), (bk.BCEWithLogits(), y), (bk.SoftmaxCrossEntropy(), np.array([0, 1])),
                         (bk.SoftmaxCrossEntropy(), y)):
        assert np.isfinite(loss.forward(y_hat, target))
        assert loss.backward().dtype == dtype


# ----------------------------------------------------------------------------- stability


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "z, y, value, grad",
    [(1e4, 1.0, 0.0, 0.0), (-1e4, 1.0, 1e4, -1.0), (1e4, 0.0, 1e4, 1.0), (-1e4, 0.0, 0.0, 0.0),
     (1e3, 1.0, 0.0, 0.0), (-1e3, 1.0, 1e3, -1.0)],
)
def test_bce_extreme_logits(z, y, value, grad, dtype):
    loss = bk.BCEWithLogits()
    got = loss.forward(np.array([[z]], dtype=dtype), np.array([[y]]))
    assert got == pytest.approx(value, abs=1e-6)
    np.testing.assert_allclose(loss.backward(), [[grad]], atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label, value", [(0, 0.0), (1, 2e4), (2, 1e4)])
def test_softmax_ce_extreme_logits(label, value, dtype):
    loss = bk.SoftmaxCrossEntropy()
    z = np.array([[1e4, -1e4, 0.0]], dtype=dtype)
    assert loss.forward(z, np.array([label])) == pytest.approx(value, abs=1e-6)
    grad = loss.backward()
    expected = np.array([[1.0, 0.0, 0.0]])
    expected[0, label] -= 1
    np.testing.assert_allclose(grad, expected, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mse_large_values_are_finite(dtype):
    loss = bk.MSE()
    assert loss.forward(np.array([[1e4], [-1e4]], dtype=dtype), np.zeros((2, 1))) == pytest.approx(0.5e8)
    np.testing.assert_allclose(loss.backward(), [[5e3], [-5e3]])


large_logits = st.sampled_from([np.float32, np.float64]).flatmap(
    lambda dtype: arrays(dtype, st.tuples(batch_sizes, widths),
                         elements=st.floats(-1e4, 1e4, width=32 if dtype == np.float32 else 64)))


@settings(max_examples=40)
@given(large_logits)
def test_softmax_rows_sum_to_one_and_log_softmax_is_finite(z):
    p, logp = bk.softmax(z), bk.log_softmax(z)
    assert p.dtype == logp.dtype == z.dtype
    tol = 1e-5 if z.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=tol)
    assert np.all((p >= 0) & (p <= 1))
    assert np.isfinite(logp).all()
    assert np.all(logp <= 0)


@settings(max_examples=40)
@given(float_arrays(st.tuples(batch_sizes, widths), -1e4, 1e4), st.data())
def test_softmax_is_invariant_to_a_constant_per_row(z, data):
    c = data.draw(float_arrays((z.shape[0], 1), -1e4, 1e4))
    np.testing.assert_allclose(bk.softmax(z + c), bk.softmax(z), rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(bk.log_softmax(z + c), bk.log_softmax(z), rtol=1e-8, atol=1e-8)


def test_softmax_ce_gradient_rows_sum_to_zero():
    loss = bk.SoftmaxCrossEntropy()
    loss.forward(np.array([[1e4, -1e4, 0.0], [0.1, 0.2, 0.3]]), np.array([1, 2]))
    np.testing.assert_allclose(loss.backward().sum(axis=1), 0.0, atol=1e-15)


# ----------------------------------------------------------------------------- clear errors

LOSSES = [
    (bk.MSE, np.zeros((3, 2))),
    (bk.BCEWithLogits, np.zeros((3, 2))),
    (bk.SoftmaxCrossEntropy, np.array([0, 1, 0])),
]
loss_ids = [cls.__name__ for cls, _ in LOSSES]


@pytest.mark.parametrize("cls, y", LOSSES, ids=loss_ids)
def test_batch_size_mismatch(cls, y):
    with pytest.raises(ValueError, match=rf"{cls.__name__}\(\) got 4 predictions .* but 3 targets .*batch sizes must match"):
        cls().forward(np.zeros((4, 2)), y)


@pytest.mark.parametrize("cls, y", LOSSES, ids=loss_ids)
def test_one_dimensional_y_hat(cls, y):
    with pytest.raises(ValueError, match=r"1-D predictions y_hat of shape \(3,\).*reshape"):
        cls().forward(np.zeros(3), y)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, bool, object])
@pytest.mark.parametrize("cls, y", LOSSES, ids=loss_ids)
def test_non_float_y_hat(cls, y, dtype):
    y_hat = np.zeros((3, 2), dtype=dtype)
    with pytest.raises(TypeError, match=rf"predictions y_hat with dtype {np.dtype(dtype)}: expected float32 or float64"):
        cls().forward(y_hat, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("cls, y", LOSSES, ids=loss_ids)
def test_non_finite_y_hat(cls, y, bad):
    y_hat = np.zeros((3, 2))
    y_hat[2, 1] = bad
    with pytest.raises(ValueError, match=r"y_hat with 1 non-finite value.*at index \(2, 1\)"):
        cls().forward(y_hat, y)


@pytest.mark.parametrize("cls, y", LOSSES, ids=loss_ids)
def test_backward_before_forward(cls, y):
    with pytest.raises(RuntimeError, match=rf"{cls.__name__}\(\)\.backward called before forward"):
        cls().backward()


@pytest.mark.parametrize("cls", [bk.MSE, bk.BCEWithLogits])
def test_one_dimensional_targets_for_a_column_of_predictions(cls):
    with pytest.raises(ValueError, match=re.escape("shape (4,) for y_hat of shape (4, 1)") + r".*y\.reshape\(-1, 1\)"):
        cls().forward(np.zeros((4, 1)), np.zeros(4))


@pytest.mark.parametrize("cls", [bk.MSE, bk.BCEWithLogits])
def test_target_shape_mismatch(cls):
    with pytest.raises(ValueError, match=re.escape("targets y of shape (4, 3) for y_hat of shape (4, 2): expected the same shape")):
        cls().forward(np.zeros((4, 2)), np.zeros((4, 3)))


@pytest.mark.parametrize("cls", [bk.MSE, bk.BCEWithLogits])
def test_integer_targets_are_refused_with_a_hint(cls):
    with pytest.raises(TypeError, match=r"targets y with dtype int\d+.*astype\(np\.float64\)"):
        cls().forward(np.zeros((2, 1)), np.array([[0], [1]]))


@pytest.mark.parametrize("bad, index", [(1.5, "(1, 0)"), (-0.25, "(2, 0)")])
def test_bce_target_outside_unit_interval(bad, index):
    y = np.array([[0.0], [1.0], [0.5]])
    y[int(index[1])] = bad
    with pytest.raises(ValueError, match=rf"target {bad} at index {re.escape(index)}: binary targets must lie in \[0, 1\]"):
        bk.BCEWithLogits().forward(np.zeros((3, 1)), y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("cls", [bk.MSE, bk.BCEWithLogits])
def test_non_finite_targets_are_named_with_their_index(cls, bad):
    y = np.array([[0.0], [1.0], [0.5]])
    y[2, 0] = bad
    with pytest.raises(ValueError, match=rf"{cls.__name__}\(\) got (targets y with 1 non-finite value.*|target {bad} )at index \(2, 0\)"):
        cls().forward(np.zeros((3, 1)), y)


@pytest.mark.parametrize("labels, bad, index", [([0, 3, 1], 3, 1), ([0, 1, -1], -1, 2)])
def test_softmax_label_out_of_range(labels, bad, index):
    with pytest.raises(ValueError, match=rf"label {bad} at index {index}: expected 0\.\.2 for 3 classes"):
        bk.SoftmaxCrossEntropy().forward(np.zeros((3, 3)), np.array(labels))


def test_softmax_float_labels():
    with pytest.raises(TypeError, match=r"1-D labels with dtype float64: expected integer class indices 0\.\.2"):
        bk.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0.0, 2.0]))


@pytest.mark.parametrize("Y", [[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [[0.5, 0.0, 0.0], [0.0, 1.0, 0.0]],
                               [[1.5, -0.5, 0.0], [0.0, 1.0, 0.0]]])
def test_softmax_target_rows_must_be_probability_vectors(Y):
    with pytest.raises(ValueError, match=r"target matrix of shape \(2, 3\) whose rows are not probability vectors"):
        bk.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array(Y))


def test_softmax_target_matrix_shape_mismatch():
    with pytest.raises(ValueError, match=re.escape("targets y of shape (2, 4) for y_hat of shape (2, 3)")):
        bk.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.full((2, 4), 0.25))

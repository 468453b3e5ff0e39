"""Misuse gets a clear error or a correct result: each test is one scenario a learner can hit.

Each error message names the object that refused, says what it got, and says what to do.
"""

import numpy as np
import pytest

import bpkit as bk
from bpkit import data, optim, train
from bpkit.activations import ACTIVATIONS
from bpkit.engine import Value

F64, F32 = np.finfo(np.float64), np.finfo(np.float32)


# --- numerics over the whole finite range ---

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_and_its_derivative_is_finite_over_the_whole_range(name, dtype):
    info = np.finfo(dtype)
    z = np.array([-info.max, -1e30, -60.0, -1.0, -info.tiny, 0.0, info.tiny, 1.0, 60.0, 1e30, info.max], dtype=dtype)
    f, f_prime = ACTIVATIONS[name]
    a, d = f(z), f_prime(z)  # pytest turns any RuntimeWarning into an error
    assert np.isfinite(a).all() and np.isfinite(d).all()
    assert a.dtype == dtype and d.dtype == dtype


@pytest.mark.parametrize("z, slope", [(1e104, 1.0), (-1e104, 0.0), (F64.max, 1.0), (-F64.max, 0.0)])
def test_gelu_delta_far_out_is_the_slope_of_its_asymptote(z, slope):
    assert bk.activations.gelu_prime(np.array([z]))[0] == slope
    assert bk.activations.gelu_prime(np.array([np.float32(z / 1e90 if abs(z) < 1e300 else np.sign(z) * 3e13)],
                                              dtype=np.float32))[0] == slope


def test_mse_beyond_float64_is_refused_clearly():
    with pytest.raises(FloatingPointError, match=r"MSE\(\): the loss is inf, beyond float64 .*scale the data down"):
        bk.MSE().forward(np.array([[2e154]]), np.array([[0.0]]))
    assert bk.MSE().forward(np.array([[1e150]]), np.array([[0.0]])) == pytest.approx(0.5e300)


def test_softmax_cross_entropy_with_logits_1e308_apart():
    ce = bk.SoftmaxCrossEntropy()
    z = np.array([[1e308, -1e308]])
    assert ce.forward(z, np.array([0])) == 0.0
    np.testing.assert_array_equal(ce.backward(), [[0.0, 0.0]])
    with pytest.raises(FloatingPointError, match=r"SoftmaxCrossEntropy\(\): the loss is inf, beyond float64"):
        ce.forward(z, np.array([1]))


def test_softmax_of_a_1d_array_says_how_to_make_a_batch():
    with pytest.raises(ValueError, match=r"log_softmax got 1-D logits of shape \(3,\): expected a 2-D array "
                                         r"\(batch, features\); for one example use x\.reshape\(1, -1\)"):
        bk.softmax(np.ones(3))


def test_value_log_of_a_subnormal_number_refuses_an_infinite_gradient():
    with pytest.raises(OverflowError, match=r"log of Value \(data=9\.99989e-321\): its derivative 1/a is beyond float64"):
        Value(1e-320).log()
    assert Value(1e-300).log().local_grads[0] == pytest.approx(1e300)


def test_value_division_by_almost_zero_is_a_clear_error():
    with pytest.raises(OverflowError, match=r"division of Value \(data=1\) by Value \(data=1e-200\): the derivatives"):
        Value(1.0) / Value(1e-200)
    with pytest.raises(ZeroDivisionError, match=r"division of Value \(data=1\) by Value \(data=0\), which is zero"):
        Value(1.0) / Value(0.0)


# --- clip_grad_norm ---

def test_clip_grad_norm_of_huge_finite_gradients_does_not_overflow():
    p = bk.Parameter(np.zeros(4), "w")
    p.grad = np.full(4, 1e200)
    assert optim.clip_grad_norm([p], 1.0) == pytest.approx(2e200)
    assert np.linalg.norm(p.grad) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_refuses_a_non_finite_gradient_and_changes_nothing(bad):
    p, q = bk.Parameter(np.zeros(2), "W1"), bk.Parameter(np.zeros(2), "W2")
    p.grad, q.grad = np.array([3.0, 4.0]), np.array([1.0, bad])
    with pytest.raises(FloatingPointError, match=rf"clip_grad_norm: parameter W2 has a non-finite gradient, {bad} at index \(1,\)"):
        optim.clip_grad_norm([p, q], 1.0)
    np.testing.assert_array_equal(p.grad, [3.0, 4.0])


def test_clip_grad_norm_of_a_single_parameter_says_pass_a_list():
    p = bk.Parameter(np.zeros(2), "w")
    with pytest.raises(TypeError, match=r"clip_grad_norm got a single Parameter\('w'.*pass a list of parameters"):
        optim.clip_grad_norm(p, 1.0)


# --- data ---

def test_standardize_of_data_near_the_top_of_float64():
    X = np.array([[1e300, 1.0], [-1e300, 2.0], [3e300, 3.0]])
    Z, _ = data.standardize(X, X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0)


def test_standardize_refuses_nan_naming_the_entry():
    X = np.array([[1.0, 2.0], [np.nan, 1.0]])
    with pytest.raises(ValueError, match=r"standardize got X_train with 1 non-finite value\(s\).*nan at index \(1, 0\)"):
        data.standardize(X, X)


def test_train_test_split_with_a_string_fraction():
    with pytest.raises(TypeError, match=r"train_test_split got test_fraction='0\.2' of type str: expected a number"):
        data.train_test_split(np.ones((10, 2)), np.ones(10), "0.2", np.random.default_rng(0))


def test_an_empty_data_set_is_named_as_such():
    model = bk.MLP([2, 3, 1], "relu", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"fit got an empty data set \(X of shape \(0, 2\)\)"):
        train.fit(model, bk.MSE(), optim.SGD(model.parameters(), lr=0.1), np.ones((0, 2)), np.ones((0, 1)),
                  epochs=1, batch_size=1, rng=np.random.default_rng(0))


# --- the gradient checker ---

def test_numerical_gradient_refuses_an_integer_array():
    x = np.arange(3)
    with pytest.raises(TypeError, match=r"numerical_gradient needs a float array x .*dtype int64"):
        bk.numerical_gradient(lambda: float(np.sum(x ** 2)), x)


@pytest.mark.parametrize("a, b", [((3, 1), (3,)), ((3,), (4,))])
def test_rel_error_refuses_arrays_of_different_shapes(a, b):
    with pytest.raises(ValueError, match=r"rel_error got arrays of shapes .* they must have the same shape"):
        bk.rel_error(np.ones(a), np.ones(b))


def test_gradcheck_of_a_single_parameter_or_an_array_valued_function():
    p = bk.Parameter(np.ones(3), "w")
    with pytest.raises(TypeError, match=r"gradcheck got a single Parameter\('w'.*pass a list of parameters"):
        bk.gradcheck(lambda: float(np.sum(p.value)), p)
    with pytest.raises(TypeError, match=r"gradcheck: f\(\) must return one number \(the loss\), got an array of shape \(3,\)"):
        bk.gradcheck(lambda: p.value * 2, [p])


# --- optimizers and schedules ---

def test_adam_with_a_single_beta():
    with pytest.raises(ValueError, match=r"Adam got betas=0\.9: expected a pair \(beta1, beta2\)"):
        optim.Adam([bk.Parameter(np.zeros(2), "w")], lr=0.1, betas=0.9)


def test_an_integer_parameter_is_refused_by_the_optimizer():
    with pytest.raises(TypeError, match=r"SGD: parameter i has dtype int64: an optimizer updates float parameters only"):
        optim.SGD([bk.Parameter(np.arange(3), "i")], lr=0.1)


def test_step_lr_with_a_huge_gamma_names_the_overflow():
    opt = optim.SGD([bk.Parameter(np.zeros(2), "w")], lr=0.1)
    schedule = optim.StepLR(opt, 1, gamma=1e300)
    schedule.step()
    with pytest.raises(OverflowError, match=r"StepLR: after 2 epochs the rate 0\.1 \* 1e\+300\^2 is beyond float64"):
        schedule.step()
    assert opt.lr == pytest.approx(1e299)  # the last rate that was finite stays


# --- fit and accuracy ---

def _model_and_data():
    rng = np.random.default_rng(0)
    return bk.MLP([2, 3, 1], "tanh", rng=rng), rng.normal(size=(20, 2)), rng.normal(size=(20, 1)), rng


def test_fit_with_clip_norm_as_a_string():
    model, X, y, rng = _model_and_data()
    with pytest.raises(ValueError, match=r"fit got clip_norm='1': expected None or a positive number"):
        train.fit(model, bk.MSE(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=1, batch_size=5, rng=rng,
                  clip_norm="1")


def test_a_nan_weight_before_training_is_not_reported_as_divergence():
    model, X, y, rng = _model_and_data()
    model.dense_layers[1].W.value[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"fit: parameter W2 holds nan at index \(2, 0\) before training"):
        train.fit(model, bk.MSE(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=1, batch_size=5, rng=rng)


def test_accuracy_with_1d_logits_or_a_different_number_of_labels():
    with pytest.raises(ValueError, match=r"accuracy got 1-D logits y_hat of shape \(4,\): expected a 2-D array"):
        train.accuracy(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match=r"accuracy got 4 predictions .* and targets y of shape \(5,\): expected one"):
        train.accuracy(np.ones((4, 3)), np.zeros(5, dtype=int))


def test_softmax_cross_entropy_with_column_labels_says_ravel():
    with pytest.raises(ValueError, match=r"got integer labels of shape \(3, 1\): pass the class indices as a 1-D "
                                         r"array of shape \(3,\), e\.g\. y\.ravel\(\)"):
        bk.SoftmaxCrossEntropy().forward(np.zeros((3, 2)), np.zeros((3, 1), dtype=int))


def test_fit_names_a_bad_label_by_its_row_in_y_not_in_a_shuffled_minibatch():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, size=30)
    y[17] = 5
    model = bk.MLP([4, 5, 3], "relu", rng=rng)
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy\(\) got label 5 at index 17: expected 0\.\.2 for 3 classes"):
        train.fit(model, bk.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=1,
                  batch_size=4, rng=rng)

"""Tests for bpkit.layers: Parameter, the affine Dense layer, and the input check it offers a model.

Hypothesis examples per gradient property:
- test_backward_passes_check_layer: 40 examples (input, W and b gradients each);
- test_gradients_accumulate_and_zero_grad_resets: 20 examples;
- test_backward_after_zero_grad_gives_exactly_the_new_gradient: 20 examples;
- test_backward_without_input_grad_fills_the_same_gradients: 20 examples.
test_forward_is_affine runs 30 examples.

Layers trust their input; ``Dense.check_input`` is the check a model runs once, where the data
enters (``Sequential.forward``). The error tests call it both ways.
"""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpkit as bk
from strategies import batch_sizes, seeds, widths


def dense_with_random_bias(n_in, n_out, rng, dtype=np.float64):
    """A Dense layer whose biases are not zero, so a wrong b gradient cannot hide."""
    layer = bk.Dense(n_in, n_out, rng=rng, dtype=dtype)
    layer.b.value[...] = rng.normal(size=n_out)
    return layer


layer_cases = st.tuples(batch_sizes, widths, widths, seeds)


# ----------------------------------------------------------------------------- forward and backward


@settings(max_examples=30)
@given(layer_cases)
def test_forward_is_affine(case):
    N, n_in, n_out, seed = case
    rng = np.random.default_rng(seed)
    layer = dense_with_random_bias(n_in, n_out, rng)
    X = rng.normal(size=(N, n_in))
    expected = np.einsum("ni,io->no", X, layer.W.value) + layer.b.value[None, :]
    z = layer.forward(X)
    assert z.shape == (N, n_out)
    np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=40)
@given(layer_cases)
def test_backward_passes_check_layer(case):
    N, n_in, n_out, seed = case
    rng = np.random.default_rng(seed)
    layer = dense_with_random_bias(n_in, n_out, rng)
    report = bk.check_layer(layer, rng.normal(size=(N, n_in)), rng)
    assert [r.name for r in report.results] == ["input", "W", "b"]
    assert report.passed, report
    assert report.max_error < 1e-7


def test_backward_in_closed_form():
    rng = np.random.default_rng(3)
    layer = dense_with_random_bias(3, 2, rng)
    X, delta = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    layer.forward(X)
    grad_X = layer.backward(delta)
    np.testing.assert_allclose(grad_X, delta @ layer.W.value.T)
    np.testing.assert_allclose(layer.W.grad, X.T @ delta)
    np.testing.assert_allclose(layer.b.grad, delta.sum(axis=0))


@settings(max_examples=20)
@given(layer_cases)
def test_gradients_accumulate_and_zero_grad_resets(case):
    N, n_in, n_out, seed = case
    rng = np.random.default_rng(seed)
    layer = dense_with_random_bias(n_in, n_out, rng)
    X1, X2 = rng.normal(size=(N, n_in)), rng.normal(size=(N, n_in))
    d1, d2 = rng.normal(size=(N, n_out)), rng.normal(size=(N, n_out))
    W_grad, b_grad = layer.W.grad, layer.b.grad
    layer.forward(X1)
    layer.backward(d1)
    layer.forward(X2)
    layer.backward(d2)
    np.testing.assert_allclose(layer.W.grad, X1.T @ d1 + X2.T @ d2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.b.grad, d1.sum(axis=0) + d2.sum(axis=0), rtol=1e-12, atol=1e-12)
    for p, grad in ((layer.W, W_grad), (layer.b, b_grad)):
        p.zero_grad()
        assert p.grad is grad  # reset in place: the same array is kept
        assert not p.grad.any()


@settings(max_examples=20)
@given(layer_cases)
def test_backward_after_zero_grad_gives_exactly_the_new_gradient(case):
    """zero_grad writes zeros into the same arrays; the next backward adds to them, leaving exactly the new gradient."""
    N, n_in, n_out, seed = case
    rng = np.random.default_rng(seed)
    layer = dense_with_random_bias(n_in, n_out, rng)
    W_grad = layer.W.grad
    for _ in range(2):  # the second round starts from a gradient full of old numbers
        X, d = rng.normal(size=(N, n_in)), rng.normal(size=(N, n_out))
        for p in layer.parameters():
            p.zero_grad()
        layer.forward(X)
        layer.backward(d)
        assert layer.W.grad is W_grad  # the same array: nothing holding it is left behind
        np.testing.assert_array_equal(layer.W.grad, X.T @ d)
        np.testing.assert_allclose(layer.b.grad, d.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_zero_grad_writes_zeros_in_place():
    p = bk.Parameter(np.arange(6.0).reshape(2, 3), "W")
    grad = p.grad
    assert grad.shape == (2, 3) and grad.dtype == np.float64 and not grad.any()  # starts at zeros
    p.grad += 2.5
    p.zero_grad()
    assert p.grad is grad and not grad.any()  # the same array, now zeros: a view of it sees them
    p.grad = np.full((2, 3), 7.0)  # an assigned gradient is the one zero_grad resets
    assigned = p.grad
    p.zero_grad()
    assert p.grad is assigned and not assigned.any()
    np.testing.assert_array_equal(p.value, np.arange(6.0).reshape(2, 3))  # the value is untouched


@settings(max_examples=20)
@given(layer_cases)
def test_backward_without_input_grad_fills_the_same_gradients(case):
    """input_grad=False: the same W and b gradients, and no dL/da_prev (None)."""
    N, n_in, n_out, seed = case
    rng = np.random.default_rng(seed)
    layer = dense_with_random_bias(n_in, n_out, rng)
    X, d = rng.normal(size=(N, n_in)), rng.normal(size=(N, n_out))
    layer.forward(X)
    grad_X = layer.backward(d)
    full = [p.grad.copy() for p in layer.parameters()]
    for p in layer.parameters():
        p.zero_grad()
    assert layer.backward(d, input_grad=False) is None
    assert grad_X.shape == (N, n_in)
    for p, g in zip(layer.parameters(), full):
        np.testing.assert_array_equal(p.grad, g)


def test_a_step_after_zero_grad_without_backward_moves_nothing():
    rng = np.random.default_rng(5)
    model = bk.MLP([3, 4, 2], "tanh", rng=rng)
    loss = bk.MSE()
    loss.forward(model.forward(rng.normal(size=(6, 3))), rng.normal(size=(6, 2)))
    model.backward(loss.backward())  # every gradient is now non-zero
    opt = bk.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    before = [p.value.copy() for p in model.parameters()]
    opt.step()
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.value, b)


def test_training_forward_keeps_the_input_and_eval_forward_keeps_nothing():
    rng = np.random.default_rng(4)
    layer = bk.Dense(2, 3, rng=rng)
    assert layer.training and layer.a_prev is None
    X1, X2 = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    layer.forward(X1)
    assert layer.a_prev is X1  # kept as it is, not copied
    layer.training = False
    np.testing.assert_array_equal(layer.forward(X2), X2 @ layer.W.value + layer.b.value)
    assert layer.a_prev is X1  # an evaluation-mode forward leaves what training kept
    delta = np.ones((5, 3))
    layer.backward(delta)
    np.testing.assert_allclose(layer.W.grad, X1.T @ delta)
    fresh = bk.Dense(2, 3, rng=rng)
    fresh.training = False
    fresh.forward(X1)
    assert fresh.a_prev is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_through_forward_and_backward(dtype):
    rng = np.random.default_rng(5)
    layer = bk.Dense(3, 2, rng=rng, dtype=dtype)
    assert layer.W.value.dtype == layer.b.value.dtype == dtype
    assert layer.W.grad.dtype == layer.b.grad.dtype == dtype
    z = layer.forward(rng.normal(size=(4, 3)).astype(dtype))
    grad_X = layer.backward(np.ones_like(z))
    assert z.dtype == grad_X.dtype == layer.W.grad.dtype == layer.b.grad.dtype == dtype


def test_parameters_and_names():
    layer = bk.Dense(3, 2, rng=np.random.default_rng(0), name=4)
    assert layer.parameters() == [layer.W, layer.b]
    assert (layer.W.name, layer.b.name) == ("W4", "b4")
    assert layer.W.value.shape == layer.W.grad.shape == (3, 2)
    assert layer.b.value.shape == layer.b.grad.shape == (2,)
    assert not layer.b.value.any()
    assert repr(layer) == "Dense(3->2)"
    assert repr(layer.W) == "Parameter('W4', shape=(3, 2), dtype=float64)"


# ----------------------------------------------------------------------------- initialisation

N_IN, N_OUT = 400, 1600  # he: sqrt(2/400) = 0.0707; xavier: sqrt(2/2000) = 0.0316; lecun: 0.05


@pytest.mark.parametrize("init, std", [("he", np.sqrt(2 / N_IN)), ("xavier", np.sqrt(2 / (N_IN + N_OUT))), (0.3, 0.3)])
def test_initial_weights_have_the_right_std(init, std):
    W = bk.Dense(N_IN, N_OUT, rng=np.random.default_rng(6), init=init).W.value
    # 640,000 draws: the sample std is within 0.2% of the truth (3 standard errors);
    # 2% still fails the other formulas, which are 30% or more away
    assert W.std() == pytest.approx(std, rel=0.02)
    assert abs(W.mean()) < 5 * std / np.sqrt(W.size)
    for wrong in {np.sqrt(2 / N_IN), np.sqrt(2 / (N_IN + N_OUT)), np.sqrt(1 / N_IN), 0.3} - {std}:
        assert W.std() != pytest.approx(wrong, rel=0.02)


def test_he_and_xavier_differ_as_their_formulas_say():
    he = bk.Dense(N_IN, N_OUT, rng=np.random.default_rng(7), init="he").W.value.std()
    xavier = bk.Dense(N_IN, N_OUT, rng=np.random.default_rng(7), init="xavier").W.value.std()
    assert he / xavier == pytest.approx(np.sqrt((N_IN + N_OUT) / N_IN), rel=0.02)


def test_zero_std_gives_zero_weights():
    assert not bk.Dense(3, 2, rng=np.random.default_rng(0), init=0.0).W.value.any()


def test_same_seed_same_weights_different_seed_different_weights():
    def weights(seed):
        return bk.Dense(4, 3, rng=np.random.default_rng(seed)).W.value

    np.testing.assert_array_equal(weights(11), weights(11))
    assert not np.array_equal(weights(11), weights(12))


def test_the_generator_is_the_only_source_of_randomness():
    rng = np.random.default_rng(8)
    first, second = bk.Dense(4, 3, rng=rng).W.value, bk.Dense(4, 3, rng=rng).W.value
    assert not np.array_equal(first, second)  # the generator advanced
    np.testing.assert_array_equal(first, bk.Dense(4, 3, rng=np.random.default_rng(8)).W.value)


# ----------------------------------------------------------------------------- clear errors


def make_layer(dtype=np.float64):
    return bk.Dense(3, 4, rng=np.random.default_rng(0), dtype=dtype)


#: the two ways the input check runs: called directly, and by a model whose first layer is the Dense
CHECKS = {
    "check_input": lambda layer, x: layer.check_input(x),
    "Sequential.forward": lambda layer, x: bk.Sequential(layer, bk.Activation("relu")).forward(x),
}
check_ways = pytest.mark.parametrize("check", CHECKS.values(), ids=list(CHECKS))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_input_returns_a_good_input_itself(dtype):
    X = np.arange(6, dtype=dtype).reshape(2, 3)
    assert make_layer(dtype).check_input(X) is X


def test_check_input_turns_a_list_of_floats_into_an_array():
    x = make_layer().check_input([[1.0, 2.0, 3.0]])
    assert isinstance(x, np.ndarray) and x.dtype == np.float64 and x.shape == (1, 3)


@check_ways
def test_wrong_input_width_exact_message(check):
    with pytest.raises(ValueError, match="^" + re.escape("Dense(3->4) got input of shape (5, 2): expected (batch, 3)") + "$"):
        check(make_layer(), np.zeros((5, 2)))


@check_ways
def test_one_dimensional_input_mentions_reshape(check):
    with pytest.raises(ValueError, match=r"Dense\(3->4\) got 1-D input of shape \(3,\).*x\.reshape\(1, -1\)"):
        check(make_layer(), np.zeros(3))


@check_ways
def test_three_dimensional_input(check):
    with pytest.raises(ValueError, match=r"Dense\(3->4\) got 3-D input of shape \(2, 5, 3\): expected a 2-D array"):
        check(make_layer(), np.zeros((2, 5, 3)))


@check_ways
def test_empty_batch(check):
    with pytest.raises(ValueError, match=r"Dense\(3->4\) got an empty batch"):
        check(make_layer(), np.zeros((0, 3)))


@check_ways
def test_integer_input(check):
    with pytest.raises(TypeError, match=r"Dense\(3->4\) got input with dtype int\d+.*astype\(np\.float64\)"):
        check(make_layer(), np.ones((2, 3), dtype=int))


@check_ways
def test_object_input(check):
    with pytest.raises(TypeError, match=r"Dense\(3->4\) got input with dtype object: expected float32 or float64"):
        check(make_layer(), np.array([[1.0, 2.0, None]], dtype=object))


@check_ways
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_names_the_index(bad, check):
    X = np.zeros((4, 3))
    X[2, 1] = bad
    X[3, 0] = bad
    with pytest.raises(ValueError, match=r"Dense\(3->4\) got input with 2 non-finite value\(s\).*the first is .* at index \(2, 1\)"):
        check(make_layer(), X)


@check_ways
def test_float32_input_to_a_float64_layer(check):
    with pytest.raises(TypeError, match=r"Dense\(3->4\) has float64 weights but got float32 input.*X\.astype\(np\.float64\)"):
        check(make_layer(), np.zeros((2, 3), dtype=np.float32))


@check_ways
def test_float64_input_to_a_float32_layer(check):
    with pytest.raises(TypeError, match=r"has float32 weights but got float64 input.*dtype=np\.float64"):
        check(make_layer(np.float32), np.zeros((2, 3)))


def test_a_refused_input_leaves_what_the_model_kept():
    layer = make_layer()
    model = bk.Sequential(layer)
    X = np.ones((2, 3))
    model.forward(X)
    with pytest.raises(ValueError, match="non-finite"):
        model.forward(np.full((5, 3), np.nan))
    assert layer.a_prev is X


@pytest.mark.parametrize("n_in, n_out, label, shown", [
    (2.5, 3, "n_in", "2.5"), ("3", 4, "n_in", "'3'"), (0, 3, "n_in", "0"), (3, -1, "n_out", "-1"),
    (None, 3, "n_in", "None"), (True, 3, "n_in", "True"), (3, 2.0, "n_out", "2.0"),
])
def test_non_integer_or_non_positive_sizes(n_in, n_out, label, shown):
    with pytest.raises(ValueError, match=rf"Dense needs a positive integer {label}, got {re.escape(shown)}"):
        bk.Dense(n_in, n_out, rng=np.random.default_rng(0))


def test_numpy_integer_sizes_are_accepted():
    layer = bk.Dense(np.int64(3), np.int32(2), rng=np.random.default_rng(0))
    assert (layer.n_in, layer.n_out) == (3, 2)
    assert type(layer.n_in) is int


def test_missing_rng():
    with pytest.raises(TypeError, match="rng"):
        bk.Dense(3, 4)


@pytest.mark.parametrize("rng, kind", [(0, "int"), (None, "NoneType"), (np.random.RandomState(0), "RandomState")])
def test_bad_rng(rng, kind):
    with pytest.raises(TypeError, match=rf"Dense\(3->4\) needs rng=np\.random\.default_rng\(seed\), got {kind}"):
        bk.Dense(3, 4, rng=rng)


@pytest.mark.parametrize("init", ["glorot", "He", -0.1, True, None])
def test_bad_init(init):
    with pytest.raises(ValueError, match=rf"unknown init {re.escape(repr(init))}: use 'xavier', 'he' or a non-negative"):
        bk.Dense(3, 4, rng=np.random.default_rng(0), init=init)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.complex128])
def test_bad_dtype(dtype):
    with pytest.raises(TypeError, match=rf"Dense\(3->4\) dtype must be float32 or float64, got {np.dtype(dtype)}"):
        bk.Dense(3, 4, rng=np.random.default_rng(0), dtype=dtype)

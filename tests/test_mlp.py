"""Tests for bpkit.mlp: whole-model gradients, predict, dtypes, parameter order, init, errors.

Hypothesis examples per gradient property:
- test_whole_model_gradients: 25 examples per loss (MSE, BCEWithLogits, SoftmaxCrossEntropy),
  75 in all; each checks every parameter with check_model and dL/dX by central differences;
- test_every_parameter_receives_a_gradient: 25 examples;
- test_predict_does_not_disturb_the_caches: 20 examples.

Kinks: each example draws its own network (1-4 hidden layers, widths 1-6, any activation
per layer) and data. Every ReLU / leaky-ReLU layer records on which side of 0 each of its
inputs lies at every forward pass the check makes; an example in which any finite-difference
step moved a pre-activation across the kink is rejected (hypothesis ``assume``). A kept
example therefore never straddles a kink: this is verified, not assumed from a margin.

Tolerance: every parameter array must agree with central differences (step EPS) to 1e-7
relative, measured as ``floored_error``; it equals the checker's own error unless the
array's whole gradient is tiny next to the loss, where no difference quotient can resolve
1e-7 and an absolute 1e-10 |L| is required instead. ``event`` counts how often
``check_model``'s own verdict is "passed" as well (about 95% of the examples).
"""

import re

import numpy as np
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

import bpkit as bk
from strategies import activation_names, batch_sizes, seeds, widths

EPS = 1e-5  # rounding error of a central difference is about 1e-16 |L| / EPS
FLOOR = 1e-3  # relative to the loss scale: smaller gradients get an absolute test (1e-10 |L|)
KINKED = ("relu", "leaky_relu")
SMOOTH = ("identity", "sigmoid", "tanh", "gelu")


@st.composite
def mlp_cases(draw, names=activation_names):
    """(sizes, per-layer activation names, batch size, seed) for a random MLP."""
    depth = draw(st.integers(1, 4))
    sizes = [draw(widths) for _ in range(depth + 1)] + [draw(st.integers(2, 6))]
    acts = [draw(names) for _ in range(depth)]
    return sizes, acts, draw(batch_sizes), draw(seeds)


def build(case):
    """The model (with non-zero biases), inputs X and the generator for targets."""
    sizes, acts, N, seed = case
    rng = np.random.default_rng(seed)
    model = bk.MLP(sizes, acts, rng=rng)
    for layer in model.dense_layers:
        layer.b.value[...] = 0.5 * rng.normal(size=layer.b.value.shape)
    return model, rng.normal(size=(N, sizes[0])), rng


def record_kink_sides(model):
    """Make every ReLU / leaky-ReLU layer record the pattern z > 0 of each input it sees.

    Returns a dict layer index -> set of patterns; one pattern per layer means no
    evaluation crossed a kink.
    """
    sides = {}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, bk.Activation) and layer.name in KINKED:
            sides[i] = set()
            layer.forward = recording(layer.forward, sides[i])
    return sides


def recording(forward, seen):
    def forward_and_record(z, cache=True):
        seen.add((z > 0).tobytes())
        return forward(z, cache)

    return forward_and_record


def targets(loss_name, N, k, rng):
    if loss_name == "mse":
        return bk.MSE(), rng.normal(size=(N, k))
    if loss_name == "bce":
        return bk.BCEWithLogits(), (rng.random((N, k)) < 0.5).astype(np.float64)
    return bk.SoftmaxCrossEntropy(), rng.integers(0, k, size=N)


def floored_error(analytic, numeric, scale):
    r"""$\max|g - \tilde g| / \max(\max|g|, \max|\tilde g|, \text{FLOOR}\cdot\text{scale})$.

    This is the checker's ``rel_error`` for every gradient larger than FLOOR times the loss
    scale. A parameter array whose whole gradient is smaller (early layers of a deep
    sigmoid network: 1e-6 is common) cannot be resolved to 1e-7 relative by a central
    difference, whose rounding error is about 1e-11 |L|; it must agree to 1e-10 |L| instead.
    """
    top = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)), FLOOR * scale)
    return float(np.max(np.abs(analytic - numeric)) / top)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("loss_name", ["mse", "bce", "softmax"])
@settings(max_examples=25)
@given(case=mlp_cases())
def test_whole_model_gradients(loss_name, case):
    model, X, rng = build(case)
    loss, y = targets(loss_name, X.shape[0], case[0][-1], rng)
    sides = record_kink_sides(model)

    report = bk.check_model(model, loss, X, y, eps=EPS)
    model.zero_grad()
    loss.forward(model.forward(X), y)
    grad_X = model.backward(loss.backward())
    numeric_X = bk.numerical_gradient(lambda: loss.forward(model.predict(X), y), X, EPS)
    assume(all(len(patterns) == 1 for patterns in sides.values()))

    y_hat = model.predict(X)
    scale = max(1.0, abs(loss.forward(y_hat, y)), float(np.max(np.abs(y_hat))))
    for r in report.results:
        assert floored_error(r.analytic, r.numeric, scale) < 1e-7, report
    event(f"check_model passed outright: {report.passed}")
    assert grad_X.shape == X.shape
    assert floored_error(grad_X, numeric_X, scale) < 1e-7


@settings(max_examples=25)
@given(case=mlp_cases(names=st.sampled_from(SMOOTH)))
def test_every_parameter_receives_a_gradient(case):
    model, X, rng = build(case)
    loss, y = targets("mse", X.shape[0], case[0][-1], rng)
    model.zero_grad()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    for p in model.parameters():
        assert np.any(p.grad != 0), p


@pytest.mark.parametrize("activation", sorted(bk.ACTIVATIONS))
def test_every_parameter_receives_a_gradient_in_a_wider_net(activation):
    rng = np.random.default_rng(9)
    model = bk.MLP([3, 8, 8, 8, 2], activation, rng=rng)
    X, y = rng.normal(size=(32, 3)), rng.integers(0, 2, size=32)
    loss = bk.SoftmaxCrossEntropy()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    assert all(np.any(p.grad != 0) for p in model.parameters())


def test_gradients_accumulate_until_zero_grad():
    rng = np.random.default_rng(10)
    model = bk.MLP([3, 5, 2], "tanh", rng=rng)
    X, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    loss = bk.MSE()

    def one_pass():
        loss.forward(model.forward(X), y)
        model.backward(loss.backward())

    one_pass()
    once = [p.grad.copy() for p in model.parameters()]
    one_pass()
    for p, g in zip(model.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-13)
    model.zero_grad()
    assert not any(p.grad.any() for p in model.parameters())


# ----------------------------------------------------------------------------- predict


@settings(max_examples=20)
@given(case=mlp_cases())
def test_predict_does_not_disturb_the_caches(case):
    model, A, rng = build(case)
    B = rng.normal(size=(A.shape[0] + 1, A.shape[1]))
    G = rng.normal(size=(A.shape[0], case[0][-1]))

    np.testing.assert_array_equal(model.predict(A), model.forward(A))
    model.zero_grad()
    grad_A = model.backward(G)
    expected = [p.grad.copy() for p in model.parameters()]

    model.zero_grad()
    model.forward(A)
    model.predict(B)
    np.testing.assert_array_equal(model.backward(G), grad_A)
    for p, g in zip(model.parameters(), expected):
        np.testing.assert_array_equal(p.grad, g)


# ----------------------------------------------------------------------------- float32


@pytest.mark.parametrize("loss_name", ["mse", "bce", "softmax"])
def test_float32_model_runs_end_to_end(loss_name):
    rng = np.random.default_rng(11)
    model = bk.MLP([3, 6, 5, 4], ["relu", "sigmoid"], rng=rng, dtype=np.float32)
    X = rng.normal(size=(7, 3)).astype(np.float32)
    loss, y = targets(loss_name, 7, 4, rng)
    y_hat = model.forward(X)
    value = loss.forward(y_hat, y)
    grad_y_hat = loss.backward()
    grad_X = model.backward(grad_y_hat)
    assert np.isfinite(value)
    assert y_hat.dtype == grad_y_hat.dtype == grad_X.dtype == np.float32
    assert model.predict(X).dtype == np.float32
    for p in model.parameters():
        assert p.value.dtype == p.grad.dtype == np.float32
        assert np.isfinite(p.grad).all() and p.grad.any()


def test_float32_and_float64_models_agree():
    X = np.random.default_rng(12).normal(size=(5, 3))
    m64 = bk.MLP([3, 6, 2], "tanh", rng=np.random.default_rng(13))
    m32 = bk.MLP([3, 6, 2], "tanh", rng=np.random.default_rng(13), dtype=np.float32)
    np.testing.assert_allclose(m32.forward(X.astype(np.float32)), m64.forward(X), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- structure


def test_parameters_order_and_names():
    model = bk.MLP([4, 5, 6, 7, 2], "relu", rng=np.random.default_rng(0))
    params = model.parameters()
    assert [p.name for p in params] == ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    assert [p.value.shape for p in params[::2]] == [(4, 5), (5, 6), (6, 7), (7, 2)]
    expected = [p for layer in model.dense_layers for p in (layer.W, layer.b)]
    assert all(p is q for p, q in zip(params, expected)) and len(params) == len(expected)


def test_layer_sequence():
    model = bk.MLP([2, 10, 8, 1], ["relu", "identity"], output_activation="sigmoid", rng=np.random.default_rng(0))
    assert [repr(layer) for layer in model.layers] == [
        "Dense(2->10)", "Activation('relu')", "Dense(10->8)", "Dense(8->1)", "Activation('sigmoid')"]
    assert len(model.dense_layers) == 3


def test_single_layer_model_is_affine():
    rng = np.random.default_rng(14)
    model = bk.MLP([3, 2], "relu", rng=rng)
    X = rng.normal(size=(4, 3))
    (dense,) = model.layers
    np.testing.assert_allclose(model.forward(X), X @ dense.W.value + dense.b.value)


N_IN, N_HID, N_OUT = 400, 1600, 400
HE, XAVIER_1, XAVIER_2 = np.sqrt(2 / N_IN), np.sqrt(2 / (N_IN + N_HID)), np.sqrt(2 / (N_HID + N_OUT))


@pytest.mark.parametrize("activation", sorted(bk.ACTIVATIONS))
def test_auto_init_is_he_for_relu_like_and_xavier_otherwise(activation):
    model = bk.MLP([N_IN, N_HID, N_OUT], activation, rng=np.random.default_rng(15))
    W1, W2 = (layer.W.value for layer in model.dense_layers)
    # he 0.0707 vs xavier 0.0316 (layer 1); output layer (identity) xavier 0.0316 vs he 0.0354
    expected = HE if activation in ("relu", "leaky_relu", "gelu") else XAVIER_1
    assert W1.std() == pytest.approx(expected, rel=0.02)
    assert W2.std() == pytest.approx(XAVIER_2, rel=0.02)


def test_auto_init_follows_the_output_activation_too():
    model = bk.MLP([N_IN, N_HID, N_OUT], "tanh", output_activation="relu", rng=np.random.default_rng(16))
    assert model.dense_layers[1].W.value.std() == pytest.approx(np.sqrt(2 / N_HID), rel=0.02)


@pytest.mark.parametrize("init, std1, std2", [("xavier", XAVIER_1, XAVIER_2), ("he", HE, np.sqrt(2 / N_HID)),
                                              (0.5, 0.5, 0.5)])
def test_explicit_init_overrides_auto(init, std1, std2):
    model = bk.MLP([N_IN, N_HID, N_OUT], "relu", rng=np.random.default_rng(17), init=init)
    W1, W2 = (layer.W.value for layer in model.dense_layers)
    assert W1.std() == pytest.approx(std1, rel=0.02)
    assert W2.std() == pytest.approx(std2, rel=0.02)


def test_same_seed_same_model():
    def flat(seed):
        return np.concatenate([p.value.ravel() for p in bk.MLP([3, 4, 2], "relu", rng=np.random.default_rng(seed)).parameters()])

    np.testing.assert_array_equal(flat(1), flat(1))
    assert not np.array_equal(flat(1), flat(2))


# ----------------------------------------------------------------------------- clear errors


def test_wrong_number_of_activations():
    with pytest.raises(ValueError, match=re.escape("MLP(3, 4, 2) has 1 hidden layer(s) but got 2 activation(s): ['relu', 'tanh']")):
        bk.MLP([3, 4, 2], ["relu", "tanh"], rng=np.random.default_rng(0))


@pytest.mark.parametrize("sizes", [[3], []])
def test_sizes_too_short(sizes):
    with pytest.raises(ValueError, match=re.escape(f"MLP needs at least an input and an output width, got sizes={sizes}")):
        bk.MLP(sizes, rng=np.random.default_rng(0))


def test_unknown_activation_in_the_list():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        bk.MLP([3, 4, 4, 2], ["relu", "swish"], rng=np.random.default_rng(0))


def test_bad_width_names_the_dense_layer_constructor():
    with pytest.raises(ValueError, match="Dense needs a positive integer n_out, got 0"):
        bk.MLP([3, 0, 2], rng=np.random.default_rng(0))


def test_input_width_wrong_names_the_first_dense_layer():
    model = bk.MLP([3, 4, 2], "relu", rng=np.random.default_rng(0))
    for method in (model.forward, model.predict):
        with pytest.raises(ValueError, match=re.escape("Dense(3->4) got input of shape (5, 2): expected (batch, 3)")):
            method(np.zeros((5, 2)))


def test_only_the_first_layer_checks_its_input_and_a_nan_in_x_is_named_there():
    model = bk.MLP([3, 4, 4, 2], "relu", rng=np.random.default_rng(0))
    assert [layer.check_input for layer in model.layers] == [True] + [False] * 4
    X = np.zeros((5, 3))
    X[4, 2] = np.nan
    for method in (model.forward, model.predict):
        with pytest.raises(ValueError, match=re.escape("Dense(3->4) got input with 1 non-finite value(s) (NaN or inf); the first is nan at index (4, 2)")):
            method(X)


def test_non_finite_weights_are_caught_by_the_loss_on_the_output():
    model = bk.MLP([3, 4, 2], "relu", rng=np.random.default_rng(0))
    model.layers[2].W.value[1, 0] = np.inf
    with np.errstate(invalid="ignore"):
        y_hat = model.forward(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy\(\) got predictions y_hat with \d+ non-finite value"):
        bk.SoftmaxCrossEntropy().forward(y_hat, np.zeros(5, dtype=int))


def test_a_layer_used_on_its_own_checks_its_input_unless_told_not_to():
    dense, act = bk.Dense(3, 2, rng=np.random.default_rng(0)), bk.Activation("relu")
    X = np.full((2, 3), np.nan)
    for layer in (dense, act):
        with pytest.raises(ValueError, match="non-finite"):
            layer.forward(X)
        layer.check_input = False
    with np.errstate(invalid="ignore"):
        assert np.isnan(act.forward(dense.forward(X))).all()


def test_backward_before_forward():
    model = bk.MLP([3, 4, 2], "relu", rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match=re.escape("Dense(4->2).backward called before forward")):
        model.backward(np.zeros((5, 2)))


def test_grad_out_of_the_wrong_shape():
    model = bk.MLP([3, 4, 2], "relu", rng=np.random.default_rng(0))
    model.forward(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=re.escape("Dense(4->2).backward got delta of shape (5, 3): expected (5, 2)")):
        model.backward(np.zeros((5, 3)))


@pytest.mark.parametrize("output, last", [("identity", "Dense(4->2).backward got delta"),
                                          ("sigmoid", "Activation('sigmoid').backward got grad_a")])
def test_only_the_last_layer_checks_the_gradient_that_comes_in(output, last):
    """Backward mirrors forward: grad_out is checked where it enters, the layers before trust the layer after."""
    model = bk.MLP([3, 4, 4, 2], "relu", output_activation=output, rng=np.random.default_rng(0))
    assert [layer.check_grad for layer in model.layers] == [False] * (len(model.layers) - 1) + [True]
    model.forward(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=re.escape(f"{last} of shape (5, 1): expected (5, 2)")):
        model.backward(np.zeros((5, 1)))
    with pytest.raises(TypeError, match=re.escape(f"{last} with dtype int64")):
        model.backward(np.zeros((5, 2), dtype=np.int64))


def test_a_layer_used_on_its_own_checks_its_gradient_unless_told_not_to():
    dense, act = bk.Dense(3, 2, rng=np.random.default_rng(0)), bk.Activation("tanh")
    dense.forward(np.zeros((4, 3)))
    act.forward(np.zeros((4, 2)))
    for layer in (dense, act):
        with pytest.raises(ValueError, match=re.escape("of shape (4, 3): expected (4, 2)")):
            layer.backward(np.ones((4, 3)))
        layer.check_grad = False
    assert act.backward(np.ones((4, 2))).shape == (4, 2)
    assert dense.backward(np.ones((4, 2))).shape == (4, 3)


def test_backward_without_input_grad_fills_the_same_gradients_and_returns_none(rng):
    """Training skips dL/dX (the first layer's largest product); every parameter gradient is unchanged."""
    model = bk.MLP([5, 7, 3], "tanh", rng=rng)
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    loss = bk.SoftmaxCrossEntropy()
    loss.forward(model.forward(X), y)
    grad_X = model.backward(loss.backward())
    with_input = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    assert model.backward(loss.backward(), input_grad=False) is None
    assert grad_X.shape == X.shape
    for p, g in zip(model.parameters(), with_input):
        assert np.array_equal(p.grad, g)

"""Tests for bpkit.model: Sequential (the layer protocol, composed) and MLP (a Sequential built from widths).

Protocol (Sequential): any object with forward, backward, parameters and training composes, whether
or not it subclasses bk.Layer; parameters are listed once, in order; train()/eval() reach every layer;
a nested Sequential is flattened; backward checks its gradient once, by default stops at the first
layer with parameters (asked with input_grad=False) and returns None, and with input_grad=True
returns dL/dX; predict leaves what the last training forward kept; the model checks its input once,
where it enters, and the layers trust what their neighbours hand them.

Hypothesis examples per gradient property:
- test_whole_model_gradients: 25 examples per loss (MSE, BCEWithLogits, SoftmaxCrossEntropy),
  75 in all; each checks every parameter with check_model and dL/dX by central differences;
- test_every_parameter_receives_a_gradient: 25 examples;
- test_predict_does_not_disturb_what_training_forward_kept: 20 examples;
- test_custom_layers_compose_and_pass_both_gradient_checks: 25 examples (input and every parameter);
- test_default_backward_fills_the_same_gradients_and_skips_the_first_input_gradient: 25 examples.

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
from bpkit import optim, train
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
    def forward_and_record(z):
        seen.add((z > 0).tobytes())
        return forward(z)

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


# ----------------------------------------------------------------------------- layers written in the test

class Scale:
    """``y = x * s``, one factor per column: a layer with a parameter that follows the protocol
    without subclassing ``bk.Layer``. It records the ``input_grad`` of every backward call."""

    def __init__(self, s, name="s"):
        self.s = s if isinstance(s, bk.Parameter) else bk.Parameter(np.array(s, dtype=np.float64), name)
        self.training = True
        self.x = None
        self.calls = []

    def __repr__(self):
        return f"Scale({self.s.value.shape[0]})"

    def parameters(self):
        return [self.s]

    def forward(self, x):
        if self.training:
            self.x = x
        return x * self.s.value

    def backward(self, grad, input_grad=True):
        self.calls.append(input_grad)
        self.s.grad += (grad * self.x).sum(axis=0)
        return grad * self.s.value if input_grad else None


class Square:
    """``y = x ** 2`` elementwise: a layer without parameters, and without ``bk.Layer`` either."""

    def __init__(self):
        self.training = True
        self.x = None
        self.calls = 0

    def __repr__(self):
        return "Square()"

    def parameters(self):
        return []

    def forward(self, x):
        if self.training:
            self.x = x
        return x * x

    def backward(self, grad):
        self.calls += 1
        return 2 * self.x * grad


class RecordingDense(bk.Dense):
    """A Dense layer that records, at each backward, the input_grad it was asked for and whether it formed delta @ W.T."""

    calls = ()

    def backward(self, delta, input_grad=True):
        out = super().backward(delta, input_grad)
        self.calls = [*self.calls, (input_grad, out is not None)]
        return out


class RecordingActivation(bk.Activation):
    """An Activation layer that counts its backward calls."""

    calls = 0

    def backward(self, grad_a):
        self.calls += 1
        return super().backward(grad_a)


#: where each layer keeps what its backward needs
KEPT = {bk.Dense: "a_prev", RecordingDense: "a_prev", bk.Activation: "z", Scale: "x", Square: "x"}


def kept(model):
    return [getattr(layer, KEPT[type(layer)]) for layer in model.layers]


def custom_model(rng, n_in, n_hidden, n_out):
    """Dense, Scale, tanh, Square, Dense: bpkit layers and the two custom ones, with non-zero biases."""
    dense1 = bk.Dense(n_in, n_hidden, rng=rng, name=1)
    dense2 = bk.Dense(n_hidden, n_out, rng=rng, name=2)
    for dense in (dense1, dense2):
        dense.b.value[...] = 0.5 * rng.normal(size=dense.b.value.shape)
    return bk.Sequential(dense1, Scale(rng.uniform(0.5, 1.5, size=n_hidden)), bk.Activation("tanh"), Square(), dense2)


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
    grad_X = model.backward(loss.backward(), input_grad=True)
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
def test_predict_does_not_disturb_what_training_forward_kept(case):
    """predict between forward and backward (another batch, another size) changes no gradient and no dL/dX."""
    model, A, rng = build(case)
    B = rng.normal(size=(A.shape[0] + 1, A.shape[1]))
    G = rng.normal(size=(A.shape[0], case[0][-1]))

    np.testing.assert_array_equal(model.predict(A), model.forward(A))
    model.zero_grad()
    grad_A = model.backward(G, input_grad=True)
    expected = [p.grad.copy() for p in model.parameters()]

    model.zero_grad()
    model.forward(A)
    before = kept(model)
    model.predict(B)
    assert model.training and all(layer.training for layer in model.layers)  # the mode is restored
    assert all(a is b for a, b in zip(kept(model), before))  # the very arrays the training forward kept
    np.testing.assert_array_equal(model.backward(G, input_grad=True), grad_A)
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
    grad_X = model.backward(grad_y_hat, input_grad=True)
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


def test_the_model_checks_its_input_once_where_it_enters_and_a_nan_in_x_is_named_there(monkeypatch):
    model = bk.MLP([3, 4, 4, 2], "relu", rng=np.random.default_rng(0))
    calls = {}

    def counted(i, check):
        def check_and_count(x):
            calls[i] += 1
            return check(x)
        return check_and_count

    for i, layer in enumerate(model.layers):
        if isinstance(layer, bk.Dense):
            calls[i] = 0
            monkeypatch.setattr(layer, "check_input", counted(i, layer.check_input))
    model.forward(np.zeros((5, 3)))
    model.predict(np.zeros((2, 3)))
    assert calls == {0: 2, 2: 0, 4: 0}  # the first Dense layer's check, once per pass; the others trust
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


def test_layers_on_their_own_trust_their_input():
    """The check lives in the model (and in Dense.check_input); a layer's forward computes with what it gets."""
    dense, act = bk.Dense(3, 2, rng=np.random.default_rng(0)), bk.Activation("relu")
    X = np.full((2, 3), np.nan)
    with np.errstate(invalid="ignore"):
        assert np.isnan(act.forward(dense.forward(X))).all()
    with pytest.raises(ValueError, match="non-finite"):
        dense.check_input(X)


def expected_after(model):
    """The start of the message of a backward that has no training forward to work from."""
    return "^" + re.escape(f"{model!r}.backward") + ".*forward pass in training mode"


def test_backward_before_forward_names_the_model():
    model = bk.MLP([3, 4, 2], "relu", rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match=expected_after(model)):
        model.backward(np.zeros((5, 2)))
    with pytest.raises(RuntimeError, match=expected_after(model)):
        model.backward(np.zeros((5, 2)), input_grad=True)
    assert not any(p.grad.any() for p in model.parameters())


def test_backward_after_only_an_eval_forward_names_the_model():
    model = bk.Sequential(bk.Dense(3, 4, rng=np.random.default_rng(0)), Scale(np.ones(4)), Square())
    model.eval()
    model.forward(np.ones((5, 3)))
    model.predict(np.ones((5, 3)))
    model.train()
    with pytest.raises(RuntimeError, match=expected_after(model)):
        model.backward(np.ones((5, 4)))
    assert repr(model) == "Sequential(Dense(3->4), Scale(4), Square())"


@pytest.mark.parametrize("output", ["identity", "sigmoid"])
@pytest.mark.parametrize("input_grad", [False, True])
def test_the_model_checks_the_gradient_that_comes_in_once(output, input_grad):
    """Backward mirrors forward: grad is checked where it enters, whatever the last layer is; the layers trust it."""
    model = bk.MLP([3, 4, 4, 2], "relu", output_activation=output, rng=np.random.default_rng(0))
    model.forward(np.zeros((5, 3)))
    name = re.escape(f"{model!r}.backward")
    with pytest.raises(ValueError, match="^" + name + re.escape(" got grad of shape (5, 1): expected (5, 2)")):
        model.backward(np.zeros((5, 1)), input_grad=input_grad)
    with pytest.raises(ValueError, match="^" + name + re.escape(" got grad of shape (5, 3): expected (5, 2)")):
        model.backward(np.zeros((5, 3)), input_grad=input_grad)
    with pytest.raises(TypeError, match="^" + name + re.escape(" got grad with dtype int64")):
        model.backward(np.zeros((5, 2), dtype=np.int64), input_grad=input_grad)
    assert not any(p.grad.any() for p in model.parameters())  # refused before any layer ran
    model.backward(np.ones((5, 2)), input_grad=input_grad)  # the right shape passes
    assert any(p.grad.any() for p in model.parameters())


def test_the_expected_grad_shape_is_that_of_the_last_training_forward():
    model = bk.MLP([3, 4, 2], "tanh", rng=np.random.default_rng(0))
    model.forward(np.zeros((5, 3)))
    model.predict(np.zeros((7, 3)))
    with pytest.raises(ValueError, match=re.escape("got grad of shape (7, 2): expected (5, 2)")):
        model.backward(np.zeros((7, 2)))
    model.forward(np.zeros((7, 3)))
    model.backward(np.zeros((7, 2)))


def test_a_python_list_grad_of_floats_is_accepted():
    model = bk.MLP([2, 1], "tanh", rng=np.random.default_rng(0))
    X = np.array([[1.0, 2.0]])
    model.forward(X)
    np.testing.assert_allclose(model.backward([[0.5]], input_grad=True), 0.5 * model.layers[0].W.value.T)
    np.testing.assert_allclose(model.layers[0].W.grad, X.T * 0.5)


def test_sequential_needs_a_layer():
    with pytest.raises(ValueError, match="Sequential needs at least one layer"):
        bk.Sequential()


# ----------------------------------------------------------------------------- the layer protocol, composed

@settings(max_examples=25)
@given(st.tuples(batch_sizes, widths, widths, widths, seeds))
def test_custom_layers_compose_and_pass_both_gradient_checks(case):
    N, n_in, n_hidden, n_out, seed = case
    rng = np.random.default_rng(seed)
    model = custom_model(rng, n_in, n_hidden, n_out)
    X, y = rng.normal(size=(N, n_in)), rng.normal(size=(N, n_out))

    report = bk.check_layer(model, X, rng)
    assert [r.name for r in report.results] == ["input", "W1", "b1", "s", "W2", "b2"]
    assert report.passed, report
    full = bk.check_model(model, bk.MSE(), X, y)
    assert [r.name for r in full.results] == ["W1", "b1", "s", "W2", "b2"]
    assert full.passed, full


def test_custom_layers_forward_is_the_composition(rng):
    model = custom_model(rng, 3, 4, 2)
    dense1, scale, _, _, dense2 = model.layers
    X = rng.normal(size=(6, 3))
    expected = (np.tanh((X @ dense1.W.value + dense1.b.value) * scale.s.value) ** 2) @ dense2.W.value + dense2.b.value
    np.testing.assert_allclose(model(X), expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(model.predict(X), model.forward(X))


def test_parameters_lists_every_layer_once_in_order_with_shared_ones_once(rng):
    dense1, dense2 = bk.Dense(3, 4, rng=rng, name=1), bk.Dense(4, 2, rng=rng, name=2)
    first = Scale(rng.uniform(0.5, 1.5, size=4), name="s")
    second = Scale(first.s)  # the same Parameter, used by two layers
    model = bk.Sequential(dense1, first, bk.Activation("tanh"), second, Square(), dense2)
    params = model.parameters()
    assert [p.name for p in params] == ["W1", "b1", "s", "W2", "b2"]
    expected = [dense1.W, dense1.b, first.s, dense2.W, dense2.b]
    assert len(params) == len(expected) and all(p is q for p, q in zip(params, expected))
    # the shared factor's gradient is the sum of both uses
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    report = bk.check_model(model, bk.MSE(), X, y)
    assert report.passed, report
    model.zero_grad()
    assert not any(p.grad.any() for p in params)


def test_train_and_eval_reach_every_layer_including_custom_and_nested_ones(rng):
    inner = bk.Sequential(bk.Dense(3, 4, rng=rng), Scale(np.ones(4)))
    model = bk.Sequential(inner, bk.Activation("tanh"), Square(), bk.Dense(4, 2, rng=rng))
    assert model.training and all(layer.training for layer in model.layers)
    assert model.eval() is model
    assert not model.training and not any(layer.training for layer in model.layers)
    assert not any(layer.training for layer in inner.layers)  # the nested model's layers too
    assert model.train() is model
    assert model.training and all(layer.training for layer in model.layers)
    model.train(False)
    assert not model.training and not any(layer.training for layer in model.layers)
    model.train(True)
    assert all(layer.training for layer in model.layers)


def test_eval_then_forward_keeps_nothing_and_train_then_forward_keeps_each_layers_input(rng):
    model = custom_model(rng, 3, 4, 2)
    X = rng.normal(size=(5, 3))
    model.eval()
    out = model.forward(X)
    assert kept(model) == [None] * 5
    model.train()
    np.testing.assert_array_equal(model.forward(X), out)
    inputs = kept(model)
    assert inputs[0] is X  # the checked input itself, not a copy
    a = X
    for layer, k in zip(model.layers, inputs):  # each layer kept the input it was given
        np.testing.assert_array_equal(k, a)
        a = layer.forward(a)


def test_a_nested_sequential_is_flattened_and_computes_the_same(rng):
    def build(nested):
        r = np.random.default_rng(3)
        layers = [bk.Dense(3, 5, rng=r, name=1), bk.Activation("tanh"), Scale(r.uniform(0.5, 1.5, size=5)),
                  bk.Dense(5, 4, rng=r, name=2), Square(), bk.Dense(4, 2, rng=r, name=3)]
        if nested:
            return bk.Sequential(bk.Sequential(*layers[:2]), layers[2], bk.Sequential(bk.Sequential(*layers[3:5]), layers[5])), layers
        return bk.Sequential(*layers), layers

    (nested, layers), (flat, _) = build(True), build(False)
    assert len(nested.layers) == 6 and all(a is b for a, b in zip(nested.layers, layers))
    assert [p.name for p in nested.parameters()] == ["W1", "b1", "s", "W2", "b2", "W3", "b3"]
    X, G = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    np.testing.assert_array_equal(nested.forward(X), flat.forward(X))
    np.testing.assert_array_equal(nested.backward(G, input_grad=True), flat.backward(G, input_grad=True))
    for p, q in zip(nested.parameters(), flat.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)
        assert p.grad.any()


@settings(max_examples=25)
@given(case=mlp_cases())
def test_default_backward_fills_the_same_gradients_and_skips_the_first_input_gradient(case):
    model, X, rng = build(case)
    for layer in model.dense_layers:
        layer.__class__ = RecordingDense
    G = rng.normal(size=(X.shape[0], case[0][-1]))
    model.forward(X)
    grad_X = model.backward(G, input_grad=True)
    full = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    for layer in model.dense_layers:
        layer.calls = []
    assert model.backward(G) is None
    first, *later = model.dense_layers
    assert first.calls == [(False, False)]  # asked for its parameter gradients only: delta @ W1.T never formed
    assert all(layer.calls == [(True, True)] for layer in later)
    assert grad_X.shape == X.shape
    for p, g in zip(model.parameters(), full):
        np.testing.assert_array_equal(p.grad, g)


def test_default_backward_asks_a_custom_first_layer_with_parameters_for_them_only(rng):
    scale = Scale(rng.uniform(0.5, 1.5, size=3))
    model = bk.Sequential(scale, bk.Dense(3, 4, rng=rng, name=1), bk.Activation("tanh"), bk.Dense(4, 2, rng=rng, name=2))
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert bk.check_model(model, bk.MSE(), X, y).passed
    assert scale.calls == [False]
    report = bk.check_layer(model, X, rng)
    assert report.passed, report
    assert scale.calls == [False, True]


@pytest.mark.parametrize("first", ["activation", "square"])
def test_a_model_whose_first_layer_has_no_parameters_trains_and_gradchecks(first, rng):
    head = RecordingActivation("tanh") if first == "activation" else Square()
    model = bk.Sequential(head, bk.Dense(3, 6, rng=rng, name=1), bk.Activation("tanh"), bk.Dense(6, 1, rng=rng, name=2))
    X = rng.normal(size=(64, 3))
    H = X**2 if first == "square" else np.tanh(X)  # what the first layer makes of X
    y = np.sin(H) @ np.array([[1.0], [-2.0], [0.5]])
    loss = bk.MSE()

    loss.forward(model.forward(X[:8]), y[:8])
    assert model.backward(loss.backward()) is None
    assert head.calls == 0  # the first layer is skipped entirely: nothing before it has parameters
    by_default = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    grad_X = model.backward(loss.backward(), input_grad=True)
    assert head.calls == 1 and grad_X.shape == (8, 3)
    for p, g in zip(model.parameters(), by_default):
        np.testing.assert_array_equal(p.grad, g)

    report = bk.check_layer(model, X[:8], rng)
    assert [r.name for r in report.results] == ["input", "W1", "b1", "W2", "b2"]
    assert report.passed, report
    assert bk.check_model(model, loss, X[:8], y[:8]).passed

    before = loss.forward(model.predict(X), y)
    history = train.fit(model, loss, optim.Adam(model.parameters(), lr=0.02), X, y, epochs=40, batch_size=16,
                        rng=rng, progress=False)
    assert history.train_loss[-1] < 0.3 * history.train_loss[0]
    assert loss.forward(model.predict(X), y) < 0.3 * before


def test_predict_in_the_middle_of_a_training_step_leaves_the_gradients_alone(rng):
    model = custom_model(rng, 3, 4, 2)
    A, B = rng.normal(size=(5, 3)), rng.normal(size=(9, 3))
    G = rng.normal(size=(5, 2))
    model.forward(A)
    model.backward(G)
    expected = [p.grad.copy() for p in model.parameters()]

    model.zero_grad()
    model.forward(A)
    before = kept(model)
    model.predict(B)  # another batch, in evaluation mode, between forward and backward
    assert all(k is b for k, b in zip(kept(model), before))
    assert model.training and all(layer.training for layer in model.layers)
    model.backward(G)
    for p, g in zip(model.parameters(), expected):
        np.testing.assert_array_equal(p.grad, g)


def test_predict_in_eval_mode_leaves_the_model_in_eval_mode(rng):
    model = custom_model(rng, 3, 4, 2).eval()
    model.predict(rng.normal(size=(2, 3)))
    assert not model.training and not any(layer.training for layer in model.layers)
    assert kept(model) == [None] * 5


def test_the_same_layer_twice_is_refused_with_the_fix(rng):
    dense = bk.Dense(3, 3, rng=rng)
    with pytest.raises(ValueError, match=r"Sequential got the layer Dense\(3->3\) twice: .*use two layers"):
        bk.Sequential(dense, bk.Activation("tanh"), dense)

"""Tests for bpkit.activations: every entry of ACTIVATIONS, its derivative, and the layer.

Hypothesis examples per gradient property (per activation name, 6 names):
- test_derivative_matches_central_difference: 40 examples per name (240 in all);
- test_layer_backward_and_check_layer: 15 examples per name (90 in all).
The mathematical-property tests run 40 examples each.
"""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import bpkit as bk
from strategies import away_from_kinks, batch_sizes, float_arrays, seeds, widths

NAMES = sorted(bk.ACTIVATIONS)
KINKED = ("relu", "leaky_relu")  # not differentiable at z = 0
MONOTONE = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")  # GELU dips below 0 near z = -0.75
shapes = st.tuples(batch_sizes, widths)

H = 1e-5  # central-difference step: rounding error about 1e-16 |f| / H, truncation about H^2 |f'''|
FLOOR = 1e-2  # relative to the size of f: below it a difference quotient cannot resolve 1e-7


def derivative_error(analytic, numeric, f_scale):
    r"""$\max|g - \tilde g| / \max(\max|g|, \max|\tilde g|, \text{FLOOR}\cdot f_{scale})$.

    This is ``bk.rel_error`` except where the whole derivative is below the floor (e.g.
    tanh' at z = 5 is 2e-4): there the central difference's own rounding error, about
    1e-11 f_scale, is as large as 1e-7 of the derivative, so the test demands an absolute
    agreement of 1e-9 f_scale instead.
    """
    scale = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)), FLOOR * f_scale)
    return float(np.max(np.abs(analytic - numeric)) / scale)


def central_difference(f, z):
    """Elementwise (f(z + H) - f(z - H)) / (the step actually taken)."""
    z_plus, z_minus = z + H, z - H
    return (f(z_plus) - f(z_minus)) / (z_plus - z_minus)


# ----------------------------------------------------------------------------- derivatives


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40)
@given(z=float_arrays(shapes))
def test_derivative_matches_central_difference(name, z):
    f, f_prime = bk.ACTIVATIONS[name]
    if name in KINKED:
        z = away_from_kinks(z)
    numeric = central_difference(f, z)
    f_scale = max(1.0, float(np.max(np.abs(f(z)))))
    assert derivative_error(f_prime(z), numeric, f_scale) < 1e-7


GELU_MIN = -0.7518  # GELU's minimum: gelu'(z) = 0 there


def measurable_inputs(name, shape, rng):
    """Inputs on which check_layer can resolve a relative error of 1e-7.

    Its error is normalised by the largest gradient entry, while the rounding error of
    its difference quotient is about 1e-10 times the layer's output sum; so f' must not
    be near 0 everywhere: |z| <= 2 (no saturation), away from the ReLU kinks and from
    GELU's minimum. (The derivative itself is tested everywhere, above.)
    """
    z = rng.uniform(-2, 2, size=shape)
    if name in KINKED:
        z = away_from_kinks(z)
    if name == "gelu":
        near = np.abs(z - GELU_MIN) < 0.05
        z[near] = GELU_MIN + np.where(z[near] >= GELU_MIN, 0.05, -0.05)
    return z


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15)
@given(shape=shapes, seed=seeds)
def test_layer_backward_and_check_layer(name, shape, seed):
    rng = np.random.default_rng(seed)
    f, f_prime = bk.ACTIVATIONS[name]
    z = measurable_inputs(name, shape, rng)
    layer = bk.Activation(name)
    np.testing.assert_array_equal(layer.forward(z), f(z))
    grad_a = rng.normal(size=shape)
    np.testing.assert_array_equal(layer.backward(grad_a), grad_a * f_prime(z))
    report = bk.check_layer(layer, z, rng)
    assert report.passed, report


def test_leaky_relu_slope_is_used_by_the_layer():
    z = np.array([[-2.0, 3.0]])
    layer = bk.Activation("leaky_relu", alpha=0.2)
    np.testing.assert_allclose(layer.forward(z), [[-0.4, 3.0]])
    np.testing.assert_allclose(layer.backward(np.ones_like(z)), [[0.2, 1.0]])


def test_training_forward_keeps_z_and_eval_forward_keeps_nothing():
    layer = bk.Activation("tanh")
    assert layer.training and layer.z is None
    z1, z2 = np.array([[0.5, -1.0]]), np.array([[2.0, 0.1]])
    layer.forward(z1)
    assert layer.z is z1
    layer.training = False
    np.testing.assert_array_equal(layer.forward(z2), np.tanh(z2))
    assert layer.z is z1  # an evaluation-mode forward leaves what training kept
    np.testing.assert_array_equal(layer.backward(np.ones_like(z1)), 1 - np.tanh(z1) ** 2)
    fresh = bk.Activation("relu")
    fresh.training = False
    fresh.forward(z1)
    assert fresh.z is None


# ----------------------------------------------------------------------------- extreme inputs

EXTREMES = [-1e4, -1e3, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1e3, 1e4]

#: name -> (f(+1e4), f(-1e4), f'(+1e4), f'(-1e4)), the limits written out by hand.
LIMITS = {
    "identity": (1e4, -1e4, 1.0, 1.0),
    "sigmoid": (1.0, 0.0, 0.0, 0.0),
    "tanh": (1.0, -1.0, 0.0, 0.0),
    "relu": (1e4, 0.0, 1.0, 0.0),
    "leaky_relu": (1e4, -100.0, 1.0, 0.01),
    "gelu": (1e4, 0.0, 1.0, 0.0),
}


def test_limits_table_covers_every_activation():
    assert set(LIMITS) == set(bk.ACTIVATIONS)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_are_finite_without_warnings(name, dtype):
    # warnings are errors in the pytest config, so an overflow or invalid value fails here
    rng = np.random.default_rng(1)
    z = np.concatenate([EXTREMES, rng.uniform(-1e4, 1e4, size=50)]).astype(dtype).reshape(-1, 1)
    f, f_prime = bk.ACTIVATIONS[name]
    layer = bk.Activation(name)
    outputs = [f(z), f_prime(z), layer.forward(z), layer.backward(np.ones_like(z))]
    for out in outputs:
        assert np.isfinite(out).all()
    ends = np.array([1e4, -1e4], dtype=dtype)
    f_hi, f_lo, d_hi, d_lo = LIMITS[name]
    np.testing.assert_allclose(f(ends), [f_hi, f_lo], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(f_prime(ends), [d_hi, d_lo], rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(name):
    z = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4) + np.float32(0.01)
    f, f_prime = bk.ACTIVATIONS[name]
    layer = bk.Activation(name)
    assert f(z).dtype == np.float32
    assert f_prime(z).dtype == np.float32
    assert layer.forward(z).dtype == np.float32
    assert layer.backward(np.ones_like(z)).dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_float64_stays_float64(name):
    z = np.linspace(-3, 3, 12).reshape(3, 4) + 0.01
    f, f_prime = bk.ACTIVATIONS[name]
    assert f(z).dtype == np.float64
    assert f_prime(z).dtype == np.float64


# ----------------------------------------------------------------------------- properties

wide = arrays(np.float64, st.integers(1, 20), elements=st.floats(-1e4, 1e4))
moderate = arrays(np.float64, st.integers(1, 20), elements=st.floats(-30, 30))


@settings(max_examples=40)
@given(z=wide)
def test_sigmoid_symmetry(z):
    np.testing.assert_allclose(bk.sigmoid(-z), 1 - bk.sigmoid(z), rtol=0, atol=1e-15)


@settings(max_examples=40)
@given(z=moderate)
def test_sigmoid_derivative_is_s_times_one_minus_s(z):
    s = 1 / (1 + np.exp(-z))  # written independently of bpkit's overflow-safe form
    sigmoid_prime = bk.ACTIVATIONS["sigmoid"][1]
    # atol: for large z, 1 - s carries the rounding error of s (about 1e-16)
    np.testing.assert_allclose(sigmoid_prime(z), s * (1 - s), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sigmoid_prime(z), np.exp(-z) / (1 + np.exp(-z)) ** 2, rtol=1e-12, atol=1e-15)


@settings(max_examples=40)
@given(z=wide)
def test_tanh_is_a_rescaled_sigmoid(z):
    np.testing.assert_allclose(bk.tanh(z), 2 * bk.sigmoid(2 * z) - 1, rtol=0, atol=1e-14)


@settings(max_examples=40)
@given(z=wide)
def test_relu_odd_part_is_identity(z):
    np.testing.assert_array_equal(bk.relu(z) - bk.relu(-z), z)


@settings(max_examples=40)
@given(z=wide)
def test_leaky_relu_with_zero_slope_is_relu(z):
    leaky_prime, relu_prime = bk.ACTIVATIONS["leaky_relu"][1], bk.ACTIVATIONS["relu"][1]
    np.testing.assert_array_equal(bk.leaky_relu(z, alpha=0.0), bk.relu(z))
    np.testing.assert_array_equal(leaky_prime(z, alpha=0.0), relu_prime(z))
    layer = bk.Activation("leaky_relu", alpha=0.0)
    np.testing.assert_array_equal(layer.forward(z), bk.relu(z))


def test_gelu_tanh_form_is_close_to_exact_gelu():
    z = np.linspace(-10, 10, 20001)
    phi = 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in z]))
    gap = np.abs(bk.gelu(z) - z * phi)
    assert gap.max() < 1e-3
    assert gap.max() > 0  # it is the approximation, not z * Phi(z) itself


@pytest.mark.parametrize("name", MONOTONE)
@settings(max_examples=40)
@given(z=wide)
def test_monotone_activations(name, z):
    f, f_prime = bk.ACTIVATIONS[name]
    z = np.sort(z)
    a = f(z)
    # non-decreasing up to one rounding step (a correctly rounded quotient may dip by an ulp)
    assert np.all(a[1:] >= a[:-1] - np.spacing(np.abs(a[:-1])))
    assert np.all(f_prime(z) >= 0)


@pytest.mark.parametrize("name", ["identity", "tanh", "leaky_relu"])
def test_strictly_increasing_where_it_holds(name):
    f = bk.ACTIVATIONS[name][0]
    z = np.linspace(-5, 5, 1001)
    assert np.all(np.diff(f(z)) > 0)


def test_gelu_is_not_monotone():
    f, f_prime = bk.ACTIVATIONS["gelu"]
    assert bk.gelu(np.array([-0.75]))[0] < min(bk.gelu(np.array([-3.0, 0.0])))
    assert f_prime(np.array([-2.0]))[0] < 0 < f_prime(np.array([0.0]))[0]


# ----------------------------------------------------------------------------- clear errors


def test_unknown_name():
    with pytest.raises(ValueError, match=r"unknown activation 'swish'.*'relu'"):
        bk.Activation("swish")


def model_of(name):
    """A model made of one activation layer: where its input and its gradient are checked."""
    return bk.Sequential(bk.Activation(name))


def test_backward_before_forward_is_refused_by_the_model():
    with pytest.raises(RuntimeError, match=re.escape("Sequential(Activation('tanh')).backward") + ".*forward pass in training mode"):
        model_of("tanh").backward(np.ones((2, 3)))


def test_backward_after_an_eval_forward_only_is_refused_by_the_model():
    model = model_of("relu").eval()
    model.forward(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=re.escape("Sequential(Activation('relu')).backward") + ".*forward pass in training mode"):
        model.backward(np.ones((2, 3)))


def test_grad_shape_mismatch_is_refused_by_the_model():
    model = model_of("sigmoid")
    model.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=re.escape("Sequential(Activation('sigmoid')).backward got grad of shape (3, 2): expected (2, 3)")):
        model.backward(np.zeros((3, 2)), input_grad=True)


def test_integer_input_is_refused_by_the_model():
    with pytest.raises(TypeError, match=r"Sequential\(Activation\('relu'\)\) got input with dtype int\d+.*astype\(np\.float64\)"):
        model_of("relu").forward(np.arange(6).reshape(2, 3))


def test_integer_grad_is_refused_by_the_model():
    model = model_of("relu")
    model.forward(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"Sequential\(Activation\('relu'\)\)\.backward got grad with dtype int"):
        model.backward(np.ones((2, 3), dtype=int), input_grad=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_names_the_index(bad):
    z = np.zeros((2, 3))
    z[1, 2] = bad
    with pytest.raises(ValueError, match=r"Sequential\(Activation\('gelu'\)\) got input with 1 non-finite.*at index \(1, 2\)"):
        model_of("gelu").forward(z)


def test_a_model_of_activations_gives_dL_dx_on_request_and_nothing_by_default():
    """No parameters: by default backward has nothing to fill and returns None; input_grad=True runs the layer."""
    model = model_of("tanh")
    z, g = np.array([[0.5, -1.0, 2.0]]), np.array([[1.0, 2.0, -3.0]])
    model.forward(z)
    assert model.parameters() == []
    assert model.backward(g) is None
    np.testing.assert_array_equal(model.backward(g, input_grad=True), g * (1 - np.tanh(z) ** 2))

"""bpkit.check: each self-check accepts the right answer, rejects the usual wrong ones with a
specific hint, and never shows the expected values."""

import numpy as np
import pytest

from bpkit import check
from bpkit.gradcheck import rel_error

N, N_IN, N_OUT = 5, 3, 4


@pytest.fixture
def expected(rng):
    """A (N_IN, N_OUT) answer, e.g. grad_W, with entries whose reprs are long and distinctive."""
    return rng.normal(size=(N_IN, N_OUT))


def leaked(message, values):
    """Entries of ``values`` whose repr (or 4-decimal rounding) appears in ``message``."""
    return [v for v in np.ravel(values) if repr(float(v)) in message or f"{v:.4f}" in message]


def rejected(got, expected, **kwargs):
    """The message of the CheckFailed raised by check.array, after asserting it leaks nothing."""
    with pytest.raises(check.CheckFailed) as info:
        check.array(got, expected, name="grad_W", **kwargs)
    message = str(info.value)
    assert message.startswith("grad_W: ")
    assert leaked(message, expected) == []
    return message


def test_array_accepts_the_right_answer(expected, capsys):
    check.array(expected.copy(), expected, name="grad_W")
    assert capsys.readouterr().out == "✓ grad_W: correct (shape (3, 4))\n"


def test_array_accepts_float32_and_round_off(expected, capsys):
    check.array((expected * (1 + 1e-9)).astype(np.float64), expected, name="grad_W")
    check.array(expected.astype(np.float32), expected, name="grad_W", rtol=1e-5)
    assert capsys.readouterr().out.count("✓") == 2


def test_check_failed_is_an_assertion_error():
    assert issubclass(check.CheckFailed, AssertionError)


def test_transposed_shape(expected):
    message = rejected(expected.T, expected)
    assert "has shape (4, 3), expected (3, 4)" in message
    assert "did you forget .T" in message


def test_transposed_values_of_a_square_answer(rng):
    square = rng.normal(size=(3, 3))
    message = rejected(square.T, square)
    assert "equals the right answer transposed" in message


@pytest.mark.parametrize("axis", [0, 1])
def test_wrong_shape_names_the_axis(expected, axis):
    shape = list(expected.shape)
    shape[axis] += 1
    message = rejected(np.zeros(shape), expected)
    assert f"axis {axis} has length {shape[axis]}, expected {expected.shape[axis]}" in message
    assert f"axis {1 - axis} has length" not in message


def test_batch_size_where_a_feature_count_is_expected(expected):
    message = rejected(np.zeros((N, N)), expected, batch_size=N)
    assert "axis 0 and axis 1 of the answer has length N = 5, the batch size" in message
    assert "a.T @ b" in message


def test_batch_axis_lost(rng):
    delta = rng.normal(size=(N, N_OUT))
    message = rejected(delta[:2], delta, batch_size=N)
    assert "axis 0 should be the batch axis (length N = 5)" in message


@pytest.mark.parametrize("wrong", [lambda e: e[None], lambda e: e[:, :, None]])
def test_extra_axis_of_length_one(expected, wrong):
    message = rejected(wrong(expected), expected)
    assert "has 3 axes" in message and "expected 2" in message
    assert "keepdims=True" in message


def test_missing_axis_of_length_one(rng):
    b = rng.normal(size=(1, N_OUT))
    message = rejected(b.ravel(), b)
    assert "has 1 axis (shape (4,)), expected 2 (shape (1, 4))" in message
    assert "keepdims=True" in message


def test_missing_one_over_n(expected):
    message = rejected(N * expected, expected, batch_size=N)
    assert "N = 5 times too large: check the 1/N factor" in message


def test_one_over_n_twice(expected):
    message = rejected(expected / N, expected, batch_size=N)
    assert "N = 5 times too small" in message


def test_missing_one_half(expected):
    assert "exactly 2 times too large" in rejected(2 * expected, expected)


def test_other_constant_factor(expected):
    assert "times a constant (3)" in rejected(3 * expected, expected)


def test_wrong_sign(expected):
    message = rejected(-expected, expected)
    assert "12 of 12 entries (100%) differ" in message
    assert "wrong sign" in message


def test_nan_is_located(expected):
    got = expected.copy()
    got[1, 2] = np.nan
    got[2, 0] = np.inf
    message = rejected(got, expected)
    assert "contains 1 NaN and 1 inf value(s), the first at index (1, 2)" in message
    assert "log(0)" in message


def test_one_entry_off_by_one_index(expected):
    got = expected.copy()
    got[0, :] = 0.0  # a loop that started at 1 instead of 0
    message = rejected(got, expected)
    assert "4 of 12 entries (33%) differ" in message
    assert "every wrong entry is at index 0 of axis 0" in message
    assert "off by one" in message


def test_shifted_by_one_index(rng):
    y = rng.normal(size=7)
    message = rejected(np.roll(y, -1), y)  # y[i + 1] where y[i] was meant
    assert "shifted by one along axis 0" in message


def test_worst_entry_is_located(expected):
    got = expected.copy()
    got[2, 1] += 10.0
    got[0, 0] += 0.1
    message = rejected(got, expected)
    assert "2 of 12 entries (17%) differ, the worst at index (2, 1)" in message


def test_relative_error_is_reported(expected):
    """The message reports chapter 5's relative error, bk.rel_error: |0.01 e| / |1.01 e| = 9.9e-3."""
    got = expected * 1.01
    assert "relative error 9.9e-03" in rejected(got, expected)
    assert f"relative error {rel_error(got, expected):.1e}" in rejected(got, expected)


@pytest.mark.parametrize("got, words", [
    (None, ["got None", "forget to `return`"]),
    ("[[1, 2]]", ["got a str, expected a numpy array"]),
])
def test_not_an_array(expected, got, words):
    message = rejected(got, expected)
    assert all(w in message for w in words)


def test_list_instead_of_array(expected):
    message = rejected(expected.tolist(), expected)
    assert "got a Python list, expected a numpy array" in message
    assert "np.array" in message


def test_integer_dtype(expected):
    message = rejected(np.round(expected).astype(np.int64), expected)
    assert "integer dtype int64, expected floating point" in message


def test_integer_answer_accepted_when_integers_are_expected(capsys):
    labels = np.array([2, 0, 1])
    check.array(labels.copy(), labels, name="labels")
    assert capsys.readouterr().out.startswith("✓ labels")
    with pytest.raises(check.CheckFailed, match="1 of 3 entries"):
        check.array(np.array([2, 0, 0]), labels, name="labels")


def test_all_zeros_placeholder(expected):
    assert "all zeros" in rejected(np.zeros_like(expected), expected)


# ---- scalar ---------------------------------------------------------------------------------

def test_scalar_accepts(capsys):
    check.scalar(np.float64(0.6931471805599453), np.log(2.0), name="loss")
    check.scalar(np.array(0.6931471805599453), np.log(2.0), name="loss")
    assert capsys.readouterr().out == "✓ loss: correct\n✓ loss: correct\n"


@pytest.mark.parametrize("got, words", [
    (None, ["got None"]),
    ([0.69], ["got a list, expected a number"]),
    (True, ["got a bool"]),
    (np.array([0.69]), ["array of shape (1,), expected a single number", "float(x)"]),
    (np.nan, ["contains 1 NaN"]),
    (-0.6931471805599453, ["wrong value", "wrong sign"]),
    (2 * 0.6931471805599453, ["exactly 2 times too large"]),
    (5 * 0.6931471805599453, ["N = 5 times too large: check the 1/N factor"]),
    (0.7, ["wrong value: relative error 9.8e-03"]),   # 0.0069 / 0.7
])
def test_scalar_rejects(got, words):
    with pytest.raises(check.CheckFailed) as info:
        check.scalar(got, np.log(2.0), name="loss", batch_size=5)
    message = str(info.value)
    assert all(w in message for w in words), message
    assert "0.6931" not in message


# ---- function -------------------------------------------------------------------------------

def reference_grad_W(a_prev, delta):
    return a_prev.T @ delta / a_prev.shape[0]


def inputs(rng):
    return [(rng.normal(size=(N, N_IN)), rng.normal(size=(N, N_OUT))) for _ in range(3)]


def test_function_accepts(rng, capsys):
    check.function(lambda a, d: a.T @ d / len(a), reference_grad_W, inputs(rng), name="grad_W")
    assert capsys.readouterr().out == "✓ grad_W: correct on 3 input(s)\n"


def test_function_name_defaults_to_the_function_name(rng, capsys):
    def my_grad_W(a_prev, delta):
        return reference_grad_W(a_prev, delta)

    check.function(my_grad_W, reference_grad_W, inputs(rng))
    assert capsys.readouterr().out.startswith("✓ my_grad_W: correct")


def test_function_single_argument_inputs(rng, capsys):
    z = rng.normal(size=(2, 3))
    check.function(np.tanh, np.tanh, [z, (z,)], name="tanh")
    assert "correct on 2 input(s)" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda a, d: a.T @ d, ["N = 5 times too large", "1/N"]),
    (lambda a, d: (a.T @ d / len(a)).T, ["looks transposed"]),
    (lambda a, d: a @ a.T, ["the batch size"]),
    (lambda a, d: -a.T @ d / len(a), ["wrong sign"]),
])
def test_function_rejects_with_hint(rng, wrong, words):
    args = inputs(rng)
    with pytest.raises(check.CheckFailed) as info:
        check.function(wrong, reference_grad_W, args, name="grad_W", batch_size=N)
    message = str(info.value)
    assert message.startswith("grad_W on input 0 (shape (5, 3), shape (5, 4)): ")
    assert all(w in message for w in words), message
    assert leaked(message, reference_grad_W(*args[0])) == []


def test_function_reports_the_input_that_fails(rng):
    args = inputs(rng)
    first = args[0][0]

    def right_only_on_the_first(a, d):
        return reference_grad_W(a, d) if a is first else np.zeros((N_IN, N_OUT))

    with pytest.raises(check.CheckFailed, match=r"on input 1 "):
        check.function(right_only_on_the_first, reference_grad_W, args)


def test_function_lets_not_implemented_through(rng):
    def stub(a_prev, delta):
        raise NotImplementedError("Exercise ex-x: write your solution here")

    with pytest.raises(NotImplementedError, match="Exercise ex-x") as info:
        check.function(stub, reference_grad_W, inputs(rng))
    assert not isinstance(info.value, check.CheckFailed)


def test_function_reports_other_exceptions_with_shapes(rng):
    with pytest.raises(check.CheckFailed) as info:
        check.function(lambda a, d: a @ d, reference_grad_W, inputs(rng), name="grad_W")
    message = str(info.value)
    assert "grad_W on input 0 (shape (5, 3), shape (5, 4)): raised ValueError" in message
    assert isinstance(info.value.__cause__, ValueError)


def test_function_catches_in_place_changes(rng):
    def relu_backward_in_place(grad_a, z):
        grad_a[z <= 0] = 0.0
        return grad_a

    z, grad_a = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    with pytest.raises(check.CheckFailed, match=r"changed its argument 0 \(grad_a\) in place"):
        check.function(relu_backward_in_place, lambda g, z: g * (z > 0), [(grad_a, z)], name="relu_backward")


def test_function_compares_scalars(rng, capsys):
    y_hat, y = rng.normal(size=(N, 2)), rng.normal(size=(N, 2))

    def mse(y_hat, y):
        return 0.5 * np.sum((y_hat - y) ** 2) / len(y)

    check.function(mse, mse, [(y_hat, y)])
    with pytest.raises(check.CheckFailed, match="N = 5 times too large"):
        check.function(lambda p, t: 0.5 * np.sum((p - t) ** 2), mse, [(y_hat, y)], batch_size=N)
    assert capsys.readouterr().out == "✓ mse: correct on 1 input(s)\n"


# ---- an exercise's own hints -------------------------------------------------------------------

def test_hints_replace_drop_or_keep_the_generic_hint(expected):
    own = rejected(2 * expected, expected, hints={"twice": "x reaches the output twice: add both paths"})
    assert "add both paths" in own and "missing factor 1/2" not in own
    dropped = rejected(2 * expected, expected, hints={"twice": None})
    assert "hint:" not in dropped
    kept = rejected(2 * expected, expected, hints={"half": "not this one"})
    assert "missing factor 1/2" in kept and "not this one" not in kept


def test_wrong_is_the_hint_when_no_symptom_applies(expected, rng):
    got = expected + rng.normal(size=expected.shape)
    assert "use eq. (3)" in rejected(got, expected, hints={"wrong": "use eq. (3)"})
    assert "use eq. (3)" not in rejected(-expected, expected, hints={"wrong": "use eq. (3)"})


@pytest.mark.parametrize("key, make", [
    ("zeros", lambda e: np.zeros_like(e)),
    ("edge", lambda e: np.vstack([e[:-1], e[-1:] + 1.0])),
    ("nonfinite", lambda e: np.where(e > 0, np.nan, e)),
    ("factor", lambda e: 3 * e),
    ("transposed", lambda e: e.T),
])
def test_every_symptom_can_be_replaced(rng, key, make):
    square = rng.normal(size=(3, 3))
    assert "the exercise's own words" in rejected(make(square), square, hints={key: "the exercise's own words"})


def test_a_factor_hint_for_a_single_number_only_when_the_exercise_gives_one():
    with pytest.raises(check.CheckFailed) as info:
        check.scalar(3.0, 1.0, name="step")
    assert "hint" not in str(info.value)
    with pytest.raises(check.CheckFailed, match="a geometric series"):
        check.scalar(3.0, 1.0, name="step", hints={"factor": "a geometric series"})


def test_shape_hint_is_added(expected):
    assert "one row per example" in rejected(expected[:2], expected, hints={"shape": "one row per example"})


def test_quiet_prints_nothing(expected, capsys):
    check.array(expected.copy(), expected, name="grad_W", quiet=True)
    check.scalar(1.0, 1.0, name="loss", quiet=True)
    assert capsys.readouterr().out == ""


# ---- call, unpack, instance ---------------------------------------------------------------------

def test_call_returns_the_result_and_names_an_exception(rng):
    assert check.call(lambda a, b: a + b, 1, 2) == 3
    with pytest.raises(check.CheckFailed) as info:
        check.call(lambda a: a @ a, rng.normal(size=(2, 3)), name="square", hints={"raised": "mind the shapes"})
    assert str(info.value).startswith("square: raised ValueError") and "hint: mind the shapes" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_call_lets_not_implemented_through():
    def stub():
        raise NotImplementedError("Exercise ex-x: write your solution here")

    with pytest.raises(NotImplementedError):
        check.call(stub)


def test_call_catches_a_change_in_place_also_inside_a_list(rng):
    def scale_all(Ws, c):
        for W in Ws:
            W *= c
        return Ws

    with pytest.raises(check.CheckFailed, match=r"scale_all: changed its argument 0 \(Ws\) in place"):
        check.call(scale_all, [rng.normal(size=(2, 2))], 2.0)
    with pytest.raises(check.CheckFailed, match="restore x"):
        check.call(scale_all, [rng.normal(size=(2, 2))], 2.0, hints={"in_place": "restore x"})


@pytest.mark.parametrize("got, words", [
    (None, ["got None instead of 2 results (dw, db)", "forget to `return`"]),
    (1.5, ["got a float, expected a tuple of 2 results (dw, db)"]),
    ((1.0, 2.0, 3.0), ["got a tuple of 3 results, expected 2"]),
])
def test_unpack_says_what_came_back(got, words):
    with pytest.raises(check.CheckFailed) as info:
        check.unpack(got, 2, "neuron_grads", "(dw, db)")
    assert all(w in str(info.value) for w in words), str(info.value)


def test_unpack_and_instance_pass_the_right_kind_through():
    assert check.unpack([1, 2], 2, "f") == (1, 2)
    assert check.instance(2.5, float, "x") == 2.5
    with pytest.raises(check.CheckFailed, match="got an int, expected a float\n  hint: a Value"):
        check.instance(2, float, "x", hint="a Value")


# ---- function: several results, per-input batch sizes ------------------------------------------

def test_function_compares_each_result_of_a_tuple(rng, capsys):
    def both(a, d):
        return reference_grad_W(a, d), d.sum(axis=0)

    check.function(both, both, inputs(rng), outputs=("dW", "db"))
    assert capsys.readouterr().out.startswith("✓ both: correct on 3")
    with pytest.raises(check.CheckFailed, match=r"on input 0 \(shape \(5, 3\), shape \(5, 4\)\), db: wrong values"):
        check.function(lambda a, d: (reference_grad_W(a, d), d.sum(axis=0) + 1), both, inputs(rng), outputs=("dW", "db"))
    with pytest.raises(check.CheckFailed, match="expected a tuple of 2 results \\(dW, db\\)"):
        check.function(reference_grad_W, both, inputs(rng), outputs=("dW", "db"))


def test_function_batch_size_of_each_input(rng):
    args = [(rng.normal(size=(n, N_IN)), rng.normal(size=(n, N_OUT))) for n in (2, 7)]

    def wrong_on_the_second(a, d):
        return reference_grad_W(a, d) * (len(a) if len(a) == 7 else 1)

    with pytest.raises(check.CheckFailed, match="(?s)on input 1 .* N = 7 times too large"):
        check.function(wrong_on_the_second, reference_grad_W, args, batch_size=lambda a, d: len(a))


def test_function_describes_numbers_and_types():
    with pytest.raises(check.CheckFailed, match=r"on input 0 \(float32\)"):
        check.function(lambda dtype: 1.0, lambda dtype: 2.0, [np.float32])
    with pytest.raises(check.CheckFailed, match=r"on input 0 \(0.5, list of 2\)"):
        check.function(lambda c, xs: 1.0, lambda c, xs: 2.0, [(0.5, [1, 2])])


# ---- names, shapes -------------------------------------------------------------------------------

def test_names_accepts_the_right_collection(capsys):
    check.names(["W1", "b1"], ["W1", "b1"], "frozen")
    check.names({"a", "b"}, {"b", "a"}, "missed", kind=set)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("got, kind, words", [
    ({"W1", "b1"}, list, ["got a set, expected a list of names", "a list, in a given order"]),
    (["W1", "b1"], set, ["got a list, expected a set of names", "set(...)"]),
    (["b1", "W1"], list, ["the right names in the wrong order"]),
    (["W1", "W2"], list, ["holds 'W2', which should not be there, and misses others"]),
    (["W1"], list, ["misses names that should be there"]),
    ([1, 2], list, ["holds an int, expected names (str) only"]),
    (None, list, ["got None", "forget to `return`"]),
])
def test_names_says_what_is_wrong_without_the_missing_names(got, kind, words):
    with pytest.raises(check.CheckFailed) as info:
        check.names(got, ["W1", "b1"] if kind is list else {"W1", "b1"}, "frozen", kind=kind)
    message = str(info.value)
    assert all(w in message for w in words), message
    if got not in (["b1", "W1"],):
        assert "'b1'" not in message


SHAPES = {"X": (128, 784), "W1": (784, 256), "b1": (256,), "params": 203530}


def test_shapes_accepts_tuples_of_numpy_ints(capsys):
    check.shapes({"X": (np.int64(128), 784), "W1": (784, 256), "b1": (256,), "params": np.int64(203530)},
                 SHAPES, "net")
    assert capsys.readouterr().out == "✓ net: all 4 entries correct\n"


@pytest.mark.parametrize("change, words", [
    ({"W1": (256, 784)}, ["entry 'W1': (256, 784) looks transposed", "hint: rows and columns"]),
    ({"X": [128, 784]}, ["entry 'X': is a list; write a shape as a tuple"]),
    ({"b1": (1, 256)}, ["entry 'b1': (1, 256) has 2 axes, expected 1"]),
    ({"params": 203264}, ["entry 'params': 203264 is wrong"]),
    ({"params": 203530.0}, ["entry 'params': is a float, expected an int"]),
    ({"W1": (784, 255), "b1": (255,)}, ["entry 'W1': (784, 255) is wrong (1 more wrong entry)"]),
])
def test_shapes_names_the_first_wrong_entry(change, words):
    with pytest.raises(check.CheckFailed) as info:
        check.shapes({**SHAPES, **change}, SHAPES, "net", hints={"W1": "rows and columns"})
    message = str(info.value)
    assert all(w in message for w in words), message
    assert "(784, 256)" not in message and "203530" not in message


def test_shapes_missing_and_unexpected_entries():
    with pytest.raises(check.CheckFailed, match="has no entry 'b1'"):
        check.shapes({"X": (128, 784), "W1": (784, 256), "params": 203530}, SHAPES, "net")
    with pytest.raises(check.CheckFailed, match="has unexpected entries 'W3'"):
        check.shapes({**SHAPES, "W3": (3, 3)}, SHAPES, "net")


# ---- count_calls, RecordingGenerator --------------------------------------------------------------

def test_count_calls_on_a_class_and_on_a_namespace():
    class Node:
        def backward(self):
            return "done"

    namespace = {"sweep": lambda x: 2 * x}
    with check.count_calls(Node, "backward") as passes, check.count_calls(namespace, "sweep") as sweeps:
        assert [Node().backward() for _ in range(3)] == ["done"] * 3
        assert eval("sweep(4)", namespace) == 8
    assert (passes.count, sweeps.count) == (3, 1)
    assert Node.backward.__name__ == "backward" and namespace["sweep"](1) == 2   # restored


def test_recording_generator_draws_as_the_generator_does():
    draws = check.RecordingGenerator(1)
    v, x = draws.normal(size=(2, 3)), draws.uniform()
    reference = np.random.default_rng(1)
    assert np.array_equal(v, reference.normal(size=(2, 3))) and x == reference.uniform()
    assert len(draws.draws) == 2 and np.array_equal(draws.draws[0], v)

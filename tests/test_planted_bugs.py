"""The planted-bug catalogue: each bug is caught by the full and by the directional check, the
correct version of the same seeded set-up passes both, and the reports point at exactly the
parameters the bug makes wrong."""

import inspect

import numpy as np
import pytest
import torch

import bpkit as bk
from bpkit import planted_bugs as pb

NAMES = sorted(pb.BUGS)
SEEDS = (0, 1, 2)


def run_checks(name, buggy, seed):
    """(full report, directional report) for one version of one set-up, each on a fresh build."""
    bug = pb.BUGS[name]
    full = bk.check_model(*bug.build(np.random.default_rng(seed), buggy))
    direc = bk.directional_check(*bug.build(np.random.default_rng(seed), buggy), rng=np.random.default_rng(seed + 100))
    return full, direc


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NAMES)
def test_bug_fails_both_checks_and_correct_version_passes_both(name, seed):
    full, direc = run_checks(name, buggy=True, seed=seed)
    assert not full.passed, full
    assert not direc.passed, direc
    full_ok, direc_ok = run_checks(name, buggy=False, seed=seed)
    assert full_ok.passed, full_ok
    assert direc_ok.passed, direc_ok


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NAMES)
def test_reports_name_exactly_the_touched_parameters(name, seed):
    touched = set(pb.BUGS[name].touches)
    full, direc = run_checks(name, buggy=True, seed=seed)
    assert {r.name for r in full.results if not r.passed} == touched
    assert full.worst.name in touched
    assert {r.name for r in direc.results if not r.passed} == {"dir:all"} | {f"dir:{t}" for t in touched}
    assert direc.worst.name in {"dir:all"} | {f"dir:{t}" for t in touched}


@pytest.mark.parametrize("name", NAMES)
def test_buggy_and_correct_set_ups_differ_only_in_backward(name):
    """Same weights, same data, same loss value: the bug lives in the backward pass only."""
    bug = pb.BUGS[name]
    m1, l1, X1, y1 = bug.build(np.random.default_rng(5), buggy=True)
    m2, l2, X2, y2 = bug.build(np.random.default_rng(5), buggy=False)
    assert type(m1) is not type(m2) or type(l1) is not type(l2) or any(
        type(a) is not type(b) for a, b in zip(m1.layers, m2.layers))
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert [p.name for p in m1.parameters()] == [p.name for p in m2.parameters()]
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert np.array_equal(p.value, q.value)
    assert l1.forward(m1.predict(X1), y1) == l2.forward(m2.predict(X2), y2)


def test_touches_are_parameter_names_of_the_set_up():
    for name, bug in pb.BUGS.items():
        model = bug.build(np.random.default_rng(0))[0]
        assert set(bug.touches) <= {p.name for p in model.parameters()}, name


def test_each_buggy_class_overrides_exactly_one_method_and_documents_the_fix():
    for name, bug in pb.BUGS.items():
        cls = vars(inspect.getmodule(bug.code))[bug.code.__qualname__.split(".")[0]]
        methods = {k for k, v in vars(cls).items() if inspect.isfunction(v)}
        assert methods == {bug.code.__name__}, name
        doc = inspect.getdoc(bug.code)
        assert doc.startswith("Bug:") and "ight" in doc, name


def test_missing_batch_mean_report_shows_the_factor_n():
    full, _ = run_checks("missing_batch_mean", buggy=True, seed=0)
    for r in full.results:
        assert np.allclose(r.analytic, pb.N * r.numeric, rtol=1e-6, atol=1e-9)


def test_wrong_sign_report_shows_the_negated_gradient():
    full, _ = run_checks("wrong_sign", buggy=True, seed=0)
    for r in full.results:
        assert np.allclose(r.analytic, -r.numeric, rtol=1e-6, atol=1e-9)
        assert abs(r.error - 2.0) < 1e-6


def test_skipped_first_layer_leaves_w1_b1_at_zero():
    full, _ = run_checks("skipped_first_layer", buggy=True, seed=0)
    by_name = {r.name: r for r in full.results}
    assert not by_name["W1"].analytic.any() and not by_name["b1"].analytic.any()
    assert np.abs(by_name["W1"].numeric).max() > 1e-3


def test_shared_layer_mlp_gradients_match_torch(rng):
    """The correct weight-shared network (one layer applied twice) against PyTorch autograd."""
    model = pb.SharedLayerMLP(pb.SHARED_SIZES, "tanh", rng=rng)
    X, y = rng.normal(size=(7, 4)), rng.normal(size=(7, 2))
    loss = bk.MSE()
    model.zero_grad()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    tensors = {p.name: torch.tensor(p.value, requires_grad=True) for p in model.parameters()}
    t = lambda name: tensors[name]  # noqa: E731
    a = torch.tanh(torch.tensor(X) @ t("W1") + t("b1"))
    a = torch.tanh(a @ t("W2") + t("b2"))
    a = torch.tanh(a @ t("W2") + t("b2"))          # the same layer, a second time
    y_hat = a @ t("W4") + t("b4")
    (0.5 * ((y_hat - torch.tensor(y)) ** 2).sum() / len(X)).backward()
    assert [p.name for p in model.parameters()] == ["W1", "b1", "W2", "b2", "W4", "b4"]
    for p in model.parameters():
        assert np.allclose(p.grad, tensors[p.name].grad.numpy(), rtol=1e-10, atol=1e-12), p.name


def test_shared_layer_mlp_rejects_layers_that_cannot_be_shared(rng):
    with pytest.raises(ValueError, match=r"cannot share Dense layers \(1, 2\): their W have shapes \(4, 6\) and \(6, 6\)"):
        pb.SharedLayerMLP(pb.SHARED_SIZES, rng=rng, shared=(1, 2))
    with pytest.raises(ValueError, match=r"has Dense layers 1\.\.4: cannot share \(2, 7\)"):
        pb.SharedLayerMLP(pb.SHARED_SIZES, rng=rng, shared=(2, 7))


def test_swap_layer_refuses_a_layer_of_another_kind(rng):
    model = bk.MLP(pb.SIZES, "tanh", rng=rng)
    with pytest.raises(TypeError, match=r"model.layers\[1\] is Activation\('tanh'\), but DenseTransposedInputGrad can only replace a Dense"):
        pb.swap_layer(model, 1, pb.DenseTransposedInputGrad)
    layer = pb.swap_layer(model, 2, pb.DenseTransposedInputGrad)
    assert model.layers[2] is layer and isinstance(layer, pb.DenseTransposedInputGrad)


@pytest.mark.parametrize("cls", [pb.DenseTransposedInputGrad, pb.DenseBiasSummedOverUnits,
                                 pb.DenseOverwritingGrad])
def test_a_buggy_dense_follows_the_protocol_even_as_the_first_layer(cls):
    rng = np.random.default_rng(0)
    model, X, y = pb._net(rng)
    loss = bk.MSE()
    pb.swap_layer(model, 0, cls)
    loss.forward(model.forward(X), y)
    assert model.backward(loss.backward()) is None
    assert np.any(model.layers[0].W.grad != 0)

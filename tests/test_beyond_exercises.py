"""The self-checks of chapter 8 (layers beyond Dense): every known wrong answer is rejected with a message that
names the mistake, and the right answer passes.

The checks are read from the chapter itself, so that the tests and the chapter cannot drift apart. Each check
cell of the chapter begins with the definition of its check, ``def check_<exercise>(answer): ...``, and ends by
calling it on the learner's answer. ``_chapter_definitions`` parses such cells with ``ast`` and executes only
their top-level ``def`` and ``class`` statements (never the call that follows them) in a namespace that holds
what the chapter's imports provide: ``np``, ``bk``, ``check`` and ``torch``. The chapter's own solutions (the
cells with ``### BEGIN SOLUTION``) are loaded the same way, and must pass. The wrong answers below are what a
learner would write.
"""

import ast
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import bpkit as bk
from bpkit import check

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "08_layers_beyond_dense.ipynb"


def _chapter_definitions(keep):
    """Run the top-level def/class statements of the chapter's code cells for which ``keep(source)`` holds."""
    namespace = {"np": np, "bk": bk, "check": check, "torch": torch}
    for cell in nbformat.read(CHAPTER, as_version=4).cells:
        if cell.cell_type == "code" and keep(cell.source):
            tree = ast.parse(cell.source)
            body = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
            exec(compile(ast.Module(body=body, type_ignores=[]), str(CHAPTER), "exec"), namespace)
    return namespace


CHECKS = _chapter_definitions(lambda source: source.lstrip().startswith("def check_"))
SOLUTIONS = _chapter_definitions(lambda source: "### BEGIN SOLUTION" in source)


def test_every_exercise_has_a_check_function_in_the_chapter():
    names = {"check_dropout_layer", "check_batchnorm_input_grad", "check_embedding_grad", "check_l2_penalty",
             "check_residual_backward"}
    assert names <= set(CHECKS)


def rejected(check_name, answer, message):
    """The chapter's check raises CheckFailed, and its message matches the regular expression ``message``."""
    with pytest.raises(check.CheckFailed, match=message):
        CHECKS[check_name](answer)


# --- ex-beyond-dropout-layer ------------------------------------------------------------------------------

class Dropout(bk.Layer):
    """The right answer; the wrong ones below change one method."""

    def __init__(self, p, rng):
        self.p, self.rng, self.mask = p, rng, None

    def forward(self, x):
        if not self.training:
            return x
        self.mask = (self.rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask


class BackwardWithoutMask(Dropout):
    def backward(self, grad):
        return grad


class BackwardScaledWithoutMask(Dropout):
    def backward(self, grad):
        return grad / (1 - self.p)


class BackwardWithoutScale(Dropout):
    def backward(self, grad):
        return grad * (self.mask != 0)


class BackwardDrawsANewMask(Dropout):
    def backward(self, grad):
        return grad * (self.rng.random(grad.shape) >= self.p) / (1 - self.p)


class ForwardWithoutScale(Dropout):
    def forward(self, x):
        if not self.training:
            return x
        self.mask = self.rng.random(x.shape) >= self.p
        return x * self.mask


class ForwardTimesOneMinusP(Dropout):
    def forward(self, x):
        if not self.training:
            return x
        self.mask = (self.rng.random(x.shape) >= self.p) * (1 - self.p)
        return x * self.mask


class KeepsWithProbabilityP(Dropout):
    def forward(self, x):
        if not self.training:
            return x
        self.mask = (self.rng.random(x.shape) < self.p) / (1 - self.p)
        return x * self.mask


class OneMaskForEver(Dropout):
    def forward(self, x):
        if not self.training:
            return x
        if self.mask is None:
            self.mask = (self.rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self.mask


class ForgetsToReturn(Dropout):
    def backward(self, grad):
        grad * self.mask


@pytest.mark.parametrize("answer", [Dropout, "chapter"])
def test_dropout_check_accepts_the_right_layer(answer, capsys):
    CHECKS["check_dropout_layer"](SOLUTIONS["MyDropout"] if answer == "chapter" else answer)
    assert "MyDropout" in capsys.readouterr().out or answer is Dropout


@pytest.mark.parametrize("answer, message", [
    (BackwardWithoutMask, r"backward ignores the mask"),
    (BackwardScaledWithoutMask, r"backward ignores the mask"),
    (BackwardWithoutScale, r"backward forgets the factor 1 / \(1 - p\)"),
    (BackwardDrawsANewMask, r"reuse the mask of the forward pass.*not draw a new one"),
    (ForwardWithoutScale, r"forward: the kept entries are not scaled: divide them by 1 - p"),
    (ForwardTimesOneMinusP, r"forward: the kept entries are multiplied by 1 - p"),
    (KeepsWithProbabilityP, r"p is the probability of dropping an entry"),
    (OneMaskForEver, r"draw a new mask at every forward pass"),
    (ForgetsToReturn, r"got None instead of an array"),
])
def test_dropout_check_names_each_mistake(answer, message):
    rejected("check_dropout_layer", answer, message)


# --- ex-beyond-bn-nodes -----------------------------------------------------------------------------------

def _bn_parts(grad_y, x, gamma, eps, ddof=0):
    N = len(x)
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).sum(axis=0) / (N - ddof)
    s = np.sqrt(var + eps)
    x_hat = (x - mu) / s
    g = grad_y * gamma
    dL_dvar = -(g * x_hat).sum(axis=0) / (2 * s**2)
    dL_dmu = -g.sum(axis=0) / s
    return N, mu, s, g, dL_dvar, dL_dmu


def bn_right(grad_y, x, gamma, eps=1e-5):
    N, mu, s, g, dL_dvar, dL_dmu = _bn_parts(grad_y, x, gamma, eps)
    return g / s + dL_dmu / N + dL_dvar * 2 * (x - mu) / N


def bn_without_mean_path(grad_y, x, gamma, eps=1e-5):
    N, mu, s, g, dL_dvar, dL_dmu = _bn_parts(grad_y, x, gamma, eps)
    return g / s + dL_dvar * 2 * (x - mu) / N


def bn_without_variance_path(grad_y, x, gamma, eps=1e-5):
    N, mu, s, g, dL_dvar, dL_dmu = _bn_parts(grad_y, x, gamma, eps)
    return g / s + dL_dmu / N


def bn_statistics_as_constants(grad_y, x, gamma, eps=1e-5):
    N, mu, s, g, dL_dvar, dL_dmu = _bn_parts(grad_y, x, gamma, eps)
    return g / s


def bn_mean_path_sign_flipped(grad_y, x, gamma, eps=1e-5):
    N, mu, s, g, dL_dvar, dL_dmu = _bn_parts(grad_y, x, gamma, eps)
    return g / s - dL_dmu / N + dL_dvar * 2 * (x - mu) / N


def bn_without_direct_path(grad_y, x, gamma, eps=1e-5):
    N, mu, s, g, dL_dvar, dL_dmu = _bn_parts(grad_y, x, gamma, eps)
    return dL_dmu / N + dL_dvar * 2 * (x - mu) / N


def bn_without_gamma(grad_y, x, gamma, eps=1e-5):
    return bn_right(grad_y, x, np.ones_like(gamma), eps)


def bn_unbiased_variance(grad_y, x, gamma, eps=1e-5):
    N, mu, s, g, dL_dvar, dL_dmu = _bn_parts(grad_y, x, gamma, eps, ddof=1)
    return g / s + dL_dmu / N + dL_dvar * 2 * (x - mu) / N


def bn_unbiased_variance_throughout(grad_y, x, gamma, eps=1e-5):
    N, mu, s, g, dL_dvar, dL_dmu = _bn_parts(grad_y, x, gamma, eps, ddof=1)
    return g / s + dL_dmu / N + dL_dvar * 2 * (x - mu) / (N - 1)


def bn_mean_over_features(grad_y, x, gamma, eps=1e-5):
    return bn_right(grad_y.T, x.T, gamma[:, None], eps).T       # statistics over the wrong axis


@pytest.mark.parametrize("answer", [bn_right, "chapter"])
def test_batchnorm_check_accepts_the_right_gradient(answer):
    CHECKS["check_batchnorm_input_grad"](SOLUTIONS["batchnorm_input_grad"] if answer == "chapter" else answer)


@pytest.mark.parametrize("answer, message", [
    (bn_without_mean_path, r"the path through the mean mu_j .* is missing"),
    (bn_without_variance_path, r"the path through the variance sigma_j\^2 .* is missing"),
    (bn_statistics_as_constants, r"the path through the mean .* and the path through the variance .* are missing"),
    (bn_mean_path_sign_flipped, r"the path through the mean mu_j .* has the wrong sign"),
    (bn_without_direct_path, r"the direct path .* is missing"),
    (bn_without_gamma, r"gamma is missing"),
    (bn_unbiased_variance, r"the variance divides by N - 1"),
    (bn_unbiased_variance_throughout, r"the variance divides by N - 1"),
    (bn_mean_over_features, r"dL/dx: wrong values"),
])
def test_batchnorm_check_names_each_mistake(answer, message):
    rejected("check_batchnorm_input_grad", answer, message)


# --- ex-beyond-embedding-grad -----------------------------------------------------------------------------

def emb_right(ids, grad_y, num):
    grad_E = np.zeros((num, grad_y.shape[-1]))
    for position in np.ndindex(ids.shape):
        grad_E[ids[position]] += grad_y[position]
    return grad_E


def emb_assigns(ids, grad_y, num):
    grad_E = np.zeros((num, grad_y.shape[-1]))
    grad_E[ids] = grad_y
    return grad_E


def emb_fancy_plus_equals(ids, grad_y, num):
    grad_E = np.zeros((num, grad_y.shape[-1]))
    grad_E[ids] += grad_y
    return grad_E


def emb_first_occurrence_only(ids, grad_y, num):
    grad_E = np.zeros((num, grad_y.shape[-1]))
    flat_ids, flat_grads = ids.ravel(), grad_y.reshape(-1, grad_y.shape[-1])
    for i in np.unique(flat_ids):
        grad_E[i] = flat_grads[np.argmax(flat_ids == i)]
    return grad_E


def emb_mean_of_repeats(ids, grad_y, num):
    grad_E = emb_right(ids, grad_y, num)
    return grad_E / np.maximum(np.bincount(ids.ravel(), minlength=num), 1)[:, None]


def emb_transposed(ids, grad_y, num):
    return emb_right(ids, grad_y, num).T


@pytest.mark.parametrize("answer", [emb_right, "chapter"])
def test_embedding_check_accepts_the_right_gradient(answer):
    CHECKS["check_embedding_grad"](SOLUTIONS["embedding_grad"] if answer == "chapter" else answer)


@pytest.mark.parametrize("answer, message", [
    (emb_assigns, r"wrong only in rows \[2, 4, 5\], the ids that occur more than once.*np\.add\.at"),
    (emb_fancy_plus_equals, r"wrong only in rows \[2, 4, 5\], the ids that occur more than once.*keeps only one"),
    (emb_first_occurrence_only, r"wrong only in rows \[2, 4, 5\], the ids that occur more than once"),
    (emb_mean_of_repeats, r"rows \[2, 4, 5\], the ids that occur more than once, hold the mean.*paths add up"),
    (emb_transposed, r"dL/dE: has shape \(3, 6\), expected \(6, 3\)"),
])
def test_embedding_check_names_each_mistake(answer, message):
    rejected("check_embedding_grad", answer, message)


# --- ex-beyond-l2-weights ---------------------------------------------------------------------------------

def l2_right(params, lam):
    weights = [p for p in params if p.value.ndim >= 2]
    for W in weights:
        W.grad += lam * W.value
    return lam / 2 * sum(float(np.sum(W.value**2)) for W in weights)


def l2_every_parameter(params, lam):
    for p in params:
        p.grad += lam * p.value
    return lam / 2 * sum(float(np.sum(p.value**2)) for p in params)


def l2_gamma_and_beta_too(params, lam):
    penalised = [p for p in params if not p.name.startswith("b")]      # names W1, W2, gamma, beta
    for p in penalised:
        p.grad += lam * p.value
    return lam / 2 * sum(float(np.sum(p.value**2)) for p in penalised)


def l2_value_over_every_parameter(params, lam):
    l2_right(params, lam)
    return lam / 2 * sum(float(np.sum(p.value**2)) for p in params)


def l2_without_the_half(params, lam):
    weights = [p for p in params if p.value.ndim >= 2]
    for W in weights:
        W.grad += 2 * lam * W.value
    return lam * sum(float(np.sum(W.value**2)) for W in weights)


def l2_value_without_the_half(params, lam):
    return 2 * l2_right(params, lam)


def l2_overwrites_the_gradient(params, lam):
    weights = [p for p in params if p.value.ndim >= 2]
    for W in weights:
        W.grad = lam * W.value
    return lam / 2 * sum(float(np.sum(W.value**2)) for W in weights)


def l2_returns_nothing(params, lam):
    l2_right(params, lam)


@pytest.mark.parametrize("answer", [l2_right, "chapter"])
def test_l2_check_accepts_the_right_penalty(answer):
    CHECKS["check_l2_penalty"](SOLUTIONS["l2_penalty"] if answer == "chapter" else answer)


@pytest.mark.parametrize("answer, message", [
    (l2_every_parameter, r"b1\.grad: biases must not be penalised"),
    (l2_gamma_and_beta_too, r"gamma\.grad: the gamma of a normalisation layer must not be penalised"),
    (l2_value_over_every_parameter, r"the penalty's value sums over every parameter: the biases, gamma and beta"),
    (l2_without_the_half, r"W1\.grad: 2 lam W1 was added: the penalty is lam/2"),
    (l2_value_without_the_half, r"the penalty's value is twice too large"),
    (l2_overwrites_the_gradient, r"W1\.grad holds lam \* W1 alone: the data loss's gradient was overwritten"),
    (l2_returns_nothing, r"got None instead of a number"),
])
def test_l2_check_names_each_mistake(answer, message):
    rejected("check_l2_penalty", answer, message)


# --- ex-beyond-residual-backward --------------------------------------------------------------------------

def res_right(F, grad_y):
    return grad_y + F.backward(grad_y, input_grad=True)


def res_without_identity(F, grad_y):
    return F.backward(grad_y, input_grad=True)


def res_without_F(F, grad_y):
    return grad_y


def res_default_backward(F, grad_y):
    return grad_y + F.backward(grad_y)


def res_backward_twice(F, grad_y):
    F.backward(grad_y)
    return grad_y + F.backward(grad_y, input_grad=True)


def res_sign_flipped(F, grad_y):
    return grad_y - F.backward(grad_y, input_grad=True)


@pytest.mark.parametrize("answer", [res_right, "chapter"])
def test_residual_check_accepts_the_right_backward(answer):
    CHECKS["check_residual_backward"](SOLUTIONS["residual_backward"] if answer == "chapter" else answer)


@pytest.mark.parametrize("answer, message", [
    (res_without_identity, r"the identity path is missing"),
    (res_without_F, r"the path through F is missing.*got no gradient"),
    (res_default_backward, r"F\.backward\(grad_y\) returned None.*input_grad=True"),
    (res_backward_twice, r"W1\.grad is twice the right one: F\.backward ran twice"),
    (res_sign_flipped, r"the path through F has the wrong sign"),
])
def test_residual_check_names_each_mistake(answer, message):
    rejected("check_residual_backward", answer, message)


# --- every check lets an exercise that is not done yet stop with its NotImplementedError -------------------

def not_done(*args):
    raise NotImplementedError("Exercise ex-...: write your solution here")


class DropoutNotDone(Dropout):
    def forward(self, x):
        if not self.training:
            return x
        raise NotImplementedError("Exercise ex-beyond-dropout-layer: write your solution here")


@pytest.mark.parametrize("check_name, answer", [
    ("check_dropout_layer", DropoutNotDone), ("check_batchnorm_input_grad", not_done),
    ("check_embedding_grad", not_done), ("check_l2_penalty", not_done), ("check_residual_backward", not_done),
])
def test_checks_let_not_implemented_through(check_name, answer):
    with pytest.raises(NotImplementedError):
        CHECKS[check_name](answer)

"""bpkit.plotting: each helper returns its Axes, draws what it promises, warns about nothing,
leaves matplotlib's global state alone, and colours the plane by the right class."""

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.contour import ContourSet

from bpkit import plotting


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every figure a test opens (more than 20 open figures is a warning, hence an error)."""
    yield
    plt.close("all")


@pytest.fixture
def ax():
    return plt.subplots()[1]


def _separable(rng, n=40):
    """Class 0 on the left (x1 <= -0.5), class 1 on the right (x1 >= 0.5)."""
    x1 = rng.uniform(0.5, 2.0, size=n) * np.where(np.arange(n) % 2 == 0, -1.0, 1.0)
    X = np.column_stack([x1, rng.uniform(-1, 1, size=n)])
    return X, (X[:, :1] > 0).astype(np.float64)


def _logit(P):
    """A perfect classifier for ``_separable``: the logit is 3 x1."""
    return 3.0 * P[:, :1]


def _filled(ax):
    return [c for c in ax.collections if isinstance(c, ContourSet) and c.filled]


def _scatter(ax):
    return [c for c in ax.collections if not isinstance(c, ContourSet)]


# ---------------------------------------------------------------- plot_decision_boundary

def test_decision_boundary_returns_given_axes_and_draws_regions_line_and_points(rng, ax):
    X, y = _separable(rng)
    assert plotting.plot_decision_boundary(_logit, X, y, ax=ax) is ax
    lines = [c for c in ax.collections if isinstance(c, ContourSet) and not c.filled]
    assert len(_filled(ax)) == 1 and len(lines) == 1 and len(_scatter(ax)) == 1
    assert list(lines[0].levels) == [0.0]                       # the boundary is at logit 0
    np.testing.assert_array_equal(_scatter(ax)[0].get_offsets(), X)


def test_decision_boundary_new_axes_when_none(rng):
    X, y = _separable(rng)
    assert isinstance(plotting.plot_decision_boundary(_logit, X, y), Axes)


def test_decision_grid_labels_are_the_true_classes_of_a_separable_problem(rng):
    X, _ = _separable(rng)
    xx, yy, scores, labels = plotting.decision_grid(_logit, X, grid=50, padding=0.5)
    assert xx.shape == yy.shape == labels.shape == (50, 50) and scores.shape == (50, 50, 1)
    np.testing.assert_array_equal(labels, (xx > 0).astype(int))
    assert np.isclose(xx.min(), X[:, 0].min() - 0.5) and np.isclose(yy.max(), X[:, 1].max() + 0.5)


def test_each_point_lies_in_the_filled_region_of_its_own_class_with_its_colour(rng, ax):
    X, y = _separable(rng)
    plotting.plot_decision_boundary(_logit, X, y, ax=ax, grid=80)
    ax.figure.canvas.draw()                                     # colours are mapped at draw time
    regions = _filled(ax)[0]
    paths = regions.get_paths()                                 # one compound path per class
    point_colours = _scatter(ax)[0].get_facecolors()
    assert len(point_colours) == len(X)
    for p, c, colour in zip(X, y[:, 0].astype(int), point_colours):
        assert paths[c].contains_point(p) and not paths[1 - c].contains_point(p)
        assert np.allclose(regions.get_facecolor()[c][:3], colour[:3])
        assert np.allclose(colour[:3], to_rgb(plotting.CLASS_COLORS[c]))


def test_decision_boundary_argmax_for_several_columns(ax):
    centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])

    def scores(P):                                              # nearest centre wins
        return -((P[:, None, :] - centres[None]) ** 2).sum(axis=2)

    X = np.repeat(centres, 5, axis=0) + np.tile([[0.1, 0.1], [-0.1, 0.1], [0.1, -0.1], [0.0, 0.0], [-0.1, -0.1]], (3, 1))
    y = np.repeat(np.arange(3), 5)
    plotting.plot_decision_boundary(scores, X, y, ax=ax, grid=60)
    paths = _filled(ax)[0].get_paths()
    assert len(paths) == 3
    for c, centre in enumerate(centres):
        assert [k for k in range(3) if paths[k].contains_point(centre)] == [c]
    _, _, _, labels = plotting.decision_grid(scores, X, grid=60)
    assert set(np.unique(labels)) == {0, 1, 2}


def test_decision_boundary_accepts_label_formats(rng):
    X, y = _separable(rng)
    for form in (y, y[:, 0].astype(int), np.column_stack([1 - y[:, 0], y[:, 0]])):
        np.testing.assert_array_equal(plotting.class_labels(form, len(X)), y[:, 0].astype(int))


def test_decision_boundary_no_line_when_one_class_everywhere(rng, ax):
    X, y = _separable(rng)
    plotting.plot_decision_boundary(lambda P: np.ones((len(P), 1)), X, y, ax=ax)
    assert len(_filled(ax)) == 1 and len(ax.collections) == 2  # regions and points, no boundary


@pytest.mark.parametrize("bad, match", [
    (np.zeros((5, 3)), r"X of shape \(5, 3\): expected \(N, 2\)"),
    (np.zeros(5), r"X of shape \(5,\)"),
])
def test_decision_boundary_rejects_bad_points(bad, match):
    with pytest.raises(ValueError, match=match):
        plotting.plot_decision_boundary(_logit, bad, np.zeros(len(bad)))


def test_decision_boundary_rejects_bad_labels_predictions_and_axes(rng):
    X, y = _separable(rng)
    with pytest.raises(ValueError, match=r"y of shape \(39, 1\) for 40 points"):
        plotting.plot_decision_boundary(_logit, X, y[:-1])
    with pytest.raises(ValueError, match=r"predict returned shape \(7, 1\)"):
        plotting.plot_decision_boundary(lambda P: np.zeros((7, 1)), X, y)
    with pytest.raises(ValueError, match="NaN or inf"):
        plotting.plot_decision_boundary(lambda P: np.full((len(P), 1), np.nan), X, y)
    with pytest.raises(TypeError, match="ax of type str"):
        plotting.plot_decision_boundary(_logit, X, y, ax="left")


# ---------------------------------------------------------------- plot_history

def test_history_one_line_per_key_with_the_values(ax):
    hist = {"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.0], "test_loss": [3.5, 2.5, 2.0], "train_acc": [0.5, 0.7, 0.9]}
    assert plotting.plot_history(hist, keys=("loss",), ax=ax) is ax  # "loss" selects both *_loss
    assert [line.get_label() for line in ax.lines] == ["train_loss", "test_loss"]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), hist["train_loss"])
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), hist["epoch"])
    assert ax.get_legend() is not None and ax.get_xlabel() == "epoch"


def test_history_exact_key_wins_and_default_x_counts_from_one(ax):
    plotting.plot_history({"loss": [4.0, 1.0], "val_loss": [5.0, 2.0]}, ax=ax, logy=True)
    assert len(ax.lines) == 1 and ax.lines[0].get_label() == "loss"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2])
    assert ax.get_yscale() == "log"


def test_history_accepts_an_object_with_as_dict():
    class Record:
        def as_dict(self):
            return {"train_acc": [0.1, 0.6], "val_acc": [0.2, 0.5]}

    ax = plotting.plot_history(Record(), keys="acc")
    assert isinstance(ax, Axes) and len(ax.lines) == 2


def test_history_rejects_missing_keys_and_non_dicts():
    with pytest.raises(KeyError, match=r"no key 'acc'.*available: \['loss'\]"):
        plotting.plot_history({"loss": [1.0]}, keys=("acc",))
    with pytest.raises(TypeError, match="expected a dict"):
        plotting.plot_history([1.0, 2.0])
    with pytest.raises(ValueError, match="non-empty list"):
        plotting.plot_history({"loss": []})


# ---------------------------------------------------------------- plot_grad_norms

def test_grad_norms_one_log_line_per_configuration(ax):
    norms = {"sigmoid": [1e-6, 1e-4, 1e-2], "relu": [0.5, 0.6, 0.7]}
    assert plotting.plot_grad_norms(norms, ax=ax) is ax
    assert ax.get_yscale() == "log" and [line.get_label() for line in ax.lines] == ["sigmoid", "relu"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), norms["sigmoid"])


@pytest.mark.parametrize("norms, match", [
    ({"he": [1.0, 0.0]}, r"'he' has norm 0.0 at layer 2"),
    ({"he": [1.0, np.inf]}, r"'he' has norm inf at layer 2"),
    ({"he": []}, "one norm per layer"),
    ({}, "non-empty dict"),
])
def test_grad_norms_rejects_what_a_log_axis_cannot_show(norms, match):
    with pytest.raises(ValueError, match=match):
        plotting.plot_grad_norms(norms)


# ---------------------------------------------------------------- global state

def test_no_helper_changes_rcparams_or_leaves_a_figure_behind_it_did_not_create(rng):
    before = dict(mpl.rcParams)
    X, y = _separable(rng)
    fig, axes = plt.subplots(1, 3)
    plotting.plot_decision_boundary(_logit, X, y, ax=axes[0])
    plotting.plot_history({"loss": [1.0, 0.5]}, ax=axes[1])
    plotting.plot_grad_norms({"a": [1.0, 2.0]}, ax=axes[2])
    assert plt.get_fignums() == [fig.number]
    assert dict(mpl.rcParams) == before

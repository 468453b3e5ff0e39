"""Every self-check names the mistake and gives nothing away: a catalogue of known wrong answers.

For each coding exercise of a chapter, ``CATALOGUE`` lists wrong answers, each the source code
that replaces the exercise's solution region (what a learner might write between
``### BEGIN SOLUTION`` and ``### END SOLUTION``), and a phrase its check must say. The test runs
the chapter's cells up to the exercise once, then, for every wrong answer, substitutes it, runs
the exercise's cells, and asserts that a check raises ``bpkit.check.CheckFailed`` (never a bare
``AssertionError`` nor another exception), that its message contains the phrase, and that neither
the message nor what the cells printed shows the right answer: no value the check compared the
answer with, and none of the exercise's ``SECRETS``. The chapter's own solution must pass.

How it runs: the chapter's code cells are executed in this process, in one namespace, as a
kernel would run them (IPython's magics turned into no-ops, figures closed instead of shown,
the chapter's folder as the working directory). Before each exercise the process forks once
per wrong answer: the child runs the exercise with that answer and reports, so every wrong answer
starts from the state the chapter has reached there, and the chapter's cells run once.

To add a chapter, add an entry to ``CATALOGUE``: ``{file stem: {exercise label: [wrong, ...]}}``.
A wrong answer is ``(source, phrase)`` for an exercise with one solution region, or
``(source, phrase, region)`` where ``region`` numbers the exercise's regions from 0 in the
order of its cells; ``source`` may also be a dict ``{region: source}`` to change several.
``source`` is written without indentation: it is indented like the region's BEGIN line.
"""

import ast
import contextlib
import io
import os
import pickle
import select
import signal
import sys
import textwrap
import time
import traceback
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest

from coursetools.exercises import BEGIN, END, scan

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
TIMEOUT = 120  # seconds for one wrong answer's run

from wrong_answers import CATALOGUE, SECRETS  # noqa: E402  (tests/wrong_answers/)


# ---- reading an exercise ------------------------------------------------------------------------

def exercise_cells(nb, label):
    """The indices of the exercise's code cells from its first solution region to its solution-end."""
    s = scan(nb)
    ex = s.exercises[label]
    code = [i for i in range(ex.start, ex.end) if nb.cells[i].cell_type == "code"]
    first = next(i for i in code if BEGIN in nb.cells[i].source)
    return [i for i in code if i >= first]


def substitute(sources, wrong):
    """``sources`` (the exercise's code cells) with the regions named in ``wrong`` replaced."""
    replace = wrong if isinstance(wrong, dict) else {0: wrong}
    out, region = [], 0
    for source in sources:
        lines, inside = [], False
        for line in source.split("\n"):
            if line.strip() == BEGIN:
                inside = region in replace
                if inside:
                    indent = line[: len(line) - len(line.lstrip())]
                    body = textwrap.dedent(replace[region]).strip("\n")
                    lines += [indent + text if text else text for text in body.split("\n")]
                region += 1
            elif line.strip() == END:
                inside = False
            elif not inside:
                lines.append(line)
        out.append("\n".join(lines))
    unknown = set(replace) - set(range(region))
    assert not unknown, f"the exercise has {region} solution region(s), no region {sorted(unknown)}"
    return out


def normalise(entry):
    """``(source or {region: source}, phrase)`` from a catalogue entry."""
    if len(entry) == 3:
        source, phrase, region = entry
        return {region: source}, phrase
    source, phrase = entry
    return source, phrase


# ---- running cells as a kernel would ----------------------------------------------------------------

class _Shell:
    """What ``get_ipython()`` returns: magics (``%matplotlib inline``, a ``%pip`` in a branch never taken) do nothing."""

    def run_line_magic(self, *args, **kwargs):
        return None

    def run_cell_magic(self, *args, **kwargs):
        return None


def _python(source):
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


@contextlib.contextmanager
def chapter_context():
    """The chapter's folder as working directory, figures closed instead of shown, warnings as a kernel shows them."""
    import matplotlib.pyplot as plt

    cwd, show = os.getcwd(), plt.show
    os.chdir(CHAPTERS)
    plt.show = lambda *args, **kwargs: plt.close("all")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        plt.show = show
        plt.close("all")
        os.chdir(cwd)


def run_cell(source, namespace, name):
    exec(compile(_python(source), name, "exec"), namespace)


@contextlib.contextmanager
def recording_compared_values():
    """Keep every value bpkit.check compares an answer with (the values no message may show)."""
    from bpkit import check

    store, compare = [], check._compare

    def recording(got, expected, *args, **kwargs):
        store.append(np.array(expected, dtype=np.float64, copy=True).ravel()[:5000])
        return compare(got, expected, *args, **kwargs)

    check._compare = recording
    try:
        yield store
    finally:
        check._compare = compare


def run_exercise(sources, namespace, label):
    """Run the exercise's cells; return what happened, as plain data."""
    from bpkit.check import CheckFailed

    printed, outcome = io.StringIO(), {"raised": None}
    with recording_compared_values() as compared:
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                for k, source in enumerate(sources):
                    run_cell(source, namespace, f"<{label}, cell {k}>")
        except BaseException as exc:  # noqa: BLE001  (the report says what it was)
            outcome = {"raised": type(exc).__name__, "check_failed": type(exc) is CheckFailed,
                       "message": str(exc), "traceback": traceback.format_exc(limit=-3)}
    outcome["printed"] = printed.getvalue()
    outcome["compared"] = np.concatenate(compared) if compared else np.zeros(0)
    return outcome


def run_in_child(sources, namespace, label):
    """Fork; the child runs the exercise and sends back its outcome. Returns a callable that waits for it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 0
        try:
            os.close(read_end)
            data = pickle.dumps(run_exercise(sources, namespace, label))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)

    def wait():
        chunks, deadline = [], time.monotonic() + TIMEOUT
        with os.fdopen(read_end, "rb") as pipe:
            while True:
                ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    return {"raised": "timeout", "check_failed": False, "message": f"no result in {TIMEOUT} s",
                            "printed": "", "compared": np.zeros(0), "traceback": ""}
                chunk = os.read(pipe.fileno(), 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        if not chunks:
            return {"raised": "crash", "check_failed": False, "message": f"the child ended with status {status}",
                    "printed": "", "compared": np.zeros(0), "traceback": ""}
        return pickle.loads(b"".join(chunks))

    return wait


def run_chapter(stem):
    """``{(label, k): outcome of wrong answer k}``, ``{label: outcome of the chapter's solution}``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # no thread pool for the forked children to inherit half-built
    try:
        return _run_chapter(stem)
    finally:
        torch.set_num_threads(threads)


def _run_chapter(stem):
    nb = nbformat.read(str(CHAPTERS / f"{stem}.ipynb"), as_version=4)
    catalogue = CATALOGUE[stem]
    starts = {exercise_cells(nb, label)[0]: label for label in scan(nb).exercises if label in catalogue}
    namespace = {"__name__": "__main__", "get_ipython": _Shell}
    wrong, right, skip = {}, {}, set()
    with chapter_context():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or i in skip:
                continue
            if i in starts:
                label = starts[i]
                cells = exercise_cells(nb, label)
                sources = [nb.cells[j].source for j in cells]
                waits = []
                for k, entry in enumerate(catalogue[label]):
                    source, _ = normalise(entry)
                    waits.append((k, run_in_child(substitute(sources, source), namespace, label)))
                    if len(waits) >= 2:  # two at a time: one per core
                        k0, w = waits.pop(0)
                        wrong[label, k0] = w()
                for k0, w in waits:
                    wrong[label, k0] = w()
                right[label] = run_exercise(substitute(sources, {}), namespace, label)
                skip.update(cells)
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    run_cell(cell.source, namespace, f"<{stem}, cell {i}>")
            except Exception:
                if "raises-exception" not in cell.metadata.get("tags", []):
                    raise
    return wrong, right


_RESULTS = {}


def results(stem):
    if stem not in _RESULTS:
        _RESULTS[stem] = run_chapter(stem)
    return _RESULTS[stem]


# ---- what a message may not show ---------------------------------------------------------------------

def forms(value):
    """How a compared value could appear in a message: its repr and the usual roundings."""
    if not np.isfinite(value) or value == 0 or float(value).is_integer():
        return []  # integers (counts, shapes) are too common in messages: list them in SECRETS
    return [repr(float(value)), f"{value:.4f}", f"{value:.6f}", f"{value:.3e}", f"{value:.6e}"]


def leaks(text, compared, secrets):
    found = [s for s in secrets if s in text]
    for value in np.unique(compared):
        found += [f for f in forms(value) if f in text]
    return found


# ---- the tests -------------------------------------------------------------------------------------

CASES = [(stem, label, k) for stem, exercises in CATALOGUE.items()
         for label, entries in exercises.items() for k in range(len(entries))]


def _describe(outcome):
    return (f"raised {outcome['raised']}: {outcome.get('message', '')}\n--- printed:\n{outcome['printed'][-2000:]}"
            f"\n--- traceback:\n{outcome.get('traceback', '')}")


@pytest.mark.parametrize("stem, label, k", CASES, ids=[f"{label}-{k}" for _, label, k in CASES])
def test_wrong_answer_is_rejected_with_its_phrase(stem, label, k):
    outcome = results(stem)[0][label, k]
    source, phrase = normalise(CATALOGUE[stem][label][k])
    assert outcome["raised"] is not None, f"the wrong answer passed:\n{source}\n--- printed:\n{outcome['printed']}"
    assert outcome["check_failed"], f"not a CheckFailed:\n{_describe(outcome)}"
    assert phrase in outcome["message"], f"{phrase!r} not in the message:\n{outcome['message']}"
    shown = outcome["message"] + "\n" + outcome["printed"]
    assert leaks(shown, outcome["compared"], SECRETS.get(label, ())) == [], shown


@pytest.mark.parametrize("stem, label", [(stem, label) for stem in CATALOGUE for label in CATALOGUE[stem]])
def test_the_chapters_solution_passes(stem, label):
    outcome = results(stem)[1][label]
    assert outcome["raised"] is None, _describe(outcome)
    assert leaks(outcome["printed"], np.zeros(0), SECRETS.get(label, ())) == [], outcome["printed"]


@pytest.mark.parametrize("stem", list(CATALOGUE))
def test_every_coding_exercise_has_three_wrong_answers(stem):
    nb = nbformat.read(str(CHAPTERS / f"{stem}.ipynb"), as_version=4)
    coding = [ex.label for ex in scan(nb).exercises.values() if ex.regions]
    assert {label: len(CATALOGUE[stem].get(label, ())) for label in coding if
            len(CATALOGUE[stem].get(label, ())) < 3} == {}


class _Asserts(ast.NodeVisitor):
    def __init__(self):
        self.lines = []

    def visit_Assert(self, node):
        self.lines.append(node.lineno)


@pytest.mark.parametrize("stem", list(CATALOGUE))
def test_no_bare_assert_in_an_exercise(stem):
    """A learner whose answer is wrong must see a message, never a bare AssertionError."""
    nb = nbformat.read(str(CHAPTERS / f"{stem}.ipynb"), as_version=4)
    found = {}
    for ex in scan(nb).exercises.values():
        for i in range(ex.cell, (ex.end or ex.cell) + 1):
            cell = nb.cells[i]
            if cell.cell_type == "code":
                visitor = _Asserts()
                visitor.visit(ast.parse(_python(cell.source)))
                if visitor.lines:
                    found[f"{ex.label}, cell {i}"] = visitor.lines
    assert found == {}


def test_substitute_keeps_the_indentation_and_the_other_regions():
    cells = ["def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\nprint(1)",
             "y = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION"]
    assert substitute(cells, {1: "y = 3"}) == ["def f(x):\n    return x\n\nprint(1)", "y = 1\ny = 3"]
    assert substitute(cells, "t = x\nreturn t")[0] == "def f(x):\n    t = x\n    return t\n\nprint(1)"
    with pytest.raises(AssertionError, match="no region"):
        substitute(cells, {2: "pass"})


def test_leaks_finds_a_compared_value_and_a_secret():
    compared = np.array([0.123456789, 2.0])
    assert leaks("relative error 1.2e-01", compared, ()) == []
    assert leaks("expected 0.1235", compared, ()) == ["0.1235"]
    assert leaks("203,530 parameters", compared, ("203,530",)) == ["203,530"]

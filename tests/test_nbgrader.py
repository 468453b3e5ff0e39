"""nbgrader, end to end: chapters become nbgrader source notebooks with no hand edits, and nbgrader itself
(pinned in requirements.txt) generates the assignment and autogrades three submissions."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursetools import grading
from coursetools.exercises import ConventionError

ROOT = Path(__file__).parents[1]
CHAPTER = ROOT / "chapters" / "01_chain_rule.ipynb"
WRONG = ("ex-chain-double-sigmoid", "return a * (1 - a)", "return a * (1 + a)")  # a sign: sigma' = a(1 - a)


def toy(conceptual_too=True):
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [md("# Toy"),
             md("```{exercise} Double\n:label: ex-toy-double\n\nWrite it.\n```"),
             md("```{solution-start} ex-toy-double\n:class: dropdown\n```"), md("Multiply by two."),
             code("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
             code("assert f(2) == 4"), code("assert f(3) == 6"), md("```{solution-end}\n```"),
             code("y = 1  # not part of any exercise")]
    if conceptual_too:
        cells += [md("```{exercise} Why\n:label: ex-toy-why\n\nExplain.\n```"),
                  md("```{solution-start} ex-toy-why\n:class: dropdown\n```"), md("Because."),
                  code("assert True"), md("```{solution-end}\n```")]
        cells[9].metadata["tags"] = ["conceptual"]
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                          "display_name": "Python 3"}})


def test_solution_and_check_cells_get_nbgrader_metadata_and_explanations_go():
    nb, n_solution, n_test = grading.nbgrader_notebook(toy())
    meta = [(c.source.splitlines()[0], c.metadata.get("nbgrader")) for c in nb.cells if c.cell_type == "code"]
    assert (n_solution, n_test) == (1, 2)
    assert meta[0][1] == {"solution": True, "grade": False, "locked": False, "schema_version": 3,
                          "grade_id": "ex-toy-double-solution"}
    assert [m["grade_id"] for _, m in meta[1:3]] == ["ex-toy-double-check", "ex-toy-double-check-2"]
    assert all(m["grade"] and m["locked"] and m["points"] == 1 for _, m in meta[1:3])
    assert meta[3][1] is None and meta[4][1] is None  # outside an exercise; a conceptual exercise's check
    assert "### BEGIN SOLUTION" in next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    text = "\n".join(c.source for c in nb.cells)
    assert "Multiply by two." not in text and "Because." not in text and "{solution" not in text


def test_an_exercise_without_a_check_cell_is_refused():
    nb = toy(conceptual_too=False)
    del nb.cells[5:7]
    with pytest.raises(ConventionError, match=r"ex-toy-double has no check cell after its solution"):
        grading.nbgrader_notebook(nb)


def test_the_command_refuses_to_write_over_a_chapter(tmp_path, capsys):
    course = tmp_path / "course"
    (course / "source" / "01_chain_rule").mkdir(parents=True)
    target = course / "source" / "01_chain_rule" / "01_chain_rule.ipynb"
    shutil.copy(CHAPTER, tmp_path / "01_chain_rule.ipynb")
    os.link(tmp_path / "01_chain_rule.ipynb", target)
    assert grading._main([str(tmp_path / "01_chain_rule.ipynb"), "-o", str(course)]) == 1
    assert "refusing to overwrite it" in capsys.readouterr().err


def nbgrader(course, *args):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_nbgrader_generates_the_assignment_and_autogrades_three_submissions(tmp_path):
    from nbgrader.api import Gradebook

    course, name = tmp_path / "course", CHAPTER.stem
    assert grading._main([str(CHAPTER), "-o", str(course)]) == 0
    source = course / "source" / name / f"{name}.ipynb"
    nbgrader(course, "generate_assignment", name, "--force")
    release = course / "release" / name / f"{name}.ipynb"
    assert "NotImplementedError" in release.read_text() and "BEGIN SOLUTION" not in release.read_text()

    wrong = nbformat.read(source, as_version=4)
    cell = next(c for c in wrong.cells if c.metadata.get("nbgrader", {}).get("grade_id") == WRONG[0] + "-solution")
    assert WRONG[1] in cell.source
    cell.source = cell.source.replace(WRONG[1], WRONG[2])
    submissions = {"alice": nbformat.read(source, as_version=4), "bob": nbformat.read(release, as_version=4),
                   "carol": wrong}
    for student, nb in submissions.items():
        (course / "submitted" / student / name).mkdir(parents=True)
        nbformat.write(nb, course / "submitted" / student / name / f"{name}.ipynb")
    nbgrader(course, "autograde", name, "--force")

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission(name, s) for s in submissions}
        grades = {s: {g.name: g.score for nb in sub.notebooks for g in nb.grades} for s, sub in scores.items()}
        total = scores["alice"].max_score
        assert total >= 4 and scores["alice"].score == total
        assert scores["bob"].score == 0 and all(v == 0 for v in grades["bob"].values())
        lost = {k for k, v in grades["carol"].items() if v == 0}
        assert lost == {WRONG[0] + "-check"} and scores["carol"].score == total - 1
    graded = nbformat.read(course / "autograded" / "bob" / name / f"{name}.ipynb", as_version=4)
    code = [c for c in graded.cells if c.cell_type == "code"]
    assert code[-1].execution_count is not None  # the student version runs to the end

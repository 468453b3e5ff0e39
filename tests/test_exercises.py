"""coursetools.exercises: the student version of a notebook, the convention check, and every chapter."""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursetools import exercises as ex

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def exercise(label, title="A title", body="Do it."):
    return new_markdown_cell(f"```{{exercise}} {title}\n:label: {label}\n\n{body}\n```")


def start(label):
    return new_markdown_cell(f"```{{solution-start}} {label}\n:class: dropdown\n```")


def end():
    return new_markdown_cell("```{solution-end}\n```")


def notebook(*cells):
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells = list(cells)
    return nb


FUNCTION = """def my_relu_prime(z):
    out = np.zeros_like(z)
    for i in range(len(z)):
        ### BEGIN SOLUTION
        out[i] = float(z[i] > 0)
        ### END SOLUTION
    return out"""


@pytest.fixture
def toy():
    """Two exercises: a function with a nested region, and a top-level region; outputs stored."""
    solved = new_code_cell(FUNCTION, execution_count=4)
    solved.outputs = [new_output("stream", name="stdout", text="done\n")]
    check = new_code_cell("check(my_relu_prime)", execution_count=5,
                          outputs=[new_output("execute_result", data={"text/plain": "42"}, execution_count=5)])
    return notebook(
        new_markdown_cell("# Toy"),
        new_code_cell("import numpy as np", execution_count=1),
        exercise("ex-toy-relu", "ReLU derivative"),
        start("ex-toy-relu"),
        new_markdown_cell("The derivative is 1 for z > 0: SECRET EXPLANATION"),
        solved,
        check,
        end(),
        exercise("ex-toy-x", "A number"),
        start("ex-toy-x"),
        new_code_cell("### BEGIN SOLUTION\nx = 2.0\n### END SOLUTION\nassert x == 2.0"),
        new_markdown_cell("Another hidden note"),
        end(),
        new_markdown_cell("## After the exercises"),
    )


def test_student_version_replaces_regions_keeping_indentation(toy):
    student, stubs = ex.student_notebook(toy)
    assert stubs == 2
    sources = [c.source for c in student.cells if c.cell_type == "code"]
    assert sources[1] == FUNCTION.replace(
        "        ### BEGIN SOLUTION\n        out[i] = float(z[i] > 0)\n        ### END SOLUTION",
        '        # YOUR CODE HERE\n        raise NotImplementedError("Exercise ex-toy-relu: write your solution here")')
    assert sources[3] == ('# YOUR CODE HERE\nraise NotImplementedError("Exercise ex-toy-x: write your solution here")'
                          "\nassert x == 2.0")
    assert not any("SOLUTION" in s or "float(z[i] > 0)" in s for s in sources)


def test_student_version_removes_solution_markdown_and_markers(toy):
    student, _ = ex.student_notebook(toy)
    text = [c.source for c in student.cells]
    assert [c.cell_type for c in student.cells] == ["markdown", "code", "markdown", "code", "code",
                                                    "markdown", "code", "markdown"]
    assert not any("solution-start" in t or "solution-end" in t or "SECRET" in t or "hidden" in t
                   for t in text)
    assert text[2] == "**Exercise 1 — ReLU derivative**\n\nDo it." and text[-1] == "## After the exercises"


def test_student_version_clears_outputs_and_validates(toy):
    student, _ = ex.student_notebook(toy)
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    nbformat.validate(student)
    assert student.metadata.kernelspec.name == "python3"
    assert toy.cells[5].outputs and "BEGIN SOLUTION" in toy.cells[5].source  # the original is untouched


def test_student_cli_writes_one_notebook_per_chapter(toy, tmp_path, capsys):
    (tmp_path / "src").mkdir()
    nbformat.write(toy, str(tmp_path / "src" / "01_toy.ipynb"))
    nbformat.write(notebook(new_markdown_cell("# no exercises")), str(tmp_path / "src" / "02_plain.ipynb"))
    (tmp_path / "src" / "data.csv").write_text("1,2\n")
    assert ex._main(["student", str(tmp_path / "src"), "-o", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"wrote {tmp_path / 'out' / '01_toy.ipynb'} (2 solution region(s) replaced)",
                     f"wrote {tmp_path / 'out' / '02_plain.ipynb'} (0 solution region(s) replaced)"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01_toy.ipynb", "02_plain.ipynb"]
    written = nbformat.read(str(tmp_path / "out" / "01_toy.ipynb"), as_version=4)
    nbformat.validate(written)
    assert "NotImplementedError" in written.cells[3].source


def test_student_cli_refuses_to_overwrite_the_chapter(toy, tmp_path, capsys):
    nbformat.write(toy, str(tmp_path / "01_toy.ipynb"))
    assert ex._main(["student", str(tmp_path / "01_toy.ipynb"), "-o", str(tmp_path)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert "BEGIN SOLUTION" in (tmp_path / "01_toy.ipynb").read_text()


def test_list_and_validate_cli(toy, tmp_path, capsys):
    path = tmp_path / "01_toy.ipynb"
    nbformat.write(toy, str(path))
    assert ex._main(["list", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        f"  {'ex-toy-relu':<36} ReLU derivative", f"  {'ex-toy-x':<36} A number"]
    assert ex._main(["validate", str(path), "--min-exercises", "3"]) == 1
    assert capsys.readouterr().err.strip() == f"{path}: has 2 exercise(s), at least 3 expected"


def test_cli_names_a_missing_path_and_an_empty_folder(tmp_path, capsys):
    assert ex._main(["list", str(tmp_path / "nope.ipynb")]) == 1
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'nope.ipynb'}: no such file or folder"
    assert ex._main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"no notebook found in {tmp_path}"


def test_cli_reports_every_broken_notebook_and_goes_on(toy, tmp_path, capsys):
    nbformat.write(notebook(exercise("ex-a")), str(tmp_path / "01_bad.ipynb"))
    nbformat.write(toy, str(tmp_path / "02_good.ipynb"))
    assert ex._main(["student", str(tmp_path), "-o", str(tmp_path / "out")]) == 1
    out = capsys.readouterr()
    assert out.err.strip() == f"{tmp_path / '01_bad.ipynb'}: cell 0: exercise ex-a has no solution block " \
                              "(a markdown cell with only ```{solution-start} ex-a```)"
    assert out.out.startswith(f"wrote {tmp_path / 'out' / '02_good.ipynb'}")
    assert not (tmp_path / "out" / "01_bad.ipynb").exists()


def errors_of(*cells):
    return ex.scan(notebook(*cells)).errors


CODE = new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")


@pytest.mark.parametrize("cells, message", [
    ([exercise("ex-a")], "cell 0: exercise ex-a has no solution block"),
    ([exercise("ex-a"), start("ex-a"), CODE], "cell 1: solution block of ex-a has no solution-end"),
    ([exercise("ex-a"), start("ex-a"), CODE, end(), end()], "cell 4: solution-end without a solution-start"),
    ([exercise("ex-a"), start("ex-b"), CODE, end()], "cell 1: solution-start for unknown exercise 'ex-b'"),
    ([exercise("ex-a"), exercise("ex-a")], "cell 1: exercise label ex-a is used twice (first in cell 0)"),
    ([new_markdown_cell("```{exercise} T\nno label\n```")], "cell 0: exercise 'T' has no :label:"),
    ([exercise("ex-a"), start("ex-a"), new_code_cell("x = 1"), end()],
     "cell 1: solution block of ex-a has no ### BEGIN SOLUTION region"),
    ([exercise("ex-a"), start("ex-a"), exercise("ex-b"), start("ex-b"), CODE, end(), end()],
     "cell 3: solution-start of ex-b inside the solution block of ex-a"),
    ([exercise("ex-a"), new_markdown_cell("Text.\n```{solution-start} ex-a\n```"), CODE, end()],
     "cell 1: the solution-start marker must be alone in its cell"),
    ([exercise("ex-a"), start("ex-a"), CODE, new_markdown_cell("```{solution-end}\n```\nMore text."),
      exercise("ex-b"), start("ex-b"), CODE, end()], "cell 3: the solution-end marker must be alone in its cell"),
    ([exercise("ex-a"), start("ex-a"), exercise("ex-b"), CODE, end()],
     "cell 2: exercise ex-b inside the solution block of ex-a"),
    ([exercise("ex-a"), new_markdown_cell("text with ### BEGIN SOLUTION")],
     "cell 1: solution regions are only supported in code cells"),
    ([exercise("a")], "cell 0: exercise label a should start with 'ex-'"),
    ([CODE], "cell 0: solution region before any exercise"),
    ([new_markdown_cell("```{exercise} The `sin` node\n:label: ex-a\n```")],
     "cell 0: exercise ex-a has a backtick in its title"),
])
def test_validate_catches_broken_blocks(cells, message):
    assert message in "\n".join(errors_of(*cells))


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "### BEGIN SOLUTION without ### END SOLUTION"),
    ("x = 1\n### END SOLUTION", "line 2: ### END SOLUTION without ### BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "line 2: ### BEGIN SOLUTION inside a solution"),
    ("## BEGIN SOLUTION\nx = 1\n## END SOLUTION", "line 1: malformed marker '## BEGIN SOLUTION'"),
])
def test_validate_catches_unbalanced_markers(source, message):
    errors = errors_of(exercise("ex-a"), start("ex-a"), new_code_cell(source), end())
    assert any(e.startswith("cell 2: ") and message in e for e in errors), errors


def test_student_refuses_a_broken_notebook_naming_it():
    with pytest.raises(ex.ConventionError, match=r"^ch\.ipynb: cell 0: exercise ex-a has no solution block"):
        ex.student_notebook(notebook(exercise("ex-a")), "ch.ipynb")


def test_conceptual_exercise_needs_no_region():
    cell = exercise("ex-a")
    cell.metadata["tags"] = ["conceptual"]
    nb = notebook(cell, start("ex-a"), new_markdown_cell("Because."), new_code_cell("assert 1 + 1 == 2"), end())
    assert ex.scan(nb).errors == []
    student, stubs = ex.student_notebook(nb)
    assert stubs == 0 and [c.source for c in student.cells][1:] == ["assert 1 + 1 == 2"]


def test_one_cell_solution_is_hidden_from_students():
    nb = notebook(exercise("ex-a", body="Explain why."), new_markdown_cell("```{solution} ex-a\nBecause.\n```"),
                  new_markdown_cell("Next."))
    assert ex.scan(nb).errors == []
    student, _ = ex.student_notebook(nb)
    assert [c.source for c in student.cells][1:] == ["Next."]


def test_a_well_formed_notebook_has_no_errors(toy):
    s = ex.scan(toy)
    assert s.errors == []
    assert [(e.label, e.title, e.cell, e.start, e.end, e.regions) for e in s.exercises.values()] == [
        ("ex-toy-relu", "ReLU derivative", 2, 3, 7, 1), ("ex-toy-x", "A number", 8, 9, 12, 1)]


# ---- every chapter ------------------------------------------------------------------------

def test_there_are_chapters():
    assert CHAPTERS, "no chapters/*.ipynb found"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_follows_the_exercise_convention(path):
    s = ex.check_convention(ex.read(path), path.relative_to(ROOT), min_exercises=3)
    assert all(e.regions or e.conceptual for e in s.exercises.values())


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_solution_version_has_no_stub(path):
    stub = ex.STUB.split("{")[0]  # 'raise NotImplementedError("Exercise '
    for i, cell in enumerate(ex.read(path).cells):
        assert stub not in cell.source and "YOUR CODE HERE" not in cell.source, \
            f"cell {i} of {path.name} still holds a stub"


@pytest.fixture(scope="module")
def executed_students(tmp_path_factory):
    """Each chapter's student version, executed once (errors recorded in the outputs)."""
    from nbclient import NotebookClient

    done = {}

    def run(path):
        if path not in done:
            student, _ = ex.student_notebook(ex.read(path), path)
            NotebookClient(student, kernel_name="python3", timeout=120, allow_errors=True,
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            done[path] = student
        return done[path]

    return run


def errors_in(cell):
    """The errors a cell raised, unless it is meant to raise (tag ``raises-exception``)."""
    if "raises-exception" in cell.get("metadata", {}).get("tags", []):
        return []
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_version_fails_only_with_not_implemented(path, executed_students):
    student = executed_students(path)
    for i, cell in enumerate(student.cells):
        for err in errors_in(cell):
            assert err.ename == "NotImplementedError", f"student {path.name}, cell {i}: {err.ename}: {err.evalue}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_stops_at_its_stub(path, executed_students):
    student = executed_students(path)
    labels = [e.label for e in ex.scan(ex.read(path)).exercises.values() if e.regions]
    code = [i for i, c in enumerate(student.cells) if c.cell_type == "code"]
    for label in labels:
        stub = f'NotImplementedError("Exercise {label}:'
        first = next(i for i in code if stub in student.cells[i].source)
        after = [i for i in code if i > first][:1]
        raised = [e for i in [first, *after] for e in errors_in(student.cells[i])]
        assert raised and raised[0].ename == "NotImplementedError", f"{label}: no NotImplementedError"
        assert re.search(rf"Exercise {re.escape(label)}\b", raised[0].evalue), raised[0].evalue


def _source_bytes(path):
    return path.read_bytes()


def test_student_cli_never_writes_through_a_hard_link_to_a_chapter(toy, tmp_path, capsys):
    """The layout `cp -al` leaves: the output folder holds a hard link to the chapter itself."""
    src, out = tmp_path / "chapters", tmp_path / "copy"
    src.mkdir(), out.mkdir()
    nbformat.write(toy, str(src / "01_toy.ipynb"))
    os.link(src / "01_toy.ipynb", out / "01_toy.ipynb")
    before = _source_bytes(src / "01_toy.ipynb")
    assert ex._main(["student", str(src / "01_toy.ipynb"), "-o", str(out)]) == 1
    assert "the same file as an input" in capsys.readouterr().err
    assert _source_bytes(src / "01_toy.ipynb") == before


def test_student_cli_refuses_to_replace_any_notebook_with_solutions(toy, tmp_path, capsys):
    """`student drafts/ -o chapters`: the chapter in the output folder keeps its solutions."""
    drafts, chapters = tmp_path / "drafts", tmp_path / "chapters"
    drafts.mkdir(), chapters.mkdir()
    nbformat.write(toy, str(drafts / "01_toy.ipynb"))
    nbformat.write(toy, str(chapters / "01_toy.ipynb"))
    before = _source_bytes(chapters / "01_toy.ipynb")
    assert ex._main(["student", str(drafts), "-o", str(chapters)]) == 1
    assert "holds solution markers, so it is a source notebook" in capsys.readouterr().err
    assert _source_bytes(chapters / "01_toy.ipynb") == before


def test_student_cli_refuses_two_inputs_of_the_same_name_before_writing_anything(toy, tmp_path, capsys):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    nbformat.write(toy, str(tmp_path / "a" / "01_toy.ipynb"))
    nbformat.write(toy, str(tmp_path / "b" / "01_toy.ipynb"))
    out = tmp_path / "out"
    assert ex._main(["student", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out)]) == 1
    assert "two notebooks named 01_toy.ipynb" in capsys.readouterr().err
    assert not out.exists()


def test_student_cli_reports_an_unreadable_notebook_and_still_writes_the_others(toy, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(toy, str(src / "01_toy.ipynb"))
    (src / "02_broken.ipynb").write_text("{ this is not json")
    nbformat.write(toy, str(src / "03_toy.ipynb"))
    assert ex._main(["student", str(src), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "02_broken.ipynb: cannot be read as a notebook" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01_toy.ipynb", "03_toy.ipynb"]


def test_student_cli_refuses_an_output_that_is_a_file(toy, tmp_path, capsys):
    nbformat.write(toy, str(tmp_path / "01_toy.ipynb"))
    (tmp_path / "out.txt").write_text("keep me")
    assert ex._main(["student", str(tmp_path / "01_toy.ipynb"), "-o", str(tmp_path / "out.txt")]) == 1
    assert "-o must name a folder" in capsys.readouterr().err
    assert (tmp_path / "out.txt").read_text() == "keep me"


def test_student_cli_writes_atomically_and_replaces_an_old_student_version(toy, tmp_path):
    out = tmp_path / "out"
    nbformat.write(toy, str(tmp_path / "01_toy.ipynb"))
    assert ex._main(["student", str(tmp_path / "01_toy.ipynb"), "-o", str(out)]) == 0
    assert ex._main(["student", str(tmp_path / "01_toy.ipynb"), "-o", str(out)]) == 0  # a student version is replaced
    assert [p.name for p in out.iterdir()] == ["01_toy.ipynb"]  # no temporary file left behind
    assert "NotImplementedError" in (out / "01_toy.ipynb").read_text()

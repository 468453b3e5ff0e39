"""nbgrader source notebooks from the chapters, with no hand edits.

For each chapter, the nbgrader source notebook is the student version (:mod:`coursetools.exercises`)
with the solution regions kept, nbgrader's markers and all, and with nbgrader's cell metadata:

- each code cell of an exercise that holds a solution region becomes a **solution cell**
  (``grade_id`` ``<label>-solution``, ``-solution-2``, ...): nbgrader replaces each region by its stub;
- each code cell after it, inside the exercise's solution block, is one of the exercise's **check
  cells** and becomes a locked, **autograded test cell** worth ``points`` (default 1) points
  (``<label>-check``, ``-check-2``, ...): it passes when it raises nothing;
- the markdown that explains a solution is dropped, and the markdown is plain (as for students).

A conceptual exercise (nothing to write) has no solution cell and is not graded. Each chapter is an
assignment of its own, named after the file::

    python -m coursetools.grading chapters/ -o nbgrader/     # writes nbgrader/source/<chapter>/<chapter>.ipynb
    cd nbgrader && nbgrader generate_assignment 01_chain_rule && nbgrader autograde 01_chain_rule

The command also writes ``nbgrader/nbgrader_config.py`` if there is none (the course folder is
``nbgrader/``). It refuses a target that is one of the chapters, and writes each notebook atomically.
"""

import argparse
import copy
import sys
from pathlib import Path

from coursetools.book import Book, BookError
from coursetools.exercises import (ConventionError, _write_atomically, check_convention, notebooks, read,
                                   regions, student_notebook)

SCHEMA = 3
CONFIG = '''c = get_config()  # noqa: F821  (nbgrader's configuration of this course folder)
c.CourseDirectory.root = __file__.rsplit("/", 1)[0]
c.CourseDirectory.course_id = "backprop-derived-and-built"
'''


def graded_cells(nb, path="notebook"):
    """``{cell index: nbgrader metadata}`` for the solution and check cells of every exercise with code to write."""
    s = check_convention(nb, path)
    marks = {}
    for ex in s.exercises.values():
        if ex.conceptual or not ex.regions:
            continue
        cells = [i for i in range(ex.start, ex.end) if nb.cells[i].cell_type == "code" and s.owner.get(i) == ex.label]
        solutions = [i for i in cells if regions(nb.cells[i].source)[0]]
        checks = [i for i in cells if i > solutions[-1]]
        if not checks:
            raise ConventionError(f"{path}: exercise {ex.label} has no check cell after its solution: nothing to grade")
        for k, i in enumerate(solutions, start=1):
            marks[i] = {"solution": True, "grade": False, "locked": False, "schema_version": SCHEMA,
                        "grade_id": ex.label + "-solution" + (f"-{k}" if k > 1 else "")}
        for k, i in enumerate(checks, start=1):
            marks[i] = {"solution": False, "grade": True, "locked": True, "points": 1, "schema_version": SCHEMA,
                        "grade_id": ex.label + "-check" + (f"-{k}" if k > 1 else "")}
    return marks


def nbgrader_notebook(nb, path="notebook", book=None):
    """Return ``(the nbgrader source version of nb, number of solution cells, number of test cells)``."""
    marked = copy.deepcopy(nb)
    marks = graded_cells(nb, path)
    for i, meta in marks.items():
        marked.cells[i].metadata["nbgrader"] = meta
    out, _ = student_notebook(marked, path, book, keep_regions=True)
    n_solution = sum(1 for m in marks.values() if m["solution"])
    return out, n_solution, len(marks) - n_solution


def _targets(paths, output):
    """``{path: target}``; refuse a target that is one of the inputs, before anything is written."""
    if output.exists() and not output.is_dir():
        raise ConventionError(f"{output}: -o must name a folder (the nbgrader course folder), not a file")
    targets = {}
    for path in paths:
        target = output / "source" / path.stem / (path.stem + ".ipynb")
        if target.exists() and any(target.samefile(p) for p in paths):
            raise ConventionError(f"{target}: is a chapter (the same file as an input); refusing to overwrite it")
        targets[path] = target
    return targets


def _main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m coursetools.grading", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="chapters, or folders of chapters")
    parser.add_argument("-o", "--output", required=True, type=Path, help="the nbgrader course folder")
    args = parser.parse_args(argv)
    try:
        paths = [p for p in notebooks(args.paths) if p.suffix == ".ipynb"]
        book = Book.find(paths[0])
        targets = _targets(paths, args.output)
    except (ConventionError, BookError) as exc:
        print(exc, file=sys.stderr)
        return 1
    status = 0
    for path, target in targets.items():
        try:
            nb, n_solution, n_test = nbgrader_notebook(read(path), path, book)
        except ConventionError as exc:
            print(exc, file=sys.stderr)
            status = 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(nb, target)
        print(f"wrote {target} ({n_solution} solution cell(s), {n_test} autograded test cell(s))")
    config = args.output / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG, encoding="utf-8")
        print(f"wrote {config}")
    return status


if __name__ == "__main__":
    sys.exit(_main())

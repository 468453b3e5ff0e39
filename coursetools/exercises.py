"""Student notebooks from the chapters, and the exercise convention they rely on.

Every exercise in a chapter is written as, in order: a markdown cell with a MyST
```` ```{exercise} Title ```` directive and a ``:label: ex-...``; a markdown cell that holds
only ```` ```{solution-start} ex-... ````; optional markdown cells explaining the answer;
code cells where the learner's part sits between the lines ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (nbgrader's own markers), followed by checks; and a markdown cell with
only ```` ```{solution-end} ````. An exercise without code to write (derive, explain) carries
the cell tag ``conceptual`` on its exercise or solution-start cell.

The student version keeps the exercise text and the code cells, replaces each solution region
by ``raise NotImplementedError(...)`` at the same indentation, drops the solution markers and
the markdown between them, and clears every output. Its markdown is plain Markdown that Jupyter
and Colab render without MyST (:mod:`coursetools.plainmd`), with the exercise and equation
numbers of the website (:mod:`coursetools.book`). The Markdown pages of the book that the
notebooks link to (the notation page) are written beside them as notebooks too::

    python -m coursetools.exercises student chapters/ -o student/
    python -m coursetools.exercises list chapters/
    python -m coursetools.exercises validate chapters/ --min-exercises 3
"""

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from coursetools import plainmd
from coursetools.book import SITE_URL, Book, BookError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise {label}: write your solution here")'
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
_EXERCISE = re.compile(r"^[ \t]*(`{3,}|:{3,})\{exercise(?:-start)?\}[ \t]*(.*)$", re.M)
_OPTION = re.compile(r"^[ \t]*:([\w-]+):[ \t]*(.*)$")
_MARKER = re.compile(r"^[ \t]*(`{3,}|:{3,})\{(solution-start|solution-end|solution)\}[ \t]*(\S*)", re.M)
_ALONE = re.compile(r"\s*(`{3,}|:{3,})\{solution-(?:start|end)\}[^\n]*\n(?:[ \t]*:[^\n]*\n)*[ \t]*\1[ \t]*\s*")


class ConventionError(ValueError):
    """A notebook breaks the exercise convention; the message names the notebook, cell and label."""


@dataclass
class Exercise:
    """One exercise: its label, title, the cells of its directive and solution markers, its regions."""

    label: str
    title: str
    cell: int
    start: int = None
    end: int = None
    regions: int = 0
    conceptual: bool = False


class Scan:
    """What :func:`scan` finds in a notebook: exercises by label, the exercise each code cell belongs
    to (``owner``), the markdown cells hidden from students, and every convention error."""

    def __init__(self):
        self.exercises, self.owner, self.hidden, self.errors = {}, {}, set(), []
        self.open = self.last = None  # the solution block being read; the latest exercise

    def markdown(self, i, cell):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if self.open is not None:
            self.hidden.add(i)
        for title, label in _exercise_directives(cell.source):
            self.exercise(i, title, label, "conceptual" in tags)
        for m in _MARKER.finditer(cell.source):
            kind, label = m.group(2), m.group(3)
            if kind != "solution" and not _ALONE.fullmatch(cell.source):
                self.errors.append(f"cell {i}: the {kind} marker must be alone in its cell "
                                   "(any other text would be lost in the student version)")
            if kind == "solution-end":
                self.end(i)
            else:
                self.start(i, label, "conceptual" in tags, gated=kind == "solution-start")
        if BEGIN in cell.source or END in cell.source:
            self.errors.append(f"cell {i}: solution regions are only supported in code cells")

    def exercise(self, i, title, label, conceptual):
        if "`" in title:
            self.errors.append(f"cell {i}: exercise {label or repr(title)} has a backtick in its title, which ends a "
                               "backtick fence early (the label is then silently lost): remove it or fence with :::")
        if self.open is not None:
            self.errors.append(f"cell {i}: exercise {label} inside the solution block of {self.open.label}")
        if not label:
            self.errors.append(f"cell {i}: exercise {title!r} has no :label: (write :label: ex-<slug>-<name>)")
        elif label in self.exercises:
            self.errors.append(f"cell {i}: exercise label {label} is used twice "
                               f"(first in cell {self.exercises[label].cell})")
        else:
            self.exercises[label] = self.last = Exercise(label, title, i, conceptual=conceptual)

    def start(self, i, label, conceptual, gated):
        """A solution-start (``gated``) or a one-cell ``{solution}`` (a markdown answer)."""
        ex = self.exercises.get(label)
        if self.open is not None:
            self.errors.append(f"cell {i}: solution-start of {label} inside the solution block of "
                               f"{self.open.label} (missing solution-end)")
        if ex is None:
            self.errors.append(f"cell {i}: solution-start for unknown exercise {label!r} "
                               "(no {exercise} with this :label: above it)")
        elif ex.start is not None:
            self.errors.append(f"cell {i}: second solution block for {label} (first in cell {ex.start})")
        else:
            ex.start, ex.conceptual = i, ex.conceptual or conceptual or not gated
            if gated:
                self.open = ex
            else:
                ex.end = i
                self.hidden.add(i)

    def end(self, i):
        if self.open is None:
            self.errors.append(f"cell {i}: solution-end without a solution-start")
        else:
            self.open.end, self.open = i, None
            self.hidden.discard(i)

    def code(self, i, cell):
        count, problems = regions(cell.source)
        self.errors += [f"cell {i}: {p}" for p in problems]
        owner = self.open or self.last
        if count and owner is None:
            self.errors.append(f"cell {i}: solution region before any exercise")
        elif owner is not None:
            self.owner[i] = owner.label
            owner.regions += count if owner is self.open else 0

    def finish(self):
        if self.open is not None:
            self.errors.append(f"cell {self.open.start}: solution block of {self.open.label} has no solution-end")
        for ex in self.exercises.values():
            if not ex.label.startswith("ex-"):
                self.errors.append(f"cell {ex.cell}: exercise label {ex.label} should start with 'ex-'")
            if ex.start is None:
                self.errors.append(f"cell {ex.cell}: exercise {ex.label} has no solution block "
                                   f"(a markdown cell with only ```{{solution-start}} {ex.label}```)")
            elif ex.end is not None and not ex.regions and not ex.conceptual:
                self.errors.append(f"cell {ex.start}: solution block of {ex.label} has no {BEGIN} region "
                                   "(or tag the exercise cell 'conceptual')")
        return self


def regions(source):
    """Return ``(number of solution regions, problems)`` for the source of one code cell."""
    count, inside, problems = 0, False, []
    for n, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if text == BEGIN:
            problems += [f"line {n}: {BEGIN} inside a solution region (missing {END})"] if inside else []
            inside, count = True, count + 1
        elif text == END:
            problems += [] if inside else [f"line {n}: {END} without {BEGIN}"]
            inside = False
        elif "BEGIN SOLUTION" in text or "END SOLUTION" in text:
            problems.append(f"line {n}: malformed marker {text!r} (write exactly {BEGIN!r} or {END!r})")
    if inside:
        problems.append(f"{BEGIN} without {END}")
    return count, problems


def _exercise_directives(source):
    """``(title, label or None)`` for each ``{exercise}`` directive in a markdown source."""
    for m in _EXERCISE.finditer(source):
        options = {}
        for line in source[m.end():].lstrip("\n").splitlines():
            opt = _OPTION.match(line)
            if not opt:
                break
            options[opt.group(1)] = opt.group(2).strip()
        yield m.group(2).strip(), options.get("label")


def scan(nb):
    """Find the exercises, solution blocks and regions of a notebook and every convention error."""
    s = Scan()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            s.markdown(i, cell)
        elif cell.cell_type == "code":
            s.code(i, cell)
    return s.finish()


def stub_regions(source, label):
    """Replace each solution region of ``source`` by a stub at the indentation of its BEGIN line."""
    out, inside = [], False
    for line in source.split("\n"):
        if line.strip() == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + "# YOUR CODE HERE", indent + STUB.format(label=label)]
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def read(path):
    """The notebook at ``path`` (a MyST Markdown page becomes a notebook of its cells), or a
    :class:`ConventionError` that names it and says why it cannot be read."""
    import nbformat

    try:
        if Path(path).suffix == ".md":
            return nbformat.v4.new_notebook(cells=plainmd.md_cells(Path(path).read_text(encoding="utf-8")),
                                            metadata={"kernelspec": dict(KERNELSPEC)})
        return nbformat.read(str(path), as_version=4)
    except Exception as exc:  # not JSON, not a notebook, unreadable: each says so in its own words
        raise ConventionError(f"{path}: cannot be read as a notebook ({type(exc).__name__}: {exc})") from exc


def check_convention(nb, path, min_exercises=0):
    """Return the :class:`Scan` of ``nb``; raise :class:`ConventionError` listing every problem."""
    s = scan(nb)
    errors = list(s.errors)
    if len(s.exercises) < min_exercises:
        errors.append(f"has {len(s.exercises)} exercise(s), at least {min_exercises} expected")
    if errors:
        raise ConventionError("\n".join(f"{path}: {e}" for e in errors))
    return s


def student_notebook(nb, path="notebook", book=None, keep_regions=False, lang=None):
    """Return ``(student copy of nb, number of stubs)``: regions stubbed, solutions removed, outputs
    cleared, markdown made plain. ``book`` gives the numbers and links; by default the book whose
    ``_toc.yml`` is above ``path``, and none (the notebook numbered on its own) for an in-memory one.
    ``keep_regions=True`` keeps the solution regions as they are (an nbgrader source notebook:
    nbgrader stubs them itself); the number returned is then 0. ``lang="zh_CN"`` writes the Chinese
    edition: every message of the markdown from the catalogues in ``locales/`` (:mod:`coursetools.translate`);
    a message without a translation raises ConventionError, naming it."""
    import copy

    import nbformat

    s = check_convention(nb, path)
    if book is None:
        book = Book.find(path) if Path(path).is_file() else Book()
    doc = book.doc_for(path, nb)
    translator = None
    if lang:
        from coursetools.translate import Translator

        translator = Translator(doc.name, lang)
    ctx = plainmd.Context(book, doc, translator)
    markers = {i for ex in s.exercises.values() for i in (ex.start, ex.end)}
    out, stubs, titled = copy.deepcopy(nb), 0, False
    out.cells = []
    for i, cell in enumerate(nb.cells):
        if i in markers or i in s.hidden:
            continue
        cell = copy.deepcopy(cell)
        if cell.cell_type == "markdown":
            try:
                if translator:
                    cell.source = translator.source(cell.source)
                cell.source = plainmd.convert(cell.source, ctx)
            except plainmd.PlainMarkdownError as exc:
                raise ConventionError(f"{path}: cell {i}: {exc}") from None
            if not titled and cell.source.lstrip().startswith("# "):
                cell.source, titled = plainmd.number_title(cell.source, ctx.doc.number), True
        if cell.cell_type == "code":
            n = regions(cell.source)[0]
            if n and not keep_regions:
                cell.source, stubs = stub_regions(cell.source, s.owner[i]), stubs + n
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
        out.cells.append(cell)
    if translator and translator.missing:
        raise ConventionError(f"{path}: {len(translator.missing)} message(s) have no {lang} translation, "
                              f"the first {translator.missing[0][:80]!r}: run python -m coursetools.i18n update "
                              "and translate the new entries")
    nbformat.validate(out)
    return out, stubs


def notebooks(paths):
    """Every ``*.ipynb`` named in ``paths`` (files, ``.md`` pages too, or folders searched one level deep)."""
    found = []
    for p in map(Path, paths):
        if not p.exists():
            raise ConventionError(f"{p}: no such file or folder")
        found += sorted(p.glob("*.ipynb")) if p.is_dir() else [p]
    if not found:
        raise ConventionError(f"no notebook found in {' '.join(map(str, paths))}")
    return found


def _has_solutions(path):
    """True if the file at ``path`` holds solution markers: a source notebook, never a student version."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return BEGIN in text or "{solution-start}" in text


def target_name(path):
    """The file name of the student version of ``path``: always a notebook."""
    return Path(path).stem + ".ipynb"


def linked_pages(paths, book):
    """The Markdown pages of ``book`` (the notation page) that the documents at ``paths`` link to with
    ``{doc}`` and that are not among ``paths``: they are written beside the student notebooks."""
    given, pages = {Path(p).resolve() for p in paths}, []
    for path in paths:
        doc = book.docs.get(book.docname(path))
        for target in doc.links if doc else ():
            linked = book.resolve(target, doc)
            if linked and linked.path and linked.path.suffix == ".md" and linked.path.resolve() not in given:
                given.add(linked.path.resolve())
                pages.append(linked.path)
    return pages


def _check_targets(paths, output):
    """Refuse, before anything is written, an output that is a file, two inputs of the same name, and any
    target that is one of the inputs (the same file, by device and inode) or a notebook with solutions."""
    if output.exists() and not output.is_dir():
        raise ConventionError(f"{output}: -o must name a folder (it is created if missing), not a file")
    names = {}
    for path in paths:
        name = target_name(path)
        if name in names:
            raise ConventionError(f"{names[name]} and {path}: two notebooks named {name} would be written "
                                  f"to the same {output / name}; generate them into separate folders")
        names[name] = path
        target = output / name
        if target.exists() and any(target.samefile(p) for p in paths):
            raise ConventionError(f"{target}: is a source notebook (the same file as an input); refusing to "
                                  "overwrite it: write the student versions to another folder")
        if target.exists() and _has_solutions(target):
            raise ConventionError(f"{target}: holds solution markers, so it is a source notebook, not a student "
                                  "version; refusing to overwrite it: write the student versions to another folder")


def _write_atomically(nb, target):
    """Write to a temporary file beside ``target``, then rename it: a reader never sees half a notebook, and
    a hard link at ``target`` is replaced as a name, never written through."""
    import os
    import tempfile

    import nbformat

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run(args, path, book=None):
    """One command on one notebook; prints its result line(s)."""
    if args.command == "student":
        target = args.output / target_name(path)
        nb, stubs = student_notebook(read(path), path, book, lang=args.lang)
        args.output.mkdir(parents=True, exist_ok=True)
        _write_atomically(nb, target)
        print(f"wrote {target} ({stubs} solution region(s) replaced)")
        return
    s = check_convention(read(path), path, getattr(args, "min_exercises", 0))
    print(f"{path}: {len(s.exercises)} exercise(s)" + (" ok" if args.command == "validate" else ""))
    for ex in s.exercises.values() if args.command == "list" else ():
        print(f"  {ex.label:<36} {ex.title}" + ("  (conceptual)" if ex.conceptual else ""))


def _main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m coursetools.exercises", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("student", help="write the student version of each notebook")
    st.add_argument("paths", nargs="+")
    st.add_argument("-o", "--output", required=True, type=Path)
    st.add_argument("--site-url", help="the website equation references link to (default: html.baseurl of "
                    f"_config.yml, else {SITE_URL})")
    st.add_argument("--lang", help="the language of the notebooks' text, e.g. zh_CN (from locales/; default English)")
    sub.add_parser("list", help="list the exercises of each notebook").add_argument("paths", nargs="+")
    va = sub.add_parser("validate", help="check the exercise convention")
    va.add_argument("paths", nargs="+")
    va.add_argument("--min-exercises", type=int, default=0)
    args = parser.parse_args(argv)
    status, book = 0, None
    try:
        paths = notebooks(args.paths)
        if args.command == "student":
            book = Book.find(paths[0], args.site_url)
            paths += linked_pages(paths, book)
            _check_targets(paths, args.output)
    except (ConventionError, BookError) as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in paths:  # a notebook that fails is reported, and the others are still written
        try:
            _run(args, path, book)
        except ConventionError as exc:
            print(exc, file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(_main())

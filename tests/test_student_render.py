"""Student notebooks read right in plain Jupyter and Colab, and the site and Binder ship what readers need.

Jupyter and Colab render a markdown cell as CommonMark with ``$``-math and nothing of MyST. Each
student notebook is generated and every markdown cell parsed that way (markdown-it with the
dollarmath plugin, labels off, as Jupyter knows none): no directive, role, option line or
equation label may be left, every math span of the chapter must arrive whole, and the exercise
and equation numbers must be the website's. The numbers are counted here independently of
``coursetools``, from ``_toc.yml`` and the chapters' sources.
"""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.myst_blocks import myst_block_plugin
from mdit_py_plugins.myst_role import myst_role_plugin
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursetools import exercises as ex
from coursetools import plainmd
from coursetools.book import SITE_URL, Book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
STUDENT = [p.stem for p in CHAPTERS] + ["notation"]
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

# What Jupyter and Colab understand: CommonMark, GitHub tables, $-math (also $$ inside a line).
JUPYTER = (MarkdownIt("commonmark").enable("table")
           .use(dollarmath_plugin, allow_labels=False, double_inline=True).use(amsmath_plugin))
# What the website understands: MyST, as the book enables it.
MYST = (MarkdownIt("commonmark").enable("table").use(dollarmath_plugin, allow_labels=True)
        .use(amsmath_plugin).use(colon_fence_plugin).use(myst_role_plugin).use(myst_block_plugin))
MATH = ("math_inline", "math_inline_double", "math_block", "math_block_label", "amsmath")
OPTION_LINE = re.compile(r"^:[\w-]+:", re.M)
ROLE_TAIL = re.compile(r"\{[A-Za-z][\w:.+-]*\}$")


def tokens(md, source):
    """Every token of ``source``, inline children included, in order."""
    for token in md.parse(source):
        yield token
        yield from token.children or ()


def norm(tex):
    return " ".join(tex.split())


def leftover_myst(source):
    """What a learner would see of MyST in a cell rendered by Jupyter: a list of problems."""
    problems, toks = [], list(tokens(JUPYTER, source))
    for n, tok in enumerate(toks):
        if tok.type == "fence" and tok.info.strip().startswith("{"):
            problems.append(f"directive shown as code: ```{tok.info.strip()}")
        if tok.type != "text":
            continue
        following = toks[n + 1] if n + 1 < len(toks) else None
        if ROLE_TAIL.search(tok.content) and following is not None and following.type == "code_inline":
            problems.append(f"role shown as text: {tok.content[-20:]}`{following.content}`")
        for bad, why in ((":::", "colon fence"), ("$", "a dollar sign outside math (unbalanced math)")):
            if bad in tok.content:
                problems.append(f"{why}: {tok.content[:60]!r}")
        if re.search(r"\{[A-Za-z][\w:.+-]*\}`", tok.content):
            problems.append(f"role shown as text: {tok.content[:60]!r}")
        if OPTION_LINE.search(tok.content):
            problems.append(f"directive option shown as text: {tok.content[:60]!r}")
        if re.fullmatch(r"\s*\([^()\s]+\)=\s*", tok.content):
            problems.append(f"target shown as text: {tok.content!r}")
    for line in prose_lines(source):
        if re.search(r"\$\$[ \t]*\([^()\s]+\)[ \t]*$", line):
            problems.append(f"equation label shown as text: {line!r}")
    return problems


def prose_lines(source):
    """The lines of ``source`` outside code blocks."""
    lines = source.split("\n")
    for tok in JUPYTER.parse(source):
        if tok.type in ("fence", "code_block") and tok.map:
            lines[tok.map[0]:tok.map[1]] = [""] * (tok.map[1] - tok.map[0])
    return lines


@pytest.mark.parametrize("myst", [
    "```{note}\nRead.\n```", ":::{tip}\nRead.\n:::", "See {eq}`eq-a`.", "See {doc}`01_one`, then",
    "```{exercise} T\n:label: ex-a\n```", "Text\n:label: ex-a", "$$\nx = 1\n$$ (eq-a)", "(sec-a)=\n# A",
    "Costs $5.",
])
def test_the_detector_sees_each_kind_of_myst(myst):
    assert leftover_myst(myst), f"{myst!r} would pass as plain Markdown"
    assert leftover_myst("Plain text with $x$ (below), `code {eq}`, a [link (1.2)](a.ipynb) and\n\n$$\ny\n$$\n\n"
                         "```\n$$ (not-a-label)\n:label: in code\n```") == []


def math_spans(source, md=MYST):
    """``(tex, label)`` of every math span of a MyST source, inside directives too, in order."""
    out = []
    for tok in tokens(md, source):
        if tok.type in MATH:
            out.append((tok.content, tok.info if tok.type == "math_block_label" else None))
        elif tok.type in ("fence", "colon_fence") and tok.info.strip().startswith("{"):
            name = tok.info.strip()[1:].split("}")[0]
            lines = tok.content.split("\n")
            label = next((line.split(":", 2)[2].strip() for line in lines if line.startswith(":label:")), None)
            body = "\n".join(line for line in lines if not OPTION_LINE.match(line))
            if name == "math":
                out.append((body, label))
            elif name not in ("code-block", "code"):
                out += math_spans(body, md)
    return out


def website_numbers():
    """Chapter numbers as the website shows them: the chapters of every ``numbered`` part of
    ``_toc.yml``, counted in one run across the parts (Jupyter Book's multitoc numbering)."""
    toc, numbers, chapter = yaml.safe_load((ROOT / "_toc.yml").read_text()), {}, 0
    for part in toc["parts"]:
        for entry in part["chapters"]:
            if part.get("numbered"):
                chapter += 1
                numbers[Path(entry["file"]).name] = chapter
    return numbers


def expected_equations(path, chapter):
    """label -> website number of every labelled equation of a chapter, solutions included."""
    labels = [label for cell in ex.read(path).cells if cell.cell_type == "markdown"
              for _, label in math_spans(cell.source) if label]
    return {label: f"{chapter}.{k}" for k, label in enumerate(labels, start=1)}


def kept_markdown(path):
    """The source markdown cells a learner gets (solution blocks and markers removed), in order."""
    nb = ex.read(path)
    s = ex.scan(nb)
    dropped = s.hidden | {i for e in s.exercises.values() for i in (e.start, e.end)}
    return [c.source for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and i not in dropped]


@pytest.fixture(scope="module", params=[None, "zh_CN"], ids=["en", "zh"])
def lang(request):
    """Every test of the student notebooks runs on the English ones and on the Chinese ones."""
    return request.param


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory, lang):
    out = tmp_path_factory.mktemp(f"student-{lang or 'en'}")
    assert ex._main(["student", str(ROOT / "chapters"), "-o", str(out)] + (["--lang", lang] if lang else [])) == 0
    return out


HAN = re.compile(r"[\u4e00-\u9fff]")


def student_markdown(student_dir, name):
    nb = nbformat.read(str(student_dir / f"{name}.ipynb"), as_version=4)
    nbformat.validate(nb)
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


# ---- every student notebook ---------------------------------------------------------------

def test_every_chapter_and_the_notation_page_are_written(student_dir):
    assert sorted(p.name for p in student_dir.iterdir()) == sorted(f"{n}.ipynb" for n in STUDENT)


@pytest.mark.parametrize("name", STUDENT)
def test_no_myst_is_left_for_jupyter_to_show(student_dir, name):
    cells = student_markdown(student_dir, name)
    assert cells
    for i, source in enumerate(cells):
        problems = leftover_myst(source)
        assert not problems, f"student {name}.ipynb, markdown cell {i}: {problems}"


@pytest.mark.parametrize("path", CHAPTERS + [ROOT / "notation.md"], ids=lambda p: p.stem)
def test_every_math_span_arrives_whole(student_dir, path):
    """Cell by cell, each math span of the source is inside a math span of the student version, and
    each labelled equation carries the website's number as its \\tag."""
    chapter = website_numbers().get(path.stem)
    numbers = expected_equations(path, chapter) if chapter else {}
    source_cells, student_cells = kept_markdown(path), student_markdown(student_dir, path.stem)
    assert len(source_cells) == len(student_cells)
    n_spans = 0
    for i, (source, student) in enumerate(zip(source_cells, student_cells)):
        got = [norm(tex) for tex, _ in math_spans(student, JUPYTER)]
        for tex, label in math_spans(source):
            want = norm(tex) + (f" \\tag{{{numbers[label]}}}" if label else "")
            assert any(want in g for g in got), f"{path.name}, kept markdown cell {i}: {want!r} is not in {got}"
            n_spans += 1
        assert student.count("$") % 2 == 0 or "\\$" in student, f"{path.name}, cell {i}: odd number of $"
    assert n_spans > (5 if path.suffix == ".ipynb" else 3)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_carry_the_website_numbers_and_titles(student_dir, lang, path):
    chapter = website_numbers()[path.stem]
    titles = [e.title for e in ex.scan(ex.read(path)).exercises.values()]
    text = "\n\n".join(student_markdown(student_dir, path.stem))
    word = {None: "Exercise", "zh_CN": "练习"}[lang]
    headings = re.findall(rf"^\*\*{word} (\S+) — (.*)\*\*$", text, re.M)
    if lang is None:
        assert headings == [(f"{chapter}.{k}", t) for k, t in enumerate(titles, start=1)]
    else:  # the same numbers, and every title translated
        assert [n for n, _ in headings] == [f"{chapter}.{k}" for k in range(1, len(titles) + 1)]
        assert all(HAN.search(t) for _, t in headings), headings
    assert text.startswith(f"# {chapter}. ")


@pytest.mark.parametrize("name", STUDENT)
def test_a_chinese_notebook_reads_in_chinese(student_dir, lang, name):
    """Every markdown cell with English words outside math and code has Chinese text in the Chinese
    edition (the generator refuses a message without a translation; this sees what a learner sees)."""
    if lang is None:
        return
    for i, source in enumerate(student_markdown(student_dir, name)):
        prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\[[^\]]*\]\([^)]*\)|<[^>]+>", " ", source, flags=re.S)
        if re.search(r"[A-Za-z]{4,}(\s+[A-Za-z]{3,}){3,}", prose):
            assert HAN.search(source), f"{name}.ipynb, markdown cell {i} is in English: {source[:120]!r}"


def test_every_link_leads_somewhere(student_dir, lang):
    """Links between notebooks name a written notebook; equation links name the website page and
    the anchor of an equation of that chapter, with its number as the text."""
    numbers = {path.stem: expected_equations(path, n) for path in CHAPTERS
               if (n := website_numbers().get(path.stem))}
    local = equations = 0
    for name in STUDENT:
        for source in student_markdown(student_dir, name):
            for tok in tokens(JUPYTER, source):
                if tok.type != "inline":
                    continue
                for k, child in enumerate(tok.children):
                    if child.type != "link_open":
                        continue
                    href, text = child.attrs["href"], tok.children[k + 1].content
                    if href.startswith(SITE_URL):
                        page, _, anchor = href[len(SITE_URL):].partition("#")
                        if lang:  # the Chinese notebooks link to the Chinese website
                            assert page.startswith("zh/"), href
                            page = page.removeprefix("zh/")
                        stem, label = Path(page).stem, anchor.removeprefix("equation-")
                        assert page.startswith("chapters/") and anchor.startswith("equation-"), href
                        assert text == f"({numbers[stem][label]})", f"{name}: {text} links to {href}"
                        equations += 1
                    elif not re.match(r"^[a-z]+:", href):
                        assert (student_dir / href.partition("#")[0]).exists(), f"{name}: broken link {href}"
                        local += 1
    assert local > 20 and equations > 100


def test_notation_page_is_a_notebook_with_its_tables_and_math(student_dir, lang):
    cells = student_markdown(student_dir, "notation")
    text = "\n".join(cells)
    if lang is None:
        assert text.startswith("# Notation") and "| symbol | meaning | shape | in `bpkit` |" in text
    else:  # translated, and the glossary keeps its English column
        assert text.startswith("# 记号") and "| upstream gradient | 上游梯度 |" in text
    assert "\\begin{aligned}" in text


# ---- each conversion, on small examples --------------------------------------------------

def write_book(root, chapters, notation="# Notation\n\nSymbols.\n"):
    """A tiny book: an unnumbered notation page, then each chapter in a numbered part of its own."""
    (root / "chapters").mkdir(parents=True)
    toc = {"format": "jb-book", "root": "intro",
           "parts": [{"caption": "Start", "chapters": [{"file": "notation"}]}] +
                    [{"caption": f"Part {k}", "numbered": True, "chapters": [{"file": f"chapters/{name}"}]}
                     for k, name in enumerate(chapters)]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    (root / "_config.yml").write_text(yaml.safe_dump(
        {"sphinx": {"config": {"math_eqref_format": "({number})",
                               "mathjax3_config": {"tex": {"macros": {"R": "\\mathbb{R}"}}}}}}))
    (root / "intro.md").write_text("# Intro\n")
    (root / "notation.md").write_text(notation)
    for name, cells in chapters.items():
        nb = new_notebook(metadata={"kernelspec": KERNELSPEC})
        nb.cells = [new_markdown_cell(c) if isinstance(c, str) else c for c in cells]
        nbformat.write(nb, str(root / "chapters" / f"{name}.ipynb"))
    return Book(root)


def exercise(label, title, body="Do it."):
    return f"```{{exercise}} {title}\n:label: {label}\n\n{body}\n```"


def solved(label, *explanation):
    return [f"```{{solution-start}} {label}\n:class: dropdown\n```", *explanation,
            new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"), "```{solution-end}\n```"]


@pytest.fixture
def book(tmp_path):
    return write_book(tmp_path, {
        "01_one": ["# One", "$$\na = b\n$$ (eq-one-a)", exercise("ex-one-a", "First"), *solved("ex-one-a")],
        "02_two": ["# Two\n\nAs {eq}`eq-one-a` says, and {eq}`eq-two-b` here.",
                   exercise("ex-two-a", "Alpha"),
                   *solved("ex-two-a", "The answer:\n\n$$\nx = 1\n$$ (eq-two-hidden)"),
                   "$$ y = 2 $$ (eq-two-b)",
                   exercise("ex-two-b", "Beta with $\\R^n$", "See {doc}`../notation` and {doc}`01_one`."),
                   *solved("ex-two-b")],
    })


def student(book, name):
    nb, _ = ex.student_notebook(ex.read(book.root / "chapters" / f"{name}.ipynb"),
                                book.root / "chapters" / f"{name}.ipynb", book)
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def test_exercises_are_numbered_per_chapter_and_parts_go_on_counting(book):
    assert student(book, "01_one")[2] == "**Exercise 1.1 — First**\n\nDo it."
    two = student(book, "02_two")
    assert two[1] == "**Exercise 2.1 — Alpha**\n\nDo it."
    assert two[3].startswith("**Exercise 2.2 — Beta with $\\mathbb{R}^n$**\n\n")
    assert two[0].startswith("# 2. Two\n")


def test_an_equation_keeps_its_number_and_a_hidden_solution_takes_one(book):
    two = student(book, "02_two")
    assert two[2] == "$$\ny = 2\n\\tag{2.2}\n$$"  # 2.1 is the equation inside the solution of ex-two-a
    assert student(book, "01_one")[1] == "$$\na = b\n\\tag{1.1}\n$$"


def test_eq_references_show_the_number_and_link_to_the_website(book):
    assert student(book, "02_two")[0] == (
        f"# 2. Two\n\nAs [(1.1)]({SITE_URL}chapters/01_one.html#equation-eq-one-a) says, "
        f"and [(2.2)]({SITE_URL}chapters/02_two.html#equation-eq-two-b) here.")
    custom = Book(book.root, site_url="https://example.org/course")
    nb = ex.read(book.root / "chapters" / "02_two.ipynb")
    out, _ = ex.student_notebook(nb, book.root / "chapters" / "02_two.ipynb", custom)
    assert "(https://example.org/course/chapters/01_one.html#equation-eq-one-a)" in out.cells[0].source


def test_doc_references_link_to_the_student_notebooks(book):
    assert student(book, "02_two")[3].endswith("See [Notation](notation.ipynb) and [One](01_one.ipynb).")


def test_the_cli_writes_the_linked_notation_page_beside_the_notebooks(book, tmp_path, capsys):
    out = tmp_path / "out"
    assert ex._main(["student", str(book.root / "chapters"), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_one.ipynb", "02_two.ipynb", "notation.ipynb"]
    assert f"wrote {out / 'notation.ipynb'} (0 solution region(s) replaced)" in capsys.readouterr().out
    page = nbformat.read(str(out / "notation.ipynb"), as_version=4)
    assert [c.source for c in page.cells] == ["# Notation\n\nSymbols."]


def convert(source, tmp_path):
    book = write_book(tmp_path / "b", {"01_one": ["# One", source]})
    return plainmd.convert(source, plainmd.Context(book, book.docs["chapters/01_one"]))


@pytest.mark.parametrize("source, expected", [
    ("```{note}\nRead this.\n```", "> **Note**\n>\n> Read this."),
    (":::{tip}\nA tip with $x$.\n:::", "> **Tip**\n>\n> A tip with $x$."),
    ("```{warning} First line.\nSecond.\n```", "> **Warning**\n>\n> First line.\n> Second."),
    ("````{admonition} Why it works\n:class: tip\n\n$$\na\n= b\n$$\n\n```python\nx = 1\n```\n````",
     "> **Why it works**\n>\n> $$ a = b $$\n>\n> ```python\n> x = 1\n> ```"),
    ("```{math}\n:label: eq-m\n\nz = 1\n```", "$$\nz = 1\n\\tag{1.1}\n$$"),
    ("```{math}\na = 1\n\nb = 2\n```", "$$\n\\begin{aligned}\na = 1 \\\\\nb = 2\n\\end{aligned}\n$$"),
    ("$$ u = \\R $$ (eq-u)", "$$\nu = \\mathbb{R}\n\\tag{1.1}\n$$"),
    ("$$\na &= 1 \\\\\nb &= 2\n$$", "$$\n\\begin{aligned}\na &= 1 \\\\\nb &= 2\n\\end{aligned}\n$$"),
    ("$$\n\\begin{aligned} a &= 1 \\\\ b &= 2 \\end{aligned}\n$$", "$$\n\\begin{aligned} a &= 1 \\\\ b &= 2 \\end{aligned}\n$$"),
    ("(sec-x)=\n## A section\n\nSee {ref}`sec-x` and {ref}`that <sec-x>`.",
     '<a id="sec-x"></a>\n## A section\n\nSee [A section](#sec-x) and [that](#sec-x).'),
    ("{numref}`Exercise {number} <ex-e>` and {ref}`ex-e`\n\n" + exercise("ex-e", "E"),
     "Exercise 1.1 and Exercise 1.1\n\n**Exercise 1.1 — E**\n\nDo it."),
    ("```{solution} ex-x\nThe answer.\n```\nAfter.", "After."),
    ("A {math}`x^2`, a {term}`gradient`, {sub}`2`, {abbr}`MLP (multilayer perceptron)`.",
     "A $x^2$, a gradient, <sub>2</sub>, MLP."),
    ("% a comment\nText `{eq}` in code, and\n```text\n{eq}`not-a-role`\n```",
     "Text `{eq}` in code, and\n```text\n{eq}`not-a-role`\n```"),
    ("1. item\n\n   $$\n   a\n   $$ (eq-i)", "1. item\n\n   $$\n   a\n   \\tag{1.1}\n   $$"),
])
def test_conversion(source, expected, tmp_path):
    assert convert(source, tmp_path) == expected
    assert leftover_myst(expected) == []


@pytest.mark.parametrize("source, message", [
    ("```{figure} a.png\nCaption\n```", "the directive {figure} has no plain-Markdown form"),
    ("See {glue}`value`.", "the role {glue} has no plain-Markdown form"),
    ("See {eq}`eq-missing`.", "no numbered equation has the label 'eq-missing'"),
    ("See {doc}`nowhere`.", "no document 'nowhere' in the table of contents"),
    ("![plot](plot.png)", "the link 'plot.png' points at a file that is not written beside"),
    ("See {ref}`missing`.", "no exercise, equation or (label)= target is named 'missing'"),
])
def test_what_cannot_be_converted_is_refused_by_name(source, message, tmp_path):
    with pytest.raises(plainmd.PlainMarkdownError, match=re.escape(message)):
        convert(source, tmp_path)


def test_the_generator_names_the_notebook_and_cell_it_cannot_convert(tmp_path, capsys):
    book = write_book(tmp_path, {"01_one": ["# One", "Text", "```{figure} a.png\n```"]})
    path = book.root / "chapters" / "01_one.ipynb"
    assert ex._main(["student", str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: cell 2: the directive {{figure}} has no plain-Markdown form") and "plainmd.py" in err


def test_markdown_page_cells(tmp_path):
    cells = plainmd.md_cells("---\ntitle: x\n---\n# Page\n\nText.\n+++\nMore.\n```{code-cell} python\n:tags: [x]\n"
                             "print(1)\n```\nEnd.")
    assert [(c.cell_type, c.source) for c in cells] == [
        ("markdown", "# Page\n\nText."), ("markdown", "More."), ("code", "print(1)"), ("markdown", "End.")]


# ---- the website: markers taken out of the code cells ------------------------------------

def _extension():
    spec = importlib.util.spec_from_file_location("solution_markers", ROOT / "_ext" / "solution_markers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_marker_lines_are_stripped_from_code_and_nothing_else():
    strip = _extension().strip_markers
    code = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n\n    ### END SOLUTION\n# ### BEGIN SOLUTION later"
    assert strip(code) == "def f(x):\n    return x\n\n# ### BEGIN SOLUTION later"
    assert _extension().MARKERS == (ex.BEGIN, ex.END)


def test_the_extension_only_touches_notebook_code_cells():
    from docutils import nodes

    module = _extension()
    doc = nodes.document(None, None)
    cell = nodes.container(nb_element="cell_code_source")
    cell += nodes.literal_block("", "x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION")
    markdown_block = nodes.literal_block("", "### BEGIN SOLUTION\nshown in the guide")
    doc += [cell, markdown_block]
    module.strip_doctree(None, doc)
    assert cell.astext() == "x = 1\ny = 2"
    assert markdown_block.astext() == "### BEGIN SOLUTION\nshown in the guide"


def test_the_extension_is_registered_for_every_build():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"].get("solution_markers") == "_ext"


# ---- Binder -------------------------------------------------------------------------------

def requirement_lines(path, seen=()):
    """``(file, line)`` of a pip requirements file, its ``-r`` files followed (relative to the file)."""
    out = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            nested = (path.parent / line[3:].strip()).resolve()
            assert nested.exists() and nested not in seen, f"{path}: {line} names no file"
            out += requirement_lines(nested, (*seen, path))
        else:
            out.append((path, line))
    return out


def test_binder_installs_the_course_with_cpu_torch_and_jupyterlab_myst():
    binder = ROOT / "binder"
    lines = requirement_lines(binder / "requirements.txt")
    own = [line for path, line in lines if path.parent == binder]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in own or \
        "--index-url https://download.pytorch.org/whl/cpu" in own
    assert [line for line in own if line.startswith("torch")] == ["torch==2.13.0+cpu"]
    course = [line for path, line in lines if path == ROOT / "requirements.txt"]
    assert "torch==2.13.0" in course and "-e ." in course  # the same version; bpkit itself
    assert any(re.fullmatch(r"jupyterlab-myst==\d+\.\d+\.\d+", line) for line in own)
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"

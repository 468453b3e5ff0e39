"""What the website knows about the book: its documents, their numbers, titles and labels.

The student notebooks must carry the numbers the website shows: "Exercise 4.2", equation
"(4.3)". Sphinx numbers them per chapter (``numfig`` with ``numfig_secnum_depth`` 1), in order
of appearance, and Jupyter Book numbers the chapters of every part marked ``numbered: true`` in
``_toc.yml`` in one run across the parts (its ``use_multitoc_numbering``, on by default), so
"Making it train" goes on from where "Backpropagation, derived" stopped. :class:`Book` reads
``_toc.yml`` and ``_config.yml`` and every document, hidden solutions included (an equation in a
solution still takes a number on the website), and counts the same way.
"""

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from coursetools import plainmd

# Where the book is published. ``html.baseurl`` in ``_config.yml``, when set, takes precedence;
# ``--site-url`` on the command line overrides both. Equation references link to it.
SITE_URL = "https://backprop-derived.github.io/backprop-derived-and-built/"
SUFFIXES = (".ipynb", ".md")


class BookError(ValueError):
    """The table of contents or configuration cannot be read; the message names the file."""


@dataclass
class Doc:
    """One document: ``name`` is its docname (``chapters/04_hidden_layer_deltas``), ``number`` its
    chapter number as a tuple (``(4,)``, or ``()`` when unnumbered), and the labels it defines."""

    name: str
    path: Path = None
    number: tuple = ()
    on_site: bool = False
    title: str = ""
    equations: dict = field(default_factory=dict)  # label -> "4.3"
    exercises: dict = field(default_factory=dict)  # label -> "4.2" ("" when :nonumber:)
    targets: dict = field(default_factory=dict)    # label -> text of the heading it sits on, or ""
    links: list = field(default_factory=list)      # the docnames this document's {doc} roles name

    @property
    def notebook(self):
        """The file name of its student version: every student notebook sits in one folder."""
        return Path(self.name).name + ".ipynb"

    @property
    def page(self):
        """Its page on the website, relative to the site's root."""
        return self.name + ".html"


class Book:
    """The documents of ``_toc.yml`` in order, numbered and scanned; empty for a notebook outside a book."""

    def __init__(self, root=None, site_url=None):
        self.root = Path(root).resolve() if root else None
        self.docs = {}  # docname -> Doc, in the order of the table of contents
        self.eqref_format, self.macros, self.secnum_depth, self.site_url = "({number})", {}, 1, None
        if self.root is None:
            return
        config = _yaml(self.root / "_config.yml") if (self.root / "_config.yml").exists() else {}
        sphinx = (config.get("sphinx") or {}).get("config") or {}
        self.eqref_format = sphinx.get("math_eqref_format") or self.eqref_format
        self.secnum_depth = sphinx.get("numfig_secnum_depth", 1)
        if self.secnum_depth not in (0, 1):
            raise BookError(f"{self.root / '_config.yml'}: numfig_secnum_depth {self.secnum_depth} is not "
                            "supported by the student generator (0 or 1)")
        tex = ((sphinx.get("mathjax3_config") or {}).get("tex") or {})
        self.macros = dict(tex.get("macros") or {})
        html = config.get("html") or {}
        url = site_url or html.get("baseurl") or SITE_URL
        self.site_url = url if url.endswith("/") else url + "/"
        multitoc = html.get("use_multitoc_numbering", True)
        for name, number in _toc_docs(_yaml(self.root / "_toc.yml"), self.root / "_toc.yml", multitoc):
            path = next((self.root / (name + s) for s in SUFFIXES if (self.root / (name + s)).exists()), None)
            self.docs[name] = Doc(name, path, number, on_site=True, title=Path(name).name)
        counters = {}  # Sphinx counts per (kind, chapter number), over the documents in toc order
        for doc in self.docs.values():
            if doc.path is not None:
                try:
                    sources = markdown_sources(doc.path)
                except Exception as exc:  # not JSON, not a notebook, unreadable: numbers after it are unknown
                    raise BookError(f"{doc.path}: cannot be read, so the numbers of the book cannot be counted "
                                    f"({type(exc).__name__}: {exc})") from exc
                self._scan(doc, sources, counters)

    @classmethod
    def find(cls, path, site_url=None):
        """The book whose ``_toc.yml`` is in a folder above ``path``, or an empty book."""
        for folder in Path(path).resolve().parents:
            if (folder / "_toc.yml").exists():
                return cls(folder, site_url)
        return cls(None)

    def doc_for(self, path, nb=None):
        """The document at ``path``; a notebook outside the table of contents is numbered on its own."""
        name = self.docname(path)
        if name in self.docs:
            return self.docs[name]
        doc = Doc(name, Path(path), title=Path(name).name)
        sources = [c.source for c in nb.cells if c.cell_type == "markdown"] if nb is not None else \
            markdown_sources(Path(path))
        self._scan(doc, sources, {})
        return doc

    def docname(self, path):
        path = Path(path).resolve()
        if self.root is not None and path.is_relative_to(self.root):
            return path.relative_to(self.root).with_suffix("").as_posix()
        return path.with_suffix("").name

    def resolve(self, target, doc):
        """The document a ``{doc}`` target names, relative to ``doc`` (or to the root with a leading /)."""
        name = target[1:] if target.startswith("/") else posixpath.join(posixpath.dirname(doc.name), target)
        name = posixpath.normpath(name)
        for suffix in SUFFIXES:
            name = name[: -len(suffix)] if name.endswith(suffix) else name
        return self.docs.get(name)

    def find_label(self, label, kind):
        """``(doc, value)`` for a label of ``kind`` (``equations``, ``exercises`` or ``targets``), or None."""
        for doc in self.docs.values():
            if label in getattr(doc, kind):
                return doc, getattr(doc, kind)[label]
        return None

    def number(self, doc, counters, kind):
        key = (kind, doc.number[: self.secnum_depth])
        counters[key] = counters.get(key, 0) + 1
        return ".".join(map(str, key[1] + (counters[key],)))

    def _scan(self, doc, sources, counters):
        titled = False
        for source in sources:
            for event in plainmd.scan(source):
                kind, label = event[0], event[1]
                if kind == "title" and not titled:
                    titled = True
                    doc.title = label
                elif kind == "equation":
                    doc.equations[label] = self.number(doc, counters, "displaymath")
                elif kind == "exercise":
                    number = self.number(doc, counters, "exercise") if event[2] else ""
                    if label:
                        doc.exercises[label] = number
                elif kind == "target":
                    doc.targets[label] = event[2]
                elif kind == "doc":
                    doc.links.append(label)


def markdown_sources(path):
    """The markdown of a document: each markdown cell of a notebook, or a Markdown file whole."""
    import nbformat

    path = Path(path)
    if path.suffix == ".ipynb":
        return [c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "markdown"]
    return [cell.source for cell in plainmd.md_cells(path.read_text(encoding="utf-8")) if cell.cell_type == "markdown"]


def _yaml(path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BookError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from exc


def _toc_docs(toc, path, multitoc=True):
    """``(docname, number)`` for every document of a jb-book table of contents, in order."""
    if "root" not in toc:
        raise BookError(f"{path}: has no 'root' (only the jb-book format is supported)")
    out, chapter = [(str(Path(toc["root"]).with_suffix("")), ())], 0

    def walk(entries, prefix, numbered):
        nonlocal chapter
        section = 0
        for entry in entries or []:
            if "file" not in entry:
                if "glob" in entry:
                    raise BookError(f"{path}: 'glob' entries are not supported by the student generator")
                continue  # an external url
            number = ()
            if numbered and prefix:
                section += 1
                number = prefix + (section,)
            elif numbered:
                chapter += 1
                number = (chapter,)
            out.append((str(Path(entry["file"]).with_suffix("")), number))
            walk(entry.get("sections"), number, numbered)

    for part in toc.get("parts") or []:
        if not multitoc:
            chapter = 0
        walk(part.get("chapters"), (), bool(part.get("numbered")))
    walk(toc.get("chapters"), (), bool(toc.get("numbered") or (toc.get("defaults") or {}).get("numbered")))
    return out

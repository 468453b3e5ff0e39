"""MyST to plain Markdown: what Jupyter, JupyterLab and Colab show without MyST.

The chapters are written in MyST for the website. Plain Jupyter and Colab render CommonMark
with ``$``-math and nothing else: there a directive is a code block with braces and a role is
literal ``{eq}`` text. :func:`convert` rewrites every construct the book uses into plain
Markdown, with the numbers the website shows:

- ```` ```{exercise} Title ```` with ``:label:`` becomes ``**Exercise 4.2 — Title**`` and its text;
- ``$$ ... $$ (label)`` and a labelled ```` ```{math} ```` become ``$$ ... \\tag{4.3} $$``;
- ``{eq}`label``` becomes ``[(4.3)](<site>chapters/04_....html#equation-label)``;
- ``{doc}`target``` becomes ``[Title](target.ipynb)``, a link to the student notebook;
- ``{ref}`label``` and ``{numref}`` become ``[text](notebook.ipynb#label)``;
- ```` ```{note} ```` and the other admonitions become a ``> **Note**`` blockquote;
- ``(label)=`` becomes ``<a id="label"></a>``;
- ``{solution}``, ``{solution-start}`` and ``{solution-end}`` are removed;

plus ``{math}``, ``{term}``, ``{index}``, ``{abbr}``, ``{sub}``, ``{sup}``, ``{kbd}``, ``{code}``
roles, ``{code-block}``, ``% comments`` and ``+++`` breaks. Any other directive or role raises
:class:`PlainMarkdownError` naming it, so nothing reaches a learner unconverted.
"""

import re
from dataclasses import dataclass, field

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>[^\n]*)$")
_DIRECTIVE = re.compile(r"^\{(?P<name>[A-Za-z][\w:.+-]*)\}[ \t]*(?P<arg>.*?)[ \t]*$")
_OPTION = re.compile(r"^[ \t]*:(?P<key>[\w-]+):(?:[ \t]+(?P<value>.*?))?[ \t]*$")
_TARGET = re.compile(r"^[ \t]*\((?P<label>[^()\s]+)\)=[ \t]*$")
_LABEL_TAIL = re.compile(r"^[ \t]*\((?P<label>[^()\s]+)\)[ \t]*$")
_ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:.+-]*)\}(?P<ticks>`+)")
_HEADING = re.compile(r"^[ \t]{0,3}(?P<hashes>#{1,6})[ \t]+(?P<text>.*?)(?:[ \t]+#+)?[ \t]*$")
_COMMENT = re.compile(r"^[ \t]{0,3}%")
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<url>[^()\s]+)\)")

ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important", "warning": "Warning",
               "caution": "Caution", "attention": "Attention", "danger": "Danger", "error": "Error",
               "seealso": "See also", "admonition": None}
CODE = ("code-block", "code", "sourcecode")
REMOVED = ("solution", "solution-start", "solution-end", "exercise-end")
EXERCISES = ("exercise", "exercise-start")
FIX = "add a conversion to coursetools/plainmd.py, or write it without MyST"


class PlainMarkdownError(ValueError):
    """A MyST construct with no plain-Markdown form, or a reference to a label that does not exist."""


# ---- blocks -------------------------------------------------------------------------------

@dataclass
class Block:
    """A run of lines: ``kind`` is ``text``, ``fence`` (code or directive), ``math`` or ``target``."""

    kind: str
    raw: list
    indent: str = ""
    fence: str = ""
    info: str = ""
    body: list = field(default_factory=list)
    math: str = ""
    label: str = None


def blocks(lines):
    """Split markdown lines into :class:`Block` s: fences (with their body), display math
    (``$$ ... $$``, with its label), ``(label)=`` targets, and the text between them."""
    out, text, i = [], [], 0

    def flush():
        if text:
            out.append(Block("text", list(text)))
            text.clear()

    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence and not (fence["fence"][0] == "`" and "`" in fence["info"]):
            flush()
            close = _closing(lines, i + 1, fence["fence"])
            out.append(Block("fence", lines[i:close + 1], fence["indent"], fence["fence"], fence["info"].strip(),
                             _dedent(lines[i + 1:close], fence["indent"])))
            i = close + 1
            continue
        math = _display_math(lines, i) if line.lstrip().startswith("$$") else None
        if math:
            flush()
            out.append(math)
            i += len(math.raw)
            continue
        target = _TARGET.match(line)
        if target:
            flush()
            out.append(Block("target", [line], line[: len(line) - len(line.lstrip())], label=target["label"]))
        else:
            text.append(line)
        i += 1
    flush()
    return out


def _closing(lines, start, fence):
    closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
    return next((j for j in range(start, len(lines)) if closing.match(lines[j])), len(lines))


def _dedent(lines, indent):
    n = len(indent)
    return [line[n:] if line[:n].strip() == "" else line.lstrip() for line in lines]


def _display_math(lines, i):
    """The ``$$ ... $$ (label)`` block that starts on line ``i``, or None (then it is text)."""
    first = lines[i]
    indent = first[: len(first) - len(first.lstrip())]
    chunks, j, rest = [], i, first.lstrip()[2:]
    while (k := rest.find("$$")) < 0:
        chunks.append(rest)
        j += 1
        if j == len(lines):
            return None
        rest = lines[j]
    chunks.append(rest[:k])
    tail, label = rest[k + 2:], None
    if tail.strip():
        m = _LABEL_TAIL.match(tail)
        if not m:
            return None
        label = m["label"]
    return Block("math", lines[i:j + 1], indent, math="\n".join(chunks), label=label)


def options(body):
    """``(options, content lines)`` of a directive body: leading ``:key: value`` lines or a ``---`` block."""
    opts, k = {}, 0
    if body and body[0].strip() == "---":
        import yaml

        end = next((j for j in range(1, len(body)) if body[j].strip() == "---"), None)
        if end is not None:
            opts = {str(key): "" if v is None else str(v) for key, v in (yaml.safe_load("\n".join(body[1:end])) or {}).items()}
            k = end + 1
    while k < len(body) and (m := _OPTION.match(body[k])):
        opts[m["key"]] = (m["value"] or "").strip()
        k += 1
    content = body[k:]
    while content and not content[0].strip():
        content = content[1:]
    return opts, content


def directive(block):
    """``(name, argument)`` of a fence that is a directive, or None for a code fence."""
    m = _DIRECTIVE.match(block.info) if block.kind == "fence" else None
    return (m["name"], m["arg"]) if m else None


# ---- inline -------------------------------------------------------------------------------

def inline_tokens(text):
    """Split text into ``(kind, raw, ...)`` tokens whose raws join back to ``text``: ``text``,
    ``code`` (a code span), ``math`` (raw, delimiter, content) and ``role`` (raw, name, content)."""
    out, buf, i = [], [], 0

    def flush():
        if buf:
            out.append(("text", "".join(buf)))
            buf.clear()

    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            buf.append(text[i:i + 2])
            i += 2
            continue
        if c == "{" and (m := _ROLE.match(text, i)):
            end = _closing_ticks(text, m.end(), len(m["ticks"]))
            if end >= 0:
                flush()
                out.append(("role", text[i:end + len(m["ticks"])], m["name"], text[m.end():end]))
                i = end + len(m["ticks"])
                continue
        if c == "`":
            n = len(text) - len(text[i:].lstrip("`")) - i
            end = _closing_ticks(text, i + n, n)
            if end >= 0:
                flush()
                out.append(("code", text[i:end + n]))
                i = end + n
            else:
                buf.append(text[i:i + n])
                i += n
            continue
        if c == "$":
            delim = "$$" if text.startswith("$$", i) else "$"
            end = _closing_dollar(text, i + len(delim), delim)
            if end > i + len(delim):
                flush()
                out.append(("math", text[i:end + len(delim)], delim, text[i + len(delim):end]))
                i = end + len(delim)
                continue
            buf.append(delim)
            i += len(delim)
            continue
        buf.append(c)
        i += 1
    flush()
    return out


def _closing_ticks(text, start, n):
    m = re.compile(rf"(?<!`)`{{{n}}}(?!`)").search(text, start)
    return m.start() if m else -1


def _closing_dollar(text, start, delim):
    i = start
    while (i := text.find(delim, i)) >= 0:
        if text[i - 1] != "\\" and not (delim == "$" and text.startswith("$$", i)):
            return i
        i += len(delim)
    return -1


# ---- what a document defines --------------------------------------------------------------

def scan(source):
    """Events in order of appearance: ``("title", text)`` for each heading, ``("equation", label)``,
    ``("exercise", label, numbered)``, ``("target", label, heading text or "")``, ``("doc", target)``."""
    yield from _scan(source.split("\n"))


def _scan(lines):
    found = blocks(lines)
    for n, block in enumerate(found):
        if block.kind == "text":
            for line in block.raw:
                if m := _HEADING.match(line):
                    yield "title", m["text"]
            yield from _scan_roles("\n".join(block.raw))
        elif block.kind == "math" and block.label:
            yield "equation", block.label
        elif block.kind == "target":
            after = next((b for b in found[n + 1:] if b.kind != "text" or "".join(b.raw).strip()), None)
            first = next((line for line in after.raw if line.strip()), "") if after and after.kind == "text" else ""
            heading = _HEADING.match(first)
            yield "target", block.label, heading["text"] if heading else ""
        elif (d := directive(block)) is not None:
            name, arg = d
            opts, body = options(block.body)
            yield from _scan_roles(arg)
            if name in EXERCISES:
                yield "exercise", opts.get("label"), "nonumber" not in opts
            if name == "math":
                if opts.get("label"):
                    yield "equation", opts["label"]
            elif name not in CODE and name != "code-cell":
                yield from _scan(body)


def _scan_roles(text):
    for token in inline_tokens(text):
        if token[0] == "role" and token[2] == "doc":
            yield "doc", _explicit(token[3])[1]


def _explicit(content):
    """``(text or None, target)`` of a role's content, ``text <target>`` or ``target``."""
    m = _EXPLICIT.match(content.strip())
    return (m["text"], m["target"].strip()) if m and m["text"] else (None, content.strip())


# ---- conversion ---------------------------------------------------------------------------

class Context:
    """Where a conversion happens: the book (its documents, labels, site URL, macros) and the document."""

    def __init__(self, book, doc, translator=None):
        self.book, self.doc = book, doc
        self.translator = translator  # coursetools.translate.Translator for another edition, or None

    def word(self, english):
        """A word the conversion writes itself ("Exercise", "Note"), in the notebook's language."""
        return self.translator.word(english) if self.translator else english

    def title(self, doc):
        return self.translator.title_of(doc) if self.translator else doc.title

    def tex(self, math):
        """Math with the book's MathJax macros expanded: Jupyter and Colab do not know them."""
        for name, value in self.book.macros.items():
            pattern = re.compile(rf"\\{re.escape(name)}(?![A-Za-z])")
            if isinstance(value, str):
                math = pattern.sub(lambda _m, v=value: v, math)
            elif pattern.search(math):
                raise PlainMarkdownError(f"the macro \\{name} takes arguments, which the student notebooks cannot "
                                         "expand: write it out in the chapter")
        return math

    def lookup(self, label, kind):
        own = getattr(self.doc, kind)
        return (self.doc, own[label]) if label in own else self.book.find_label(label, kind)

    def equation_number(self, label):
        if label not in self.doc.equations:
            raise PlainMarkdownError(f"equation {label} is not numbered in {self.doc.name}")
        return self.doc.equations[label]

    def eq(self, label, text=None):
        found = self.lookup(label, "equations")
        if found is None:
            raise PlainMarkdownError(f"{{eq}}`{label}`: no numbered equation has the label {label!r} "
                                     f"(write the equation as $$ ... $$ ({label}))")
        doc, number = found
        shown = text or self.book.eqref_format.replace("{number}", number)
        if doc.on_site and self.book.site_url:
            edition = self.translator.site_folder if self.translator else ""  # the Chinese site is in zh/
            return f"[{_link_text(shown)}]({self.book.site_url}{edition}{doc.page}#equation-{label})"
        return shown

    def doc_link(self, target, text=None):
        doc = self.book.resolve(target, self.doc)
        if doc is None:
            raise PlainMarkdownError(f"{{doc}}`{target}`: no document {target!r} in the table of contents "
                                     "(_toc.yml) beside the notebook")
        return f"[{_link_text(text or self.title(doc))}]({doc.notebook})"

    def ref(self, label, text=None, numbered=False):
        if found := self.lookup(label, "exercises"):
            doc, number = found
            shown = _number_text(text, number) or f"{self.word('Exercise')} {number}".strip()
            return shown if doc is self.doc else f"[{_link_text(shown)}]({doc.notebook})"
        if found := self.lookup(label, "equations"):
            return self.eq(label, _number_text(text, found[1]))
        if found := self.lookup(label, "targets"):
            doc, heading = found
            shown = text or heading
            if not shown:
                raise PlainMarkdownError(f"{{ref}}`{label}`: the target is not on a heading, so the reference "
                                         f"needs its own text: {{ref}}`text <{label}>`")
            href = "" if doc is self.doc else doc.notebook
            return f"[{_link_text(shown)}]({href}#{label})"
        role = "numref" if numbered else "ref"
        raise PlainMarkdownError(f"{{{role}}}`{label}`: no exercise, equation or (label)= target is named {label!r}")

    def link(self, url):
        """A relative Markdown link to another document of the book, made to point at its student notebook."""
        path, _, anchor = url.partition("#")
        if not path or re.match(r"^[A-Za-z][\w+.-]*:", url):
            return url
        doc = self.book.resolve(path, self.doc)
        if doc is None:
            raise PlainMarkdownError(f"the link {url!r} points at a file that is not written beside the student "
                                     "notebooks: link to a document of the book or to a full URL")
        return doc.notebook + (f"#{anchor}" if anchor else "")


def _number_text(text, number):
    return text.replace("{number}", number).replace("%s", number) if text else text


def _link_text(text):
    return text.replace("[", "\\[").replace("]", "\\]")


def convert(source, ctx):
    """The plain-Markdown form of one markdown cell's MyST ``source``."""
    return "\n".join(_convert(source.split("\n"), ctx))


def _convert(lines, ctx):
    out = []
    for block in blocks(lines):
        if block.kind == "text":
            kept = [line for line in block.raw if not _COMMENT.match(line) and line.strip() != "+++"]
            if kept:
                out += convert_inline("\n".join(kept), ctx).split("\n")
        elif block.kind == "target":
            out.append(f'{block.indent}<a id="{block.label}"></a>')
        elif block.kind == "math":
            out += _math(block.raw, block.indent, block.math, block.label, ctx)
        elif (d := directive(block)) is None:
            out += block.raw  # a code block: shown as it is
        else:
            out += [block.indent + line if line else line for line in _directive(*d, block.body, ctx)]
    return out


def convert_inline(text, ctx):
    """Roles, math macros and relative links of running text; code spans are left as they are."""
    out = []
    for token in inline_tokens(text):
        if token[0] == "role":
            out.append(_role(token[2], token[3], ctx))
        elif token[0] == "math":
            out.append(token[2] + ctx.tex(token[3]) + token[2])
        elif token[0] == "text":
            out.append(_LINK.sub(lambda m: f"{m['bang']}[{m['text']}]({ctx.link(m['url'])})", token[1]))
        else:
            out.append(token[1])
    return "".join(out)


def _role(name, content, ctx):
    text, target = _explicit(content)
    if name == "eq":
        return ctx.eq(target, text)
    if name == "doc":
        return ctx.doc_link(target, text)
    if name in ("ref", "numref"):
        return ctx.ref(target, text, numbered=name == "numref")
    if name == "math":
        return "$" + ctx.tex(content) + "$"
    if name in ("term", "index"):
        return text or target
    if name == "abbr":
        return re.sub(r"\s*\([^()]*\)\s*$", "", content)
    if name in ("sub", "sup", "kbd"):
        return f"<{name}>{content}</{name}>"
    if name in ("code", "literal", "samp", "file", "command", "program"):
        ticks = "`" * (max((len(r) for r in re.findall("`+", content)), default=0) + 1)
        return f"{ticks}{content}{ticks}" if not content.startswith("`") else f"{ticks} {content} {ticks}"
    raise PlainMarkdownError(f"the role {{{name}}} has no plain-Markdown form for Jupyter and Colab: {FIX}")


def _math(raw, indent, math, label, ctx):
    """A display equation; a labelled one gets the website's number as ``\\tag``. Lines broken with
    ``\\\\`` outside any environment are aligned, as the website does (MathJax alone would not break them)."""
    wrap = "\\\\" in math and "\\begin{" not in math
    if label is None and not wrap:
        return ctx.tex("\n".join(raw)).split("\n")
    body = ctx.tex(math).split("\n")
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise PlainMarkdownError(f"the equation {label or ''} is empty")
    if len(body) == 1:  # $$ y = 2 $$ (label)
        body = [indent + body[0].strip()]
    if wrap:
        body = [indent + "\\begin{aligned}", *body, indent + "\\end{aligned}"]
    tag = [f"{indent}\\tag{{{ctx.equation_number(label)}}}"] if label else []
    return [indent + "$$", *body, *tag, indent + "$$"]


def _math_directive(body, label, ctx):
    """```` ```{math} ````: equations separated by blank lines are aligned, as Sphinx does."""
    parts = [p.strip("\n") for p in "\n".join(body).split("\n\n") if p.strip()]
    if not parts:
        raise PlainMarkdownError("an empty {math} directive")
    tex = parts[0] if len(parts) == 1 else \
        "\\begin{aligned}\n" + " \\\\\n".join(parts) + "\n\\end{aligned}"
    return _math(["$$", tex, "$$"], "", tex, label, ctx)


def _directive(name, arg, body, ctx):
    opts, content = options(body)
    if name in EXERCISES:
        if "hidden" in opts:
            return []
        label = opts.get("label")
        if not label:
            raise PlainMarkdownError(f"the exercise {arg!r} has no :label:")
        found = ctx.lookup(label, "exercises")
        if found is None or found[0] is not ctx.doc:
            raise PlainMarkdownError(f"the exercise {label} is not numbered in {ctx.doc.name}")
        head = f"{ctx.word('Exercise')} {found[1]}".strip()
        title = convert_inline(arg, ctx)
        return [f"**{head} — {title}**" if title else f"**{head}**", "", *_convert(content, ctx)]
    if name in REMOVED:
        return []
    if name in ADMONITIONS:
        title = ctx.word(ADMONITIONS[name]) if ADMONITIONS[name] else convert_inline(arg, ctx) or ctx.word("Note")
        if ADMONITIONS[name] and arg:
            content = [arg, *content]  # a note's argument is the first line of its text
        inner = flatten_math("\n".join(_convert(content, ctx))).split("\n")
        return [">" if not line.strip() else "> " + line for line in [f"**{title}**", "", *inner]]
    if name == "math":
        return _math_directive(content, opts.get("label"), ctx)
    if name in CODE:
        ticks = "`" * max(3, max((len(r) for line in content for r in re.findall("`+", line)), default=0) + 1)
        return [ticks + (arg.split()[0] if arg else ""), *content, ticks]
    raise PlainMarkdownError(f"the directive {{{name}}} has no plain-Markdown form for Jupyter and Colab: {FIX}")


def flatten_math(text):
    """Every math span of ``text`` on one line. Jupyter cuts math out before it reads the Markdown, so
    math in a blockquote must not span lines (each line would start with ``>``)."""
    out = []
    for token in inline_tokens(text):
        if token[0] == "math" and "\n" in token[1]:
            if re.search(r"(?<!\\)%", token[3]):
                raise PlainMarkdownError("math with a % comment inside an admonition cannot be put on one line: "
                                         "remove the comment")
            out.append(token[2] + " ".join(line.strip() for line in token[3].split("\n")) + token[2])
        else:
            out.append(token[1])
    return "".join(out)


def number_title(source, number):
    """The first heading of ``source`` with the chapter number in front, as on the website."""
    if not number:
        return source
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if (m := _HEADING.match(line)) and len(m["hashes"]) == 1:
            lines[i] = f"# {'.'.join(map(str, number))}. {m['text']}"
            break
    return "\n".join(lines)


def md_cells(text):
    """The cells of a MyST Markdown page: its front matter dropped, ``+++`` lines as cell breaks,
    ```` ```{code-cell} ```` blocks as code cells."""
    from nbformat.v4 import new_code_cell, new_markdown_cell

    lines = text.split("\n")
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), None)
        lines = lines[end + 1:] if end is not None else lines
    cells, markdown = [], []

    def flush():
        source = "\n".join(markdown).strip("\n")
        if source.strip():
            cells.append(new_markdown_cell(source))
        markdown.clear()

    for block in blocks(lines):
        d = directive(block)
        if d and d[0] == "code-cell" and not block.indent:
            flush()
            cells.append(new_code_cell("\n".join(options(block.body)[1]).rstrip("\n")))
        elif block.kind == "text":
            for line in block.raw:
                if line.startswith("+++"):
                    flush()
                else:
                    markdown.append(line)
        else:
            markdown.extend(block.raw)
    flush()
    return cells

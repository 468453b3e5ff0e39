"""The student notebooks of the Chinese edition: the MyST of each markdown cell, translated with the
same gettext catalogues the Chinese website is built from (``locales/zh_CN/LC_MESSAGES``).

Sphinx cuts the text of a page into messages: a paragraph, a heading, a list item, a table cell, an
exercise title. :class:`Translator` cuts a markdown cell the same way, looks each piece up in the
page's catalogue (whitespace-insensitive, as Sphinx joins a paragraph's lines with spaces) and puts
the translation in its place. Code, display equations, labels and directive options are left as
they are. A piece with no translation is kept in English and counted in ``missing``, so a test
can demand that there is none.
"""

import re
from pathlib import Path

from coursetools import plainmd
from coursetools.i18n import PROTECTED

ROOT = Path(__file__).resolve().parents[1]
SITE_FOLDERS = {"zh_CN": "zh/"}  # where each edition's website lives under the English one
WORDS = {"zh_CN": {"Exercise": "练习", "Note": "注意", "Tip": "提示", "Hint": "提示", "Important": "重要",
                   "Warning": "警告", "Caution": "小心", "Attention": "注意", "Danger": "危险", "Error": "错误",
                   "See also": "另请参阅"}}
_ITEM = re.compile(r"^(?P<lead>[ \t]*(?:[-*+]|\d+[.)])[ \t]+)(?P<text>.*)$")
_QUOTE = re.compile(r"^(?P<lead>[ \t]*>[ \t]?)(?P<text>.*)$")


def _key(text):
    return re.sub(r"\s+", " ", text).strip()


class Translator:
    """Translations of one page (``docname`` such as ``chapters/01_chain_rule``) into ``lang``."""

    def __init__(self, docname, lang="zh_CN", locales=ROOT / "locales"):
        import polib

        path = Path(locales) / lang / "LC_MESSAGES" / f"{docname}.po"
        if not path.exists():
            raise FileNotFoundError(f"no catalogue {path}: run python -m coursetools.i18n update, then translate it")
        self.lang, self.missing, self.docname, self.locales = lang, [], docname, locales
        self.site_folder = SITE_FOLDERS.get(lang, "")
        self.table = {_key(e.msgid): e.msgstr for e in polib.pofile(str(path))
                      if e.msgstr.strip() and not e.obsolete and "fuzzy" not in e.flags}

    def title_of(self, doc):
        """The title of another page (a link's text), from that page's catalogue."""
        other = self if doc.name == self.docname else Translator(doc.name, self.lang, self.locales)
        return other.table.get(_key(doc.title), doc.title)

    def word(self, english):
        return WORDS.get(self.lang, {}).get(english, english)

    def text(self, english):
        """The translation of one message, or the English (recorded in ``missing``) when there is none."""
        key = _key(english)
        if not key or not re.search(r"[A-Za-z]{2,}", PROTECTED.sub(" ", key)):  # only math, code, roles
            return english
        if key in self.table:
            return self.table[key]
        self.missing.append(key)
        return english

    def source(self, source):
        """A markdown cell's MyST source with every message translated."""
        return "\n".join(self._lines(source.split("\n")))

    def _lines(self, lines):
        out = []
        for block in plainmd.blocks(lines):
            if block.kind == "text":
                out += self._text(block.raw)
            elif block.kind == "fence" and (d := plainmd.directive(block)) is not None and d[0] not in plainmd.CODE \
                    and d[0] != "math":
                out += self._directive(block, *d)
            else:
                out += block.raw  # code, display math, targets: the same in every language
        return out

    def _directive(self, block, name, arg):
        opts_end = len(block.body) - len(plainmd.options(block.body)[1])
        head = block.raw[0]
        if arg:
            head = head[: len(head) - len(head.lstrip())] + head.lstrip().replace(arg, self.text(arg), 1)
        body = block.body[:opts_end] + self._lines(block.body[opts_end:])
        return [head, *[block.indent + line if line else line for line in body], block.raw[-1]]

    def _text(self, lines):
        out, para = [], []

        def flush():
            if para:
                lead = para[0][0]
                text = self.text(" ".join(t for _, t in para))
                out.append(lead + text)
                para.clear()

        for line in lines:
            if not line.strip() or plainmd._COMMENT.match(line) or line.strip() == "+++":
                flush()
                out.append(line)
            elif m := plainmd._HEADING.match(line):
                flush()
                out.append(f"{m['hashes']} {self.text(m['text'])}")
            elif line.lstrip().startswith("|"):
                flush()
                cells = line.strip().strip("|").split("|")
                if all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in cells):
                    out.append(line)
                else:
                    out.append("| " + " | ".join(self.text(c.strip()) for c in cells) + " |")
            elif m := _ITEM.match(line):
                flush()
                para.append((m["lead"], m["text"]))
            elif m := _QUOTE.match(line):
                if not (para and para[0][0].lstrip().startswith(">")):
                    flush()
                para.append((m["lead"], m["text"]))
            else:  # a paragraph's first line, or the next line of a paragraph or list item
                para.append(("", line.strip()) if para else (line[: len(line) - len(line.lstrip())], line.strip()))
        flush()
        return out


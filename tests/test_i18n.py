"""The Chinese edition's checks refuse what they should: the check of the catalogues (untranslated,
fuzzy, changed math or references, a string with no entry, a translated display equation, a stale
catalogue), and the translation of a student notebook's MyST. The real catalogues are checked in full
by ``python -m coursetools.i18n check``, the first step of ``make test``."""
import re
from pathlib import Path

import polib
import pytest

from coursetools import i18n, translate

ROOT = Path(__file__).resolve().parents[1]
SOURCE = {
    "para": "The gradient $g = \\nabla L$ is checked with {eq}`eq-gradcheck-central` and `bk.gradcheck`.",
    "title": "Overview",
    "bold": "A **ring all-reduce** sends it.",
}
GOOD = {
    "para": "梯度 $g = \\nabla L$ 用 {eq}`eq-gradcheck-central` 和 `bk.gradcheck` 检验。",
    "title": "概览",
    "bold": "**环形全归约**（ring all-reduce）把它发送。",
}


def catalogue(folder, entries, name="page.po"):
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    for msgid, msgstr, flags in entries:
        po.append(polib.POEntry(msgid=msgid, msgstr=msgstr, flags=list(flags)))
    folder.mkdir(parents=True, exist_ok=True)
    po.save(str(folder / name))


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A template with two strings, and a catalogue folder the check reads instead of locales/."""
    pot = tmp_path / "pot"
    catalogue(pot, [(source, "", ()) for source in SOURCE.values()], "page.pot")
    monkeypatch.setattr(i18n, "CATALOGUES", tmp_path / "po")
    return pot, tmp_path / "po"


def test_a_complete_catalogue_passes(book):
    pot, po = book
    catalogue(po, [(SOURCE[k], GOOD[k], ()) for k in SOURCE])
    assert i18n.problems(pot) == []


@pytest.mark.parametrize("entries, words", [
    ([(SOURCE["para"], "", ()), (SOURCE["title"], GOOD["title"], ())], "untranslated"),
    ([(SOURCE["para"], GOOD["para"], ("fuzzy",)), (SOURCE["title"], GOOD["title"], ())], "fuzzy"),
    ([(SOURCE["para"], GOOD["para"].replace("\\nabla L", "\\nabla_\\theta L"), ()),
      (SOURCE["title"], GOOD["title"], ())], "math, code or a reference differs"),
    ([(SOURCE["para"], GOOD["para"].replace("{eq}`eq-gradcheck-central` 和 ", ""), ()),
      (SOURCE["title"], GOOD["title"], ())], "math, code or a reference differs"),
    ([(SOURCE["para"], GOOD["para"].replace("`bk.gradcheck`", "`bk.梯度检验`"), ()),
      (SOURCE["title"], GOOD["title"], ())], "math, code or a reference differs"),
    ([(SOURCE["para"], GOOD["para"], ()), (SOURCE["title"], GOOD["title"], ()),
      (SOURCE["bold"], "**环形全归约（ring all-reduce）**把它发送。", ())], "bold that would show as **"),
    ([(SOURCE["para"], GOOD["para"], ())], "has no entry"),
    ([(SOURCE["para"], GOOD["para"], ()), (SOURCE["title"], GOOD["title"], ()),
      ("\n\\frac{\\partial L}{\\partial w}\n", "\n\\frac{\\partial 损失}{\\partial w}\n", ())],
     "a display equation is translated"),
])
def test_an_incomplete_catalogue_is_refused_by_name(book, entries, words):
    pot, po = book
    catalogue(po, entries)
    found = i18n.problems(pot)
    assert any(words in line for line in found), found


def test_a_catalogue_for_a_page_the_book_no_longer_has_is_refused(book):
    pot, po = book
    catalogue(po, [(SOURCE[k], GOOD[k], ()) for k in SOURCE])
    catalogue(po, [("Old page", "旧页面", ())], "gone.po")
    assert any("no longer has" in line for line in i18n.problems(pot))


def test_no_display_equation_is_in_the_real_catalogues():
    """_ext/i18n_nodes.py keeps math blocks out: no entry is a display equation."""
    for path in (ROOT / "locales" / "zh_CN" / "LC_MESSAGES").rglob("*.po"):
        for entry in polib.pofile(str(path)):
            assert not entry.msgid.startswith("\n"), (path.name, entry.msgid[:60])
            assert not re.match(r"\s*\\(begin|frac)", entry.msgid), (path.name, entry.msgid[:60])


def test_the_translator_cuts_a_cell_as_sphinx_does(tmp_path):
    """A paragraph over several lines, a heading, a list item, a table cell and an exercise title are
    each one message; math, code and options stay; a message with no entry is recorded."""
    catalogue(tmp_path / "zh_CN" / "LC_MESSAGES", [
        ("Overview", "概览", ()), ("A paragraph over two lines with $x$.", "一个跨两行的段落，含 $x$。", ()),
        ("first item", "第一项", ()), ("cell", "单元格", ()), ("A title", "一个标题", ()),
        ("Body of the exercise.", "练习的正文。", ())], "page.po")
    t = translate.Translator("page", locales=tmp_path)
    source = ("## Overview\n\nA paragraph over\ntwo lines with $x$.\n\n- first item\n\n| cell |\n|---|\n\n"
              "$$\ny = x\n$$ (eq-y)\n\n```{exercise} A title\n:label: ex-a\n\nBody of the exercise.\n```\n\n"
              "```python\nprint('code')\n```\n\nNot in the catalogue at all.")
    out = t.source(source)
    for piece in ["## 概览", "一个跨两行的段落，含 $x$。", "- 第一项", "| 单元格 |", "|---|", "$$\ny = x\n$$ (eq-y)",
                  "```{exercise} 一个标题", ":label: ex-a", "练习的正文。", "print('code')"]:
        assert piece in out, (piece, out)
    assert t.missing == ["Not in the catalogue at all."]

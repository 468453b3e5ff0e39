"""The Chinese edition (反向传播：推导与实现), built from the same notebooks through gettext.

    python -m coursetools.i18n update        extract the text of every page and update the catalogues
                                             locales/zh_CN/LC_MESSAGES/*.po (new strings arrive empty,
                                             changed ones fuzzy); then translate those entries
    python -m coursetools.i18n check         refuse an incomplete edition: an entry untranslated or
                                             fuzzy, a string of the book with no entry, a display
                                             equation in a catalogue, an entry whose math, code or
                                             cross-references differ from its source, bold that
                                             would show as literal **
    python -m coursetools.i18n build         the Chinese site into _build/html/zh (after the English one)
    python -m coursetools.i18n config NAME   print the path of a generated configuration (gettext, zh)

Only prose is translated. Code cells and their outputs are the same in both editions (the Chinese
build executes the same notebooks); display equations are kept out of the catalogues altogether
(``_ext/i18n_nodes.py`` marks them untranslatable), and inline math, ``code``, roles such as
{eq}`label` and link targets must come back unchanged in every translation (``check``).
"""

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LANG = "zh_CN"
LOCALES = ROOT / "locales"
CATALOGUES = LOCALES / LANG / "LC_MESSAGES"
WORK = ROOT / "_build" / "i18n"
ZH_TITLE = "反向传播：推导与实现"
ZH_SITE = "zh"  # the Chinese site lives in _build/html/zh

# The pieces of a string that must survive translation verbatim.
PROTECTED = re.compile(r"\$\$.+?\$\$|\$[^$]+\$|``.+?``|`[^`]+`|\{[a-z]+\}`[^`]+`|\]\([^)]+\)|\*\*`[^`]+`\*\*")
HAN = re.compile(r"[\u4e00-\u9fff]")


def _jb():
    return str(Path(sys.executable).parent / "jupyter-book")


def write_config(name):
    """The book's own _config.yml, changed only where the edition needs it; returns its path."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config.setdefault("sphinx", {})
    ext = sphinx.get("local_extensions") or {}
    for key, path in ext.items():  # jupyter-book resolves them next to the config file
        ext[key] = str((ROOT / path).resolve())
    cfg = sphinx.setdefault("config", {})
    cfg.update(gettext_compact=False, gettext_location=False, gettext_uuid=False,
               locale_dirs=[str(LOCALES)])
    if name == "gettext":
        config["execute"]["execute_notebooks"] = "off"  # the text does not depend on the outputs
        cfg["nb_mime_priority_overrides"] = [["gettext", "text/latex", None]]  # no LaTeX output as a string
    elif name == "zh":
        config["title"] = ZH_TITLE
        cfg["language"] = LANG
        cfg["language_switch"] = {"label": "English", "prefix": "../", "hreflang": "en"}
    else:
        raise SystemExit(f"i18n: unknown configuration {name!r} (gettext, zh)")
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"_config.{name}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def extract():
    """Run Sphinx's gettext builder; return the folder of the .pot templates."""
    out = WORK / "gettext"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([_jb(), "build", str(ROOT), "--config", str(write_config("gettext")), "--builder", "custom",
                    "--custom-builder", "gettext", "--path-output", str(out), "-q"], check=True)
    return out / "_build" / "gettext"


def templates(pot_dir):
    return {p.relative_to(pot_dir).with_suffix(".po"): p for p in sorted(pot_dir.rglob("*.pot"))}


def update():
    """Extract, then merge every template into its catalogue (sphinx-intl keeps translations)."""
    pot_dir = extract()
    subprocess.run([str(Path(sys.executable).parent / "sphinx-intl"), "update", "-p", str(pot_dir),
                    "-d", str(LOCALES), "-l", LANG, "-w", "0"], check=True, stdout=subprocess.DEVNULL)
    import polib

    for path in CATALOGUES.rglob("*.po"):  # one format (no wrapping), no entries of deleted text
        if path.name.startswith("_"):  # _ui.po is written by hand
            continue
        po = polib.pofile(str(path), wrapwidth=0)
        for entry in po.obsolete_entries():
            po.remove(entry)
        po.metadata.update({"Project-Id-Version": "Backpropagation, Derived and Built", "Language-Team": LANG})
        po.header = (f"The Chinese edition ({ZH_TITLE}) of one page of Backpropagation, Derived and Built.\n"
                     "Update with `make i18n-update` after changing the English text; see the README.")
        po.metadata_is_fuzzy = False
        po.save(str(path))
    report(pot_dir)


def protected(text):
    return sorted(PROTECTED.findall(text))


def unrendered_emphasis(text):
    """Emphasis markers that stay literal text when the Markdown is rendered. In Chinese this happens
    when ``**`` meets full-width punctuation on the inside and a character on the outside
    (``**环形全归约（ring all-reduce）**把``): CommonMark then sees no closing delimiter."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    from mdit_py_plugins.myst_role import myst_role_plugin

    md = MarkdownIt("commonmark").use(dollarmath_plugin).use(myst_role_plugin)
    return [child.content for token in md.parse(text) for child in token.children or ()
            if child.type == "text" and ("**" in child.content or "__" in child.content)]


def problems(pot_dir=None):
    """Every reason the Chinese edition is incomplete, one line each."""
    import polib

    found = []
    pot_dir = pot_dir or extract()
    wanted = templates(pot_dir)
    for rel, pot in wanted.items():
        po_path = CATALOGUES / rel
        if not po_path.exists():
            found.append(f"{rel}: no catalogue (run python -m coursetools.i18n update)")
            continue
        po = polib.pofile(str(po_path))
        entries = {e.msgid: e for e in po if not e.obsolete}
        for source in polib.pofile(str(pot)):
            entry = entries.get(source.msgid)
            where = f"{rel}: {source.msgid[:60]!r}"
            if entry is None:
                found.append(f"{where}: the string has no entry (run python -m coursetools.i18n update)")
            elif not entry.msgstr.strip():
                found.append(f"{where}: untranslated")
            elif "fuzzy" in entry.flags:
                found.append(f"{where}: fuzzy (the source changed; check the translation, then drop the flag)")
            elif protected(entry.msgid) != protected(entry.msgstr):
                lost = set(protected(entry.msgid)) ^ set(protected(entry.msgstr))
                found.append(f"{where}: math, code or a reference differs from the source: {sorted(lost)[:3]}")
            elif unrendered_emphasis(entry.msgstr) and not unrendered_emphasis(entry.msgid):
                found.append(f"{where}: bold that would show as ** (put full-width punctuation outside the **)")
        for msgid, entry in entries.items():
            if msgid.lstrip().startswith(("\\begin", "\\frac")) or "\n" in msgid.strip("\n") and "\\" in msgid:
                if entry.msgstr and entry.msgstr != msgid:
                    found.append(f"{rel}: a display equation is translated: {msgid[:50]!r}")
    for po_path in sorted(CATALOGUES.rglob("*.po")):
        if po_path.name.startswith("_"):  # words the extensions write (_ui.po): complete, not extracted
            po = polib.pofile(str(po_path))
            found += [f"{po_path.name}: {e.msgid!r}: untranslated or fuzzy" for e in po
                      if not e.msgstr.strip() or "fuzzy" in e.flags]
        elif po_path.relative_to(CATALOGUES) not in wanted:
            found.append(f"{po_path}: a catalogue for a page the book no longer has (delete it)")
    return found


def report(pot_dir):
    import polib

    total = done = 0
    for rel in templates(pot_dir):
        po = polib.pofile(str(CATALOGUES / rel))
        live = [e for e in po if not e.obsolete]
        total += len(live)
        done += sum(1 for e in live if e.msgstr.strip() and "fuzzy" not in e.flags)
    print(f"i18n: {done} of {total} strings translated in {CATALOGUES.relative_to(ROOT)}")


def check():
    pot_dir = extract()
    found = problems(pot_dir)
    for line in found:
        print(f"i18n: PROBLEM {line}", file=sys.stderr)
    report(pot_dir)
    if found:
        raise SystemExit(f"i18n: the Chinese edition is incomplete ({len(found)} problems above)")
    print("i18n: the Chinese edition is complete")


def write_toc():
    """_toc.yml with its part captions translated: jupyter-book adds the table of contents after Sphinx
    has translated the page, so the captions (in the root page's catalogue) are put in here instead."""
    import polib

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    root = CATALOGUES / f"{toc['root']}.po"
    table = {e.msgid: e.msgstr for e in polib.pofile(str(root)) if e.msgstr and "fuzzy" not in e.flags}
    for part in toc.get("parts", []):
        if part.get("caption") not in table:
            raise SystemExit(f"i18n: the part caption {part.get('caption')!r} has no translation in {root}")
        part["caption"] = table[part["caption"]]
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "_toc.zh.yml"
    path.write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
    return path


def build(strict=False):
    """Build the Chinese site and put it at _build/html/zh (the English site must be there already)."""
    out = ROOT / "_build" / "zh"
    args = [_jb(), "build", str(ROOT), "--config", str(write_config("zh")), "--toc", str(write_toc()),
            "--path-output", str(out), "--keep-going"]
    if strict:
        args += ["-W", "-n"]
    subprocess.run(args, check=True)
    target = ROOT / "_build" / "html" / ZH_SITE
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(out / "_build" / "html", target)
    print(f"i18n: the Chinese site is in {target.relative_to(ROOT)}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m coursetools.i18n", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["update", "check", "build", "config"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--strict", action="store_true", help="build with -W -n (warnings are errors)")
    args = parser.parse_args(argv)
    if args.command == "update":
        update()
    elif args.command == "check":
        check()
    elif args.command == "build":
        build(args.strict)
    else:
        print(write_config(args.name or "zh"))


if __name__ == "__main__":
    main()

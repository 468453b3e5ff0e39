"""Status of one or more catalogues of the Chinese edition: what is left to translate, and what breaks.

    python scripts/po_status.py locales/zh_CN/LC_MESSAGES/chapters/01_chain_rule.po [...]

For each entry: untranslated, fuzzy, or a translation whose inline math, ``code``, roles
({eq}`label`, {doc}`page`) or link targets differ from the source. Exits 1 if any is found.
The full check of the edition, against freshly extracted strings, is ``python -m coursetools.i18n check``.
"""
import sys

import polib

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from coursetools.i18n import HAN, protected  # noqa: E402

bad = 0
for path in sys.argv[1:]:
    po = polib.pofile(path)
    live = [e for e in po if not e.obsolete]
    todo = [e for e in live if not e.msgstr.strip()]
    fuzzy = [e for e in live if "fuzzy" in e.flags]
    broken = [e for e in live if e.msgstr.strip() and protected(e.msgid) != protected(e.msgstr)]
    no_han = [e for e in live if e.msgstr.strip() and e.msgstr == e.msgid and HAN.search(e.msgid) is None
              and any(c.isalpha() for c in polib.unescape(e.msgid))]
    print(f"{path}: {len(live)} entries, {len(todo)} untranslated, {len(fuzzy)} fuzzy, "
          f"{len(broken)} with changed math/code/references, {len(no_han)} copied unchanged")
    for e in broken[:20]:
        lost = sorted(set(protected(e.msgid)) ^ set(protected(e.msgstr)))
        print(f"  CHANGED {e.msgid[:70]!r}: {lost[:4]}")
    bad += len(todo) + len(fuzzy) + len(broken)
sys.exit(1 if bad else 0)

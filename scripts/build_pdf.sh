#!/usr/bin/env bash
# Build the whole book as one PDF, with no TeX: the single-page HTML build printed by Debian's chromium.
#
#   scripts/build_pdf.sh [OUTPUT_ROOT]      (default: the repository; writes OUTPUT_ROOT/_build/pdf/book.pdf)
#   PDF_LANG=zh scripts/build_pdf.sh        the Chinese edition: _build/zh-pdf/_build/pdf/book.pdf, from the
#                                           catalogues in locales/, printed with the Noto CJK fonts
#
# The chapters are NOT executed again: the PDF shows the outputs stored in the notebooks, which
# nbval (`pytest chapters`, part of `make test`) proves are exactly what the current bpkit
# produces. Set PDF_EXECUTE=force to execute every chapter anyway (slower, needs no test run).
# Then checks the PDF: it exists, has more pages than the table of contents has documents, and its
# text holds no raw TeX (\( \[ $$), i.e. MathJax finished typesetting before the page was printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LANG_EDITION=${PDF_LANG:-en}
if [ "$LANG_EDITION" = zh ]; then DEFAULT_OUT="$ROOT/_build/zh-pdf"; else DEFAULT_OUT="$ROOT"; fi
OUT=$(realpath -m "${1:-$DEFAULT_OUT}")
PY=${PY:-$ROOT/.venv/bin/python}
JB=${JB:-$ROOT/.venv/bin/jupyter-book}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
EXECUTE=${PDF_EXECUTE:-off}
PDF="$OUT/_build/pdf/book.pdf"

command -v "$CHROMIUM" >/dev/null || { echo "build_pdf: $CHROMIUM not found (make setup-browser)" >&2; exit 1; }
command -v pdfinfo >/dev/null || { echo "build_pdf: pdfinfo not found (apt-get install poppler-utils)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The book's own _config.yml with only the execution mode changed (local extension paths made absolute,
# since jupyter-book resolves them next to the config file).
BASE_CONFIG="$ROOT/_config.yml"
TOC="$ROOT/_toc.yml"
if [ "$LANG_EDITION" = zh ]; then
    BASE_CONFIG=$("$PY" -m coursetools.i18n config zh)
    TOC=$("$PY" -c "from coursetools.i18n import write_toc; print(write_toc())")
fi
"$PY" - "$BASE_CONFIG" "$TMP/_config.yml" "$EXECUTE" <<'EOF'
import sys
from pathlib import Path
import yaml
src, dst, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
config = yaml.safe_load(src.read_text())
config.setdefault("execute", {})["execute_notebooks"] = mode
ext = config.get("sphinx", {}).get("local_extensions") or {}
for name, path in ext.items():
    ext[name] = str((src.parent / path).resolve())
dst.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
EOF

echo "build_pdf: single-page HTML (execute_notebooks: $EXECUTE)"
"$JB" build . --builder singlehtml --config "$TMP/_config.yml" --toc "$TOC" --path-output "$OUT" -q
ENTRY="$OUT/_build/singlehtml/$("$PY" -c "import yaml; print(yaml.safe_load(open('_toc.yml'))['root'])").html"
[ -f "$ENTRY" ] || { echo "build_pdf: $ENTRY was not built" >&2; exit 1; }

# Print styles for the printed copy only: wrap long code lines instead of clipping them behind a scrollbar.
"$PY" - "$ENTRY" <<'EOF'
import sys
from pathlib import Path
page = Path(sys.argv[1])
css = ("<style media='print'>pre, .highlight pre, code { white-space: pre-wrap; overflow-wrap: anywhere; }"
       " div.highlight, .cell_output, .output { overflow: visible !important; }"
       " ::-webkit-scrollbar { display: none; } p.language-switch { display: none; }</style>")
html = page.read_text()
if css not in html:
    page.write_text(html.replace("</head>", css + "\n</head>", 1))
EOF

echo "build_pdf: printing $ENTRY"
mkdir -p "$(dirname "$PDF")"
rm -f "$PDF"
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$TMP/profile" --virtual-time-budget=20000 --no-pdf-header-footer \
    --print-to-pdf="$PDF" "file://$ENTRY" 2>"$TMP/chromium.log" \
    || { cat "$TMP/chromium.log" >&2; exit 1; }
[ -s "$PDF" ] || { cat "$TMP/chromium.log" >&2; echo "build_pdf: no PDF written" >&2; exit 1; }

"$PY" - "$PDF" "$LANG_EDITION" <<'EOF'
import re, subprocess, sys
from pathlib import Path
import yaml
pdf = Path(sys.argv[1])
toc = yaml.safe_load(open("_toc.yml"))
count = lambda entries: sum(1 + count(e.get("sections", [])) for e in entries or [])
docs = 1 + count(toc.get("chapters")) + sum(count(part.get("chapters")) for part in toc.get("parts", []))
info = dict(line.split(":", 1) for line in subprocess.run(
    ["pdfinfo", pdf], capture_output=True, text=True, check=True).stdout.splitlines() if ":" in line)
pages = int(info["Pages"])
text = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True, check=True).stdout
problems = []
if pages <= docs:
    problems.append(f"only {pages} pages for {docs} documents")
for tex in ("\\(", "\\[", "$$"):
    if tex in text:
        at = text.index(tex)
        problems.append(f"raw TeX {tex!r} in the PDF text (MathJax did not finish?): {text[at - 30:at + 40]!r}")
if sys.argv[2] == "zh":
    # No boxes where glyphs should be. The text alone proves nothing: with no CJK font installed, chromium
    # prints DejaVu's empty box for every Chinese character and pdftotext still reads the characters back.
    # What differs is the fonts: chromium embeds the Noto CJK outlines (CFF) as Type 3 fonts, while the
    # boxes come from DejaVu alone. So: Chinese text, a CJK font installed, Type 3 fonts in the file,
    # every font embedded.
    fonts = subprocess.run(["pdffonts", pdf], capture_output=True, text=True, check=True).stdout.splitlines()[2:]
    han = len(re.findall(r"[\u4e00-\u9fff]", text))
    installed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    cjk = sorted({f.split(",")[0] for f in installed.splitlines() if "CJK" in f})
    type3 = [line for line in fonts if "Type 3" in line]
    if han < 1000:
        problems.append(f"only {han} Chinese characters in the text of the Chinese PDF")
    if not cjk:
        problems.append("no CJK font installed (apt-get install fonts-noto-cjk): the Chinese would print as boxes")
    if not type3:
        problems.append("no embedded CJK glyphs (Type 3 fonts) in the Chinese PDF: its Chinese is boxes")
    unembedded = [line.split()[0] for line in fonts if line.split()[-5:-4] == ["no"]]
    if unembedded:
        problems.append(f"fonts not embedded: {unembedded}")
    print(f"build_pdf: {han} Chinese characters; {len(type3)} embedded Type 3 fonts (CJK glyphs) of "
          f"{len(fonts)} fonts; CJK fonts installed: {', '.join(cjk[:2])}")
size = pdf.stat().st_size
print(f"build_pdf: {pdf} {pages} pages, {size / 1e6:.1f} MB ({docs} documents in the table of contents)")
for p in problems:
    print(f"build_pdf: PROBLEM {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

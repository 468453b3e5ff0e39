#!/usr/bin/env bash
# Install everything the course needs on a fresh Debian 12 / Python 3.11 machine.
#   scripts/setup.sh            Python packages into .venv (bpkit editable, pinned requirements)
#   scripts/setup.sh --browser  also Debian's chromium (browser test and PDF)
# Safe to run again: it does nothing when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STAMP="$VENV/.installed"

if [ "${1:-}" = "--browser" ] && { ! command -v chromium >/dev/null 2>&1 || ! command -v pdfinfo >/dev/null 2>&1 \
                                   || ! fc-list :lang=zh 2>/dev/null | grep -q .; }; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "setup: installing Debian's chromium, poppler-utils and fonts-noto-cjk (site test in a real browser, PDF, Chinese glyphs)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium poppler-utils fonts-noto-cjk fontconfig >/dev/null
fi

if [ ! -f "$STAMP" ] || [ requirements.txt -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    echo "setup: installing the pinned Python packages into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/pip" install -q -r requirements.txt 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
    "$VENV/bin/python" -c "import bpkit, numpy, torch, jupyter_book, nbval"  # fail loudly if the install failed
    touch "$STAMP"
fi

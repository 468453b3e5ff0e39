"""Run chapters top to bottom and store their outputs (what nbval then compares).

    .venv/bin/python scripts/execute_chapters.py                    # every chapter
    .venv/bin/python scripts/execute_chapters.py chapters/03_*.ipynb  # some

Each notebook runs in a fresh kernel with its folder as the working directory (as in the book
build and under nbval); consecutive writes to one stream are merged into one output and per-cell timestamps are dropped, so that re-running changes a stored
notebook only where an output changed. Prints the execution time of each chapter.
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

os.environ.setdefault("OMP_NUM_THREADS", "1")


def merge_consecutive_streams(outputs):
    """Join back-to-back writes to the same stream (the kernel may flush one print in pieces)."""
    merged = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if out.output_type == "stream" and prev is not None and prev.output_type == "stream" and prev.name == out.name:
            prev.text += out.text
        else:
            merged.append(out)
    return merged


def execute(path):
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.get("outputs"):
            cell.outputs = merge_consecutive_streams(cell.outputs)
    nbformat.write(nb, path)
    return time.perf_counter() - start


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted(Path(__file__).resolve().parent.parent.glob("chapters/*.ipynb"))
    for path in paths:
        print(f"{path.name:<34} {execute(path):5.1f} s", flush=True)

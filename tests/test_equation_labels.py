"""Every labelled equation of every chapter has its named test: ``eq-hidden-delta`` is tested by a
function whose name starts with ``test_eq_hidden_delta`` somewhere in ``tests/``."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
TEST_NAMES = {name for path in (ROOT / "tests").glob("test_*.py")
              for name in re.findall(r"^def (test_eq_\w+)", path.read_text(encoding="utf-8"), re.M)}


def labels(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    return re.findall(r":label:\s*(eq-[\w-]+)", text) + re.findall(r"\$\$\s*\((eq-[\w-]+)\)", text)


def test_the_chapters_label_equations():
    assert sum(len(labels(path)) for path in CHAPTERS) >= 90


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_labelled_equation_has_its_named_test(path):
    missing = [label for label in labels(path)
               if not any(name.startswith("test_" + label.replace("-", "_")) for name in TEST_NAMES)]
    assert not missing, f"{path.name}: no test_eq_... function for {missing}"

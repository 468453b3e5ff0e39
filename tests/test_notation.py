"""One symbol, one meaning: the symbols the book retired stay retired, and the notation page lists
the ones that replaced them.

- the loss is $L$; the number of layers is $D$, so no $\\delta^{(L)}$, $W^{(L)}$ or $n_L$;
- the finite-difference step is $h$ everywhere; $\\epsilon$ is Adam's constant, $\\epsilon_{\\text{norm}}$
  the normalisation constant, $\\zeta$ label smoothing: no $\\varepsilon$ is left;
- $\\lambda$ is the L2 / weight-decay strength only: curvatures are $q_i$, no $\\lambda_i$;
- $P$ counts parameters: the softmax probabilities are written $\\mathrm{softmax}(z)$;
- "upstream" names the gradient that arrives from the loss side, never a direction toward the input.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(ROOT.glob("chapters/*.ipynb")) + [ROOT / "notation.md", ROOT / "intro.md", ROOT / "instructors.md"]
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$|```\{math\}.*?```", re.S)


def markdown(page):
    if page.suffix == ".md":
        return page.read_text()
    cells = json.loads(page.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


RETIRED = {
    r"\{\(L[-+)]": "a layer index L: the output layer is D (L is the loss)",
    r"\bn_L\b|n_\{L-1\}": "n_L: the output width is n_D",
    r"\\varepsilon": "varepsilon: the finite-difference step is h",
    r"\\lambda_": "an indexed lambda: curvatures are q_i, lambda is the L2 strength",
    r"(?<![\\a-zA-Z_])P\s*-\s*(Y|\\tilde Y)": "P - Y: P counts parameters; write softmax(z) - Y",
}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_retired_symbols_do_not_come_back(page):
    math = " ".join(MATH.findall(markdown(page)))
    found = {why: re.findall(pattern, math) for pattern, why in RETIRED.items()}
    assert not {why: hits for why, hits in found.items() if hits}, page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_upstream_is_never_a_direction(page):
    text = markdown(page)
    assert not re.search(r"\*?upstream\*? of|downstream", text), page.name


def test_the_notation_page_lists_every_replacement():
    page = (ROOT / "notation.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| ")]
    for symbol in ["$D$", "$L$", "$h$", "$\\zeta$", "$\\epsilon$", "$\\epsilon_{\\text{norm}}$", "$\\lambda$",
                   "$\\tau$", "$K$", "$R$", "$P$", "$\\Phi^{(l)}_n$", "relative error", "upstream gradient"]:
        assert any(symbol in row.split("|")[1] for row in rows), symbol
    assert "$H$, $q_i$, $\\kappa$" in page

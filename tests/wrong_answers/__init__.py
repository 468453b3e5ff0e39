"""The catalogue of known wrong answers, one module per chapter (see tests/test_wrong_answers.py).

Each chapter module defines ``WRONG = {exercise label: [(source, phrase), ...]}`` and, if its
exercises have answers that are integers or names (which the automatic check cannot recognise in
a message), ``SECRETS = {exercise label: [text no message may contain], ...}``.
"""

from . import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch09

CHAPTERS = {
    "01_chain_rule": ch01,
    "02_computation_graph": ch02,
    "03_output_layer_delta": ch03,
    "04_hidden_layer_deltas": ch04,
    "05_gradient_check": ch05,
    "06_optimizers": ch06,
    "07_pytorch_comparison": ch07,
    "09_what_comes_next": ch09,
}

CATALOGUE = {stem: module.WRONG for stem, module in CHAPTERS.items()}
SECRETS = {label: texts for module in CHAPTERS.values() for label, texts in getattr(module, "SECRETS", {}).items()}

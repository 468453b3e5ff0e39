"""Tests for bpkit.display: chapters show bpkit's own source, never a copy. (No hypothesis properties.)"""

import inspect
import textwrap

from IPython.display import Code

import bpkit as bk


def test_show_source_returns_the_method_source_as_code():
    shown = bk.show_source(bk.Dense.backward)
    assert isinstance(shown, Code)
    assert shown.data.startswith("def backward(self, delta")  # dedented: reads like a function
    assert shown.data == textwrap.dedent(inspect.getsource(bk.Dense.backward))


def test_show_source_works_for_functions_and_classes():
    assert bk.show_source(bk.sigmoid).data == inspect.getsource(bk.sigmoid)
    shown = bk.show_source(bk.MSE)
    assert shown.data.startswith("class MSE(Loss):")
    assert shown.data == inspect.getsource(bk.MSE)


def test_show_source_highlights_as_python():
    html = bk.show_source(bk.relu)._repr_html_()
    assert "relu" in html and "<span" in html

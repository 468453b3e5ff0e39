"""The backward-pass stepper: its replay of the engine's backward pass, its HTML, and its clicks in chromium."""

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpkit.engine import Value
from bpkit.graph_stepper import stepper_html, steps_of


def small_network():
    x1, x2, w1, w2 = Value(0.5, "x1"), Value(-1.2, "x2"), Value(0.4, "w1"), Value(0.9, "w2")
    h = (x1 * w1 + x2 * w2).tanh()
    L = 0.5 * (h * w1 - Value(1.0, "y")) ** 2  # w1 is used twice: its gradient has two paths
    L.backward()
    return L


@settings(max_examples=40)
@given(st.lists(st.floats(-2, 2), min_size=3, max_size=3), st.lists(st.sampled_from("+*tse"), min_size=1, max_size=8))
def test_the_replay_gives_the_engines_gradients_bit_for_bit(xs, ops):
    a, b, c = (Value(x, name) for x, name in zip(xs, "abc"))
    v = a
    for op in ops:  # a random expression that reuses a, b and c
        v = {"+": lambda: v + b, "*": lambda: v * c, "t": lambda: v.tanh(), "s": lambda: v.sigmoid(),
             "e": lambda: (v * 0.1).exp() * a}[op]()
    v.backward()
    order, backward, grads = steps_of(v)
    assert grads == [node.grad for node in order]
    assert len(backward) == sum(len(node.parents) for node in order)


def test_the_html_shows_every_node_with_the_engines_gradient_and_is_deterministic():
    L = small_network()
    page = stepper_html(L)
    order, backward, _ = steps_of(L)
    assert page == stepper_html(L)
    assert len(re.findall(r'class="bp-node', page)) == len(order)
    assert re.findall(r'data-engine-grad="([^"]+)"', page) == [repr(node.grad) for node in order]
    assert f"step {len(order) + 1 + len(backward)} of {len(order) + 1 + len(backward)}" in page
    assert "http" not in page.replace('xmlns="http', "")  # nothing to fetch


def test_a_graph_whose_backward_has_not_run_is_refused():
    x = Value(2.0, "x")
    with pytest.raises(ValueError, match=r"backward\(\) has run exactly once"):
        stepper_html(x * x + 1)
    L = x * x
    L.backward()
    L.backward()  # the leaf's gradient accumulated twice
    with pytest.raises(ValueError, match=r"call L.backward\(\) once"):
        stepper_html(L)


def test_clicking_through_every_step_in_chromium_ends_at_the_engines_gradients(tmp_path):
    from playwright.sync_api import sync_playwright
    L = small_network()
    path = tmp_path / "stepper.html"
    path.write_text("<!doctype html><meta charset=utf-8><body>" + stepper_html(L), encoding="utf-8")
    total = int(re.search(r"step (\d+) of", stepper_html(L)).group(1))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.click("button[data-act=start]")
        assert page.inner_text(".bp-status") == f"step 0 of {total}"
        for k in range(1, total + 1):
            page.click("button[data-act=next]")
            assert page.inner_text(".bp-status") == f"step {k} of {total}"
        shown = page.eval_on_selector_all(".bp-node", "ns => ns.map(n => [n.dataset.grad, n.dataset.engineGrad])")
        page.click("button[data-act=prev]")
        assert "backward: grad of" in page.inner_text(".bp-explain")
        browser.close()
    assert not errors
    assert all(float(a) == float(b) for a, b in shown)

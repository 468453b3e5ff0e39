"""scripts/canary.py: the floors it reads, the requirement lists it installs, the verdict it prints.

Nothing here builds an environment (``make canary`` does)."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("canary", ROOT / "scripts" / "canary.py")
canary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(canary)

PYPROJECT = """
[project]
name = "toy"
dependencies = ["numpy>=1.24", "sympy"]

[project.optional-dependencies]
plot = ["matplotlib >= 3.7.1"]
data = ["Scikit_Learn>=1.3,<2"]
"""

REQUIREMENTS = """
# a comment
-e .
numpy==2.4.6
scikit-learn==1.9.1   # trailing comment
scipy==1.17.1
torch==2.13.0
matplotlib==3.11.2
Pygments==2.21.0
jupyter-book==1.0.4.post1
playwright==1.65.2
"""


def test_floors_are_the_lower_bounds_of_dependencies_and_extras():
    assert canary.floors(PYPROJECT) == {"numpy": "1.24", "matplotlib": "3.7.1", "scikit-learn": "1.3"}


def test_a_bare_name_declares_no_floor():
    assert "sympy" in canary.declared(PYPROJECT) and "sympy" not in canary.floors(PYPROJECT)


def test_pins_skip_comments_and_the_editable_install_and_normalize_names():
    pins = canary.pins(REQUIREMENTS)
    assert pins["scikit-learn"] == "1.9.1" and pins["pygments"] == "2.21.0"
    assert "." not in pins and "-e" not in pins and len(pins) == 8


def test_an_unpinned_requirement_is_refused():
    with pytest.raises(ValueError, match="requirements.txt pins every package"):
        canary.pins("numpy>=2\n")


def test_newest_leaves_the_four_libraries_unpinned_and_pins_everything_else():
    reqs = canary.requirement_list("newest", REQUIREMENTS, PYPROJECT)
    assert [r for r in reqs if r in canary.TRACKED] == list(canary.TRACKED)
    assert not any(r.startswith(tuple(f"{name}=" for name in canary.TRACKED)) for r in reqs)
    assert {"torch==2.13.0", "pygments==2.21.0", "jupyter-book==1.0.4.post1", "playwright==1.65.2"} <= set(reqs)
    assert len(reqs) == len(canary.pins(REQUIREMENTS))


def test_minimum_installs_each_declared_floor_exactly():
    reqs = canary.requirement_list("minimum", REQUIREMENTS, PYPROJECT)
    assert {"numpy==1.24", "matplotlib==3.7.1", "scikit-learn==1.3", "torch==2.13.0"} <= set(reqs)
    assert "scipy" in reqs  # no floor declared: pip picks it beside the others
    assert len(reqs) == len(set(canary.split_requirement(r)[0] for r in reqs))


def test_a_pin_replaces_the_version_in_either_environment():
    for env in canary.ENVIRONMENTS:
        reqs = canary.requirement_list(env, REQUIREMENTS, PYPROJECT, ["NumPy==1.26.4"])
        assert "numpy==1.26.4" in reqs and not any(r in ("numpy", "numpy==1.24") for r in reqs)
    with pytest.raises(ValueError, match="name==version"):
        canary.requirement_list("newest", REQUIREMENTS, PYPROJECT, ["numpy>=2"])


def test_an_unknown_environment_is_refused():
    with pytest.raises(ValueError, match="unknown environment 'oldest'"):
        canary.requirement_list("oldest", REQUIREMENTS, PYPROJECT)


def test_the_project_files_give_both_environments_the_pinned_torch():
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    torch = f"torch=={canary.pins(requirements)['torch']}"
    floors = canary.floors(pyproject)
    assert "numpy" in floors
    for env in canary.ENVIRONMENTS:
        reqs = canary.requirement_list(env, requirements, pyproject)
        assert torch in reqs
    minimum = canary.requirement_list("minimum", requirements, pyproject)
    assert {f"{name}=={version}" for name, version in floors.items()} <= set(minimum)


VERDICT = re.compile(r"canary (newest|minimum) \(numpy \S+, scipy \S+, scikit-learn \S+, matplotlib \S+, torch \S+\): "
                     r"(PASS \(\d+ chapters, \d+ tests(, \d+ skipped)?\)|FAIL: .+)( \[.+\])?")


def test_the_verdict_line():
    versions = {"numpy": "2.4.6", "scipy": "1.17.1", "scikit-learn": "1.9.1", "matplotlib": "3.11.2", "torch": "2.13.0"}
    line = canary.verdict("newest", versions, 9, 1350)
    assert line == ("canary newest (numpy 2.4.6, scipy 1.17.1, scikit-learn 1.9.1, matplotlib 3.11.2, "
                    "torch 2.13.0): PASS (9 chapters, 1350 tests)")
    failed = canary.verdict("minimum", versions, 9, 1350, failure="04_hidden_layer_deltas.ipynb: ValueError: x",
                            excluded=["08_layers_beyond_dense.ipynb"])
    assert failed.endswith("FAIL: 04_hidden_layer_deltas.ipynb: ValueError: x [excluded 08_layers_beyond_dense.ipynb]")
    for text in (line, failed, canary.verdict("newest", {}, 9, 1340, skipped=10)):
        assert VERDICT.fullmatch(text), text


def test_junit_summary_counts_and_names_the_first_failure(tmp_path):
    path = tmp_path / "unit.xml"
    path.write_text("""<testsuites><testsuite>
        <testcase classname="tests.test_a" name="test_ok"/>
        <testcase classname="tests.test_a" name="test_bad"><failure message="assert 1 == 2">trace</failure></testcase>
        <testcase classname="tests.test_b" name="test_later"><error message="ImportError: no yaml"/></testcase>
        <testcase classname="tests.test_b" name="test_skip"><skipped message="needs chromium"/></testcase>
        </testsuite></testsuites>""", encoding="utf-8")
    run, failed, skipped, first, reasons = canary.junit_summary(path)
    assert (run, failed, skipped) == (3, 2, 1)
    assert first == "tests.test_a::test_bad: assert 1 == 2"
    assert reasons == ["tests.test_b::test_skip: needs chromium"]


def test_a_hung_test_is_named_from_the_faulthandler_dump(tmp_path):
    log = tmp_path / "pytest.log"
    log.write_text("""....Timeout (0:10:00)!
Thread 0x00007fc6a7e70b80 (most recent call first):
  File "/usr/lib/python3.11/selectors.py", line 415 in select
  File "/work/_build/canary/tree/bpkit/parallel.py", line 83 in _start
  File "/work/_build/canary/tree/tests/test_parallel.py", line 67 in test_ddp_reaches_the_same_parameters
  File "/work/venv/lib/python3.11/site-packages/_pytest/python.py", line 187 in pytest_pyfunc_call
""", encoding="utf-8")
    assert canary.stuck_test(log) == "tests/test_parallel.py::test_ddp_reaches_the_same_parameters (line 67)"
    log.write_text("....F...\n", encoding="utf-8")
    assert canary.stuck_test(log) == "unknown test"

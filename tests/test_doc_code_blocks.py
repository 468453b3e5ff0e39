"""The code blocks of README.md, intro.md and instructors.md work as written.

Shell blocks: every ``make`` target named exists in the Makefile, and every ``.venv/bin/...``
command names a program or module that exists; the cheap, side-effect-free ones are run. Python
blocks are executed (a block that is a fragment, such as the stub the student generator writes,
is compared with what the code really produces). A block of printed output is reproduced.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

import bpkit as bk

ROOT = Path(__file__).parents[1]
DOCS = ["README.md", "intro.md", "instructors.md"]
FENCE = re.compile(r"^( *)(`{3,})(\w*)[^\n]*\n(.*?)^\1\2[ \t]*$", re.M | re.S)
MAKE_TARGETS = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))


def blocks(language):
    found = []
    for doc in DOCS:
        for match in FENCE.finditer((ROOT / doc).read_text(encoding="utf-8")):
            if match.group(3) == language:
                indent = len(match.group(1))
                body = "\n".join(line[indent:] for line in match.group(4).splitlines())
                found.append((doc, body))
    return found


def shell_commands():
    """``(document, argv)`` of every command; ``cd X`` is kept only as the folder later commands run in."""
    commands, made = [], {}
    for doc, body in blocks("sh"):
        folder = ""
        for line in body.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in filter(None, (p.strip() for p in line.split("&&"))):
                argv = shlex.split(part)
                if argv[0] == "cd":
                    assert argv[1] in made.get(doc, ()), f"{doc}: `cd {argv[1]}`, a folder no command above creates"
                    folder = argv[1] + "/"
                    continue
                made.setdefault(doc, set()).update(b.rstrip("/") for a, b in zip(argv, argv[1:]) if a == "-o")
                if folder and argv[0].startswith("../"):
                    argv[0] = argv[0][3:]  # relative to the folder cd entered, one level below the root
                commands.append((doc, argv))
    return commands


def test_the_documents_have_shell_and_python_blocks():
    assert len(shell_commands()) >= 12 and len(blocks("python")) >= 3


@pytest.mark.parametrize("doc, argv", shell_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_shell_command_names_something_that_exists(doc, argv):
    program = argv[0]
    if program == "make":
        assert argv[1] in MAKE_TARGETS, f"{doc}: `make {argv[1]}` but the Makefile has no such target"
        return
    assert program.startswith(".venv/bin/"), f"{doc}: unexpected command {argv}"
    name = program.removeprefix(".venv/bin/")
    if name == "python" and argv[1] == "-m":
        module = argv[2]
        __import__(module if module != "pytest" else "nbval")  # pytest --nbval-lax needs the nbval plugin
    elif name == "python":
        assert (ROOT / argv[1]).is_file(), f"{doc}: {argv[1]} does not exist"
    elif name == "pip":
        assert argv[1] == "install" and argv[2:] == ["jupyterlab"], argv
    elif name == "nbgrader":
        assert argv[1] in ("generate_assignment", "autograde"), argv
        assert (Path(sys.executable).parent / "nbgrader").is_file(), "nbgrader is not installed beside python"
    else:
        assert name == "jupyter" and argv[1] == "lab", f"{doc}: unexpected command {argv}"


@pytest.mark.parametrize("subcommand", ["list", "validate"])
def test_the_exercise_commands_of_the_guide_run(subcommand):
    argv = next(argv for _, argv in shell_commands() if argv[3:4] == [subcommand])
    result = subprocess.run([sys.executable] + argv[1:], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ex-chain-" in result.stdout or subcommand == "validate"


def test_the_stub_shown_in_the_guide_is_the_one_the_generator_writes(tmp_path):
    stub = next(body for doc, body in blocks("python") if "YOUR CODE HERE" in body)
    source = "def f(z):\n    ### BEGIN SOLUTION\n    return z\n    ### END SOLUTION\n"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("```{exercise} T\n:label: ex-chain-tanh\n\nDo it.\n```"),
                nbformat.v4.new_markdown_cell("```{solution-start} ex-chain-tanh\n:class: dropdown\n```"),
                nbformat.v4.new_code_cell(source),
                nbformat.v4.new_markdown_cell("```{solution-end}\n```")]
    nbformat.write(nb, tmp_path / "01_chain_rule.ipynb")
    subprocess.run([sys.executable, "-m", "coursetools.exercises", "student", str(tmp_path / "01_chain_rule.ipynb"),
                    "-o", str(tmp_path / "student")], cwd=ROOT, check=True, capture_output=True)
    student = nbformat.read(tmp_path / "student" / "01_chain_rule.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in student.cells if cell.cell_type == "code")
    for line in stub.strip().splitlines():
        assert "    " + line.strip() in code, (line, code)


def test_the_exercise_example_of_the_guide_runs_and_passes(capsys):
    example = next(body for doc, body in blocks("python") if "def my_tanh_prime" in body)
    exec(compile(example, "instructors.md", "exec"), {"np": np, "bk": bk})
    assert capsys.readouterr().out.startswith("✓ my_tanh_prime: correct")


def test_the_check_message_shown_in_the_guide_is_what_check_array_prints():
    shown = next(body for doc, body in blocks("text") if body.startswith("grad_W:"))
    expected = np.random.default_rng(0).normal(size=(3, 4)) + 3.0  # a gradient of N = 5 examples, 12 entries
    with pytest.raises(bk.check.CheckFailed) as failure:
        bk.check.array(expected * 5, expected, name="grad_W", batch_size=5)
    pattern = re.escape(shown.strip()).replace(re.escape("(0, 3)"), r"\(\d, \d\)")
    assert re.fullmatch(pattern, str(failure.value).strip()), str(failure.value)


def test_the_grading_test_of_the_guide_passes_a_good_submission_and_fails_a_broken_one(tmp_path):
    grading = next(body for doc, body in blocks("python") if "test_submission_runs_without_errors" in body)
    (tmp_path / "test_grading.py").write_text(grading)
    for learner, code in (("alice", "x = 1 + 1"), ("bob", "x = 1 / 0")):
        (tmp_path / "submissions" / learner).mkdir(parents=True)
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, tmp_path / "submissions" / learner / "01_chain_rule.ipynb")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_grading.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "1 failed, 1 passed" in result.stdout, result.stdout
    assert "ZeroDivisionError" in result.stdout

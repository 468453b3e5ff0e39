"""Run the course against the newest and the oldest library versions it claims to support.

    python3 scripts/canary.py                      # both environments (what `make canary` runs)
    python3 scripts/canary.py newest               # one of them
    python3 scripts/canary.py minimum --pin numpy==1.25.2   # try a candidate floor
    python3 scripts/canary.py --exclude 08_layers_beyond_dense.ipynb

The work tree is copied once to ``_build/canary/tree`` (so an edit made meanwhile cannot mix
in); each environment is a fresh virtual environment in ``_build/canary/<name>/venv``:

- ``newest``: the newest releases of numpy, scipy, scikit-learn and matplotlib;
- ``minimum``: every floor that ``pyproject.toml`` declares (``numpy>=X`` installs ``numpy==X``);
  a tracked library without a floor gets whatever pip picks beside the others.

Everything else in ``requirements.txt`` comes at its pin, torch included (the unit tests also use
the book's tools and playwright; the browser test needs Debian's chromium, ``make setup-browser``).
bpkit is installed from the copy (not editable). Then every chapter runs top to bottom in a fresh
kernel (its own assertions must hold; outputs are not compared), the executed notebooks are written
to ``_build/canary/<name>/chapters/``, and the unit tests run (``pytest tests --hypothesis-profile=ci
-q``). One verdict line per environment; the exit status is 1 if any environment failed. The logs
(pip, chapters, pytest) are beside the notebooks.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "_build" / "canary"
TRACKED = ("numpy", "scipy", "scikit-learn", "matplotlib")
ENVIRONMENTS = ("newest", "minimum")
# Seconds. A hang is a failure, not a wait: one cell, all chapters, one test (then its stack is dumped
# into the log), all unit tests. Each is several times what a loaded 2-core machine needs.
TIMEOUT = {"cell": 10 * 60, "chapters": 45 * 60, "test": 5 * 60, "tests": 30 * 60}


def normalize(name):
    """PEP 503 name: ``Scikit_Learn`` and ``scikit-learn`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_requirement(line):
    """``'numpy>=1.24'`` -> ``('numpy', '>=1.24')``; extras and markers are not used in this project."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*", line)
    if not match:
        raise ValueError(f"cannot read the requirement {line!r}")
    return normalize(match.group(1)), match.group(2).replace(" ", "")


def declared(pyproject_text):
    """Every requirement of ``[project]``: ``{name: specifier}``, optional dependencies included."""
    project = tomllib.loads(pyproject_text)["project"]
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return dict(split_requirement(line) for line in lines)


def floors(pyproject_text):
    """The lowest version each declared requirement admits: ``{'numpy': '1.24', ...}``.

    Only ``>=`` (and ``==``) count as a floor; a bare name claims every version and has none.
    """
    result = {}
    for name, spec in declared(pyproject_text).items():
        for clause in filter(None, spec.split(",")):
            match = re.fullmatch(r"(>=|==)([0-9][0-9A-Za-z.+]*)", clause)
            if match:
                result[name] = match.group(2)
    return result


def pins(requirements_text):
    """``requirements.txt`` as ``{name: version}`` for its ``name==version`` lines (``-e .`` skipped)."""
    result = {}
    for line in requirements_text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, spec = split_requirement(line)
        if not spec.startswith("=="):
            raise ValueError(f"requirements.txt pins every package with ==, not {line!r}")
        result[name] = spec[2:]
    return result


def requirement_list(env, requirements_text, pyproject_text, overrides=()):
    """What pip installs into the environment ``env`` (bpkit itself is added by the caller)."""
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}: expected one of {ENVIRONMENTS}")
    pinned = pins(requirements_text)
    if "torch" not in pinned:
        raise ValueError("requirements.txt has no torch==... pin")
    chosen = {name: version for name, version in pinned.items() if name not in TRACKED}
    chosen.update(dict.fromkeys(TRACKED))  # None: pip picks the newest release
    if env == "minimum":
        chosen.update(floors(pyproject_text))
    for override in overrides:
        name, spec = split_requirement(override)
        if not spec.startswith("=="):
            raise ValueError(f"--pin takes name==version, not {override!r}")
        chosen[name] = spec[2:]
    return [name if version is None else f"{name}=={version}" for name, version in chosen.items()]


def verdict(env, versions, chapters, tests, failure=None, skipped=0, excluded=(), notes=()):
    """The one line the canary prints for an environment."""
    shown = ", ".join(f"{name} {versions.get(name, '?')}" for name in (*TRACKED, "torch"))
    if failure:
        status = f"FAIL: {failure}"
    else:
        status = f"PASS ({chapters} chapters, {tests} tests"
        status += f", {skipped} skipped)" if skipped else ")"
    extra = [f"excluded {', '.join(excluded)}"] if excluded else []
    extra += list(notes)
    return f"canary {env} ({shown}): {status}" + (f" [{'; '.join(extra)}]" if extra else "")


def junit_summary(path):
    """``(tests run, failed, skipped, first failure, skip reasons)`` from a pytest junit XML file."""
    root = ET.parse(path).getroot()
    run = failed = skipped = 0
    first, reasons = None, []
    for case in root.iter("testcase"):
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
        if outcome is None:
            run += 1
        elif outcome.tag == "skipped":
            skipped += 1
            reasons.append(f"{test_id}: {outcome.get('message', '')}")
        else:
            run += 1
            failed += 1
            if first is None:
                message = (outcome.get("message") or outcome.text or "").strip().splitlines()
                first = f"{test_id}: {message[0] if message else outcome.tag}"
    return run, failed, skipped, first, reasons


# --- running an environment ----------------------------------------------------------------------

def sh(cmd, log, env=None, cwd=ROOT, timeout=None):
    """Run ``cmd``, append its output to ``log``; return the exit code, or None if it ran past ``timeout``
    seconds (then it is stopped, with every process it started)."""
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n")
        out.flush()
        proc = subprocess.Popen(list(map(str, cmd)), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None


def stuck_test(log):
    """The test that pytest's faulthandler found still running (the first frame in ``tests/``)."""
    text = Path(log).read_text(encoding="utf-8")
    dump = text[text.rfind("Timeout ("):] if "Timeout (" in text else ""
    frames = re.findall(r'File "[^"]*/(tests/test_\w+\.py)", line (\d+) in (\w+)', dump)
    return f"{frames[0][0]}::{frames[0][2]} (line {frames[0][1]})" if frames else "unknown test"


def last_error(log):
    lines = [line.strip() for line in Path(log).read_text(encoding="utf-8").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1][:300]


def child_env(venv):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PYTHONNOUSERSITE="1", PYTHONHASHSEED="0")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MPLBACKEND", "Agg")
    return env


# Not part of the course: environments, build output, caches, generated notebooks.
SNAPSHOT_SKIPS = (".git", ".venv", "venv", "_build", "student", ".hypothesis", ".pytest_cache",
                  ".ipynb_checkpoints", "__pycache__", "*.egg-info")


def snapshot(dest):
    """Copy the work tree once: both environments then install, execute and test the same files,
    and installing bpkit (which builds in its source folder) leaves the work tree as it was."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*SNAPSHOT_SKIPS), symlinks=True)
    return dest


def newest_available(python, env, names):
    """``{name: newest version the index offers this Python}``, from ``pip index versions``."""
    found = {}
    for name in names:
        out = subprocess.run([str(python), "-m", "pip", "index", "versions", name], capture_output=True, text=True, env=env)
        match = re.match(rf"\S+ \(([^)]+)\)", out.stdout)
        if match:
            found[name] = match.group(1)
    return found


def run_environment(env_name, tree, overrides, chapters, excluded):
    start = time.perf_counter()
    home = OUT / env_name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    venv, pip_log = home / "venv", home / "pip.log"
    python = venv / "bin" / "python"
    cenv = child_env(venv)

    def say(text):
        print(f"canary {env_name}: {text} ({time.perf_counter() - start:.0f} s)", flush=True)

    requirements = requirement_list(env_name, (tree / "requirements.txt").read_text(encoding="utf-8"),
                                    (tree / "pyproject.toml").read_text(encoding="utf-8"), overrides)
    (home / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    wanted = {name: spec[2:] or "newest" for name, spec in map(split_requirement, requirements)}
    if sh([sys.executable, "-m", "venv", venv], pip_log) != 0:
        return verdict(env_name, wanted, 0, 0, failure=f"python -m venv: {last_error(pip_log)}"), time.perf_counter() - start
    sh([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], pip_log, env=cenv)
    code = sh([python, "-m", "pip", "install", "--only-binary=:all:", "-r", home / "requirements.txt", tree],
              pip_log, env=cenv)
    if code != 0:
        return verdict(env_name, wanted, 0, 0, failure=f"pip install: {last_error(pip_log)}"), time.perf_counter() - start
    probe = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    versions = json.loads(subprocess.run([python, "-c", probe, *TRACKED, "torch"], capture_output=True,
                                         text=True, env=cenv, check=True).stdout)
    notes = [f"{name}: no floor declared, pip chose it" for name, spec in wanted.items()
             if env_name == "minimum" and name in TRACKED and spec == "newest"]
    if env_name == "newest":
        for name, latest in newest_available(python, cenv, TRACKED).items():
            if latest != versions[name]:
                notes.append(f"{name} {latest} is out but pip chose {versions[name]}")
    say("installed " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    # Chapters: executed by the environment's own Python (nbclient, kernel python3 of that venv).
    outdir = home / "chapters"
    outdir.mkdir()
    result_file = home / "chapters.json"
    code = sh([python, Path(__file__).resolve(), "--execute-into", outdir, result_file, *chapters],
              home / "chapters.log", env=cenv, cwd=outdir, timeout=TIMEOUT["chapters"])
    results = json.loads(result_file.read_text(encoding="utf-8")) if result_file.exists() else []
    chapter_failure = next((f"{r['chapter']}: {r['error']}" for r in results if r["error"]), None)
    if len(results) < len(chapters) and not chapter_failure:
        why = f"did not finish in {TIMEOUT['chapters'] // 60} min" if code is None else last_error(home / "chapters.log")
        chapter_failure = f"chapters stopped after {len(results)} of {len(chapters)}: {why}"
    say(f"chapters run: {sum(not r['error'] for r in results)} of {len(chapters)} passed")

    # Unit tests: from the root of the copy, so that its pytest configuration applies.
    junit = home / "unit.xml"
    code = sh([python, "-m", "pytest", "tests", "--hypothesis-profile=ci", "-q", f"--junitxml={junit}",
               "-o", f"faulthandler_timeout={TIMEOUT['test']}"],  # a test past it has its stack dumped to the log
              home / "pytest.log", env=cenv, cwd=tree, timeout=TIMEOUT["tests"])
    if junit.exists() and code is not None:
        run, failed, skipped, first, reasons = junit_summary(junit)
    else:
        run, failed, skipped, first, reasons = 0, 1, 0, None, []
    if first:
        first = f"test {first}"
    if code is None:
        first = f"the unit tests did not finish in {TIMEOUT['tests'] // 60} min, stuck in {stuck_test(home / 'pytest.log')}"
    elif code != 0 and not first:
        first = f"pytest exited {code}: {last_error(home / 'pytest.log')}"
    say(f"unit tests: {run - failed} of {run} passed, {skipped} skipped")
    for reason in reasons:
        print(f"canary {env_name}: skipped {reason}", flush=True)

    failure = chapter_failure or first
    if failure:
        failure += f" ({sum(not r['error'] for r in results)}/{len(chapters)} chapters, {run - failed}/{run} tests passed)"
    return verdict(env_name, versions, len(chapters), run, failure, skipped, excluded, notes), time.perf_counter() - start


def execute_into(outdir, results_path, paths):
    """Run inside the environment: execute each notebook in a fresh kernel, save it into ``outdir``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    results = []
    for path in map(Path, paths):
        start, error, nb = time.perf_counter(), None, None
        try:
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=TIMEOUT["cell"], kernel_name="python3", resources={"metadata": {"path": str(outdir)}}).execute()
        except CellExecutionError as exc:
            error = f"{exc.ename}: {exc.evalue}".strip().rstrip(":")
            if not exc.evalue.strip():  # a bare assert: name the line that failed
                arrows = re.findall(r"^-+> *\d+ (.*)$", re.sub(r"\x1b\[[0-9;]*m", "", exc.traceback), re.M)
                error += f" at `{arrows[-1].strip()}`" if arrows else ""
            error = error[:300]
        except (CellTimeoutError, DeadKernelError) as exc:
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        except Exception as exc:  # e.g. a notebook that is not valid JSON: report it, go on with the next
            error = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
        if nb is not None:
            nbformat.write(nb, Path(outdir) / path.name)
        results.append({"chapter": path.name, "error": error, "seconds": round(time.perf_counter() - start, 1)})
        print(f"{path.name:<36} {results[-1]['seconds']:6.1f} s  {error or 'ok'}", flush=True)
        Path(results_path).write_text(json.dumps(results, indent=1), encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("environments", nargs="*", metavar="ENV", help=f"any of {', '.join(ENVIRONMENTS)} (default: all)")
    parser.add_argument("--pin", action="append", default=[], metavar="NAME==VERSION",
                        help="install this version instead (e.g. to try a floor before declaring it)")
    parser.add_argument("--exclude", action="append", default=[], metavar="CHAPTER",
                        help="leave out one chapter file (named in the verdict)")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--execute-into"]:  # inside an environment: --execute-into DIR RESULTS NOTEBOOK...
        return execute_into(argv[1], argv[2], argv[3:])
    args = parser.parse_args(argv)
    if set(args.environments) - set(ENVIRONMENTS):
        parser.error(f"environments are {', '.join(ENVIRONMENTS)}, not {' '.join(args.environments)}")

    unknown = set(args.exclude) - {p.name for p in ROOT.glob("chapters/*.ipynb")}
    if unknown:
        parser.error(f"--exclude: no such chapter {sorted(unknown)}")
    total = time.perf_counter()
    tree = snapshot(OUT / "tree")
    chapters = [p for p in sorted(tree.glob("chapters/*.ipynb")) if p.name not in args.exclude]
    print(f"canary: copied the work tree to {tree.relative_to(ROOT)} ({len(chapters)} chapters)", flush=True)
    lines, failed = [], False
    for env_name in args.environments or ENVIRONMENTS:
        line, seconds = run_environment(env_name, tree, args.pin, chapters, args.exclude)
        print(line, flush=True)
        lines.append(f"{line}  ({seconds / 60:.1f} min)")
        failed |= ": FAIL" in line
    print(f"\ncanary: done in {(time.perf_counter() - total) / 60:.1f} min, logs in {OUT.relative_to(ROOT)}/")
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

# The two commands:  make book  (build the site into _build/html)   make test  (every test)
VENV ?= .venv
PY   := $(VENV)/bin/python
JB   := $(VENV)/bin/jupyter-book
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS ?= 1

.PHONY: book test setup setup-browser unit nbval strict-book site-test pdf student bench clean

setup:
	@bash scripts/setup.sh

setup-browser:
	@bash scripts/setup.sh --browser

## Build the book into _build/html (executes every chapter against the current bpkit).
book: setup
	$(JB) build . --keep-going

## Run every test: unit tests, every chapter under nbval, the strict book build.
test: setup-browser
	$(PY) -m pytest tests --hypothesis-profile=ci -q
	$(PY) -m pytest chapters -q
	$(JB) build . -W -n --keep-going

bench: setup
	$(PY) benchmarks/bench_engine.py

clean:
	rm -rf _build student

# The two commands:  make book  (build the site into _build/html)   make test  (every test)
VENV ?= .venv
PY   := $(VENV)/bin/python
JB   := $(VENV)/bin/jupyter-book
# Loopback is the only network inside: proves the site needs no CDN.
OFFLINE := unshare -rn sh -c 'ip link set lo up && exec "$$@"' sh
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS ?= 1

.PHONY: book test setup setup-browser unit nbval strict-book site-test pdf student nbgrader bench canary clean

setup:
	@bash scripts/setup.sh

setup-browser:
	@bash scripts/setup.sh --browser

## Build the book into _build/html (executes every chapter against the current bpkit).
book: setup
	$(JB) build . --keep-going

## Run every test: unit tests (student notebooks included), every chapter under nbval,
## the strict book build, the site in a real browser offline, and the PDF.
test: setup-browser
	@mkdir -p _build/test-reports
	$(PY) -m pytest tests --hypothesis-profile=ci -q --junitxml=_build/test-reports/unit.xml
	$(PY) -m pytest chapters -q --junitxml=_build/test-reports/chapters.xml
	$(JB) build . -W -n --keep-going
	$(MAKE) --no-print-directory site-test
	$(MAKE) --no-print-directory pdf
	@$(PY) scripts/test_summary.py _build/test-reports/unit.xml _build/test-reports/chapters.xml

## Every page of _build/html in chromium, with loopback as the only network.
site-test: setup-browser
	$(OFFLINE) $(PY) scripts/check_site.py _build/html

## The whole book as one PDF, no TeX: _build/pdf/book.pdf
pdf: setup-browser
	bash scripts/build_pdf.sh

## Student notebooks (solutions replaced by stubs, outputs cleared) into student/
student: setup
	$(PY) -m coursetools.exercises student chapters/ -o student/

## nbgrader source notebooks (solution and autograded test cells marked) in the course folder nbgrader/
nbgrader: setup
	$(PY) -m coursetools.grading chapters/ -o nbgrader/

## Speed against PyTorch CPU, measured in the same run (prints tables and ratios).
bench: setup
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_mlp.py
	$(PY) benchmarks/bench_bias_sum.py

## Fresh environments under _build/canary with the newest and with the minimum numpy, scipy,
## scikit-learn and matplotlib: every chapter top to bottom and the unit tests, one verdict each.
canary:
	python3 scripts/canary.py

clean:
	rm -rf _build student nbgrader

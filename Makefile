# The two commands:  make book  (build both editions into _build/html, the Chinese one in _build/html/zh)
#                    make test  (every test)
VENV ?= .venv
PY   := $(VENV)/bin/python
JB   := $(VENV)/bin/jupyter-book
# Loopback is the only network inside: proves the site needs no CDN.
OFFLINE := unshare -rn sh -c 'ip link set lo up && exec "$$@"' sh
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS ?= 1

.PHONY: book test setup setup-browser unit nbval strict-book site-test pdf student nbgrader bench canary clean i18n-update

setup:
	@bash scripts/setup.sh

setup-browser:
	@bash scripts/setup.sh --browser

## Build the book into _build/html (executes every chapter against the current bpkit), then the
## Chinese edition from the same notebooks and the catalogues in locales/ into _build/html/zh.
book: setup
	$(JB) build . --keep-going
	$(PY) -m coursetools.i18n build

## Run every test: unit tests (student notebooks included), every chapter under nbval,
## the strict book build, the site in a real browser offline, and the PDF.
test: setup-browser
	@mkdir -p _build/test-reports
	$(PY) -m coursetools.i18n check
	$(PY) -m pytest tests --hypothesis-profile=ci -q --junitxml=_build/test-reports/unit.xml
	$(PY) -m pytest chapters -q --junitxml=_build/test-reports/chapters.xml
	$(JB) build . -W -n --keep-going
	$(PY) -m coursetools.i18n build --strict
	$(MAKE) --no-print-directory site-test
	$(MAKE) --no-print-directory pdf
	@$(PY) scripts/test_summary.py _build/test-reports/unit.xml _build/test-reports/chapters.xml

## Every page of both editions (_build/html and _build/html/zh) in chromium, with loopback as the only network.
site-test: setup-browser
	$(OFFLINE) $(PY) scripts/check_site.py _build/html

## The whole book as one PDF, no TeX: _build/pdf/book.pdf, and the Chinese one: _build/zh-pdf/_build/pdf/book.pdf
pdf: setup-browser
	bash scripts/build_pdf.sh
	PDF_LANG=zh bash scripts/build_pdf.sh

## After changing text: extract every string and update locales/zh_CN/LC_MESSAGES/*.po (new entries
## empty, changed ones fuzzy). Translate those entries, then `make test` checks the edition is complete.
i18n-update: setup
	$(PY) -m coursetools.i18n update

## Student notebooks (solutions replaced by stubs, outputs cleared) into student/, and in Chinese into student-zh/
student: setup
	$(PY) -m coursetools.exercises student chapters/ -o student/
	$(PY) -m coursetools.exercises student chapters/ -o student-zh/ --lang zh_CN

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
	rm -rf _build student student-zh nbgrader

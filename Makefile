# tracedamon — set-up, demo and tests. `make demo` and `make test` work on a fresh clone:
# they create .venv, install the package with its dependencies, then do their job.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TD     := $(VENV)/bin/tracedamon
STAMP  := $(VENV)/.installed
DEMO   := out/demo

.PHONY: setup demo test lint bench clean browser perf-corpus

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,plots,dask]'
	touch $(STAMP)

demo: $(STAMP)
	@bash sample_traces/demo.sh $(TD) $(DEMO)

test: $(STAMP) browser lint perf-corpus
	$(PY) -m pytest -q -n 2 --dist loadfile

# the code's rules (pyproject.toml): pyflakes + pycodestyle, the import contracts (which
# package may import which), and the size limits (tools/size_allowlist.txt)
lint: $(STAMP)
	$(VENV)/bin/ruff check tracedamon tests bench tools
	$(VENV)/bin/ruff format --check tracedamon tests bench tools
	$(VENV)/bin/lint-imports
	$(PY) tools/check_sizes.py

# the perf.data files the tests read, recorded with the installed perf once per machine
# into ~/.cache/tracedamon/perf-corpus (tests/perf_corpus.py; the tests would make it on
# first use too). Without perf the tests that read it skip with the reason (fail under CI).
perf-corpus: $(STAMP)
	@$(PY) tests/perf_corpus.py --cache

# the HTML report's tests drive real headless browsers: Debian's chromium with
# chromium-driver, and firefox-esr; installed with apt-get where missing and possible (as
# root); elsewhere those tests skip with the reason (under CI they fail instead)
BROWSER_PKGS = chromium chromium-driver firefox-esr
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && \
	command -v firefox-esr >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			$(BROWSER_PKGS) >/dev/null) || echo "could not install $(BROWSER_PKGS)"; \
	else echo "browsers missing (apt-get install $(BROWSER_PKGS))"; fi

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf out .pytest_cache build *.egg-info

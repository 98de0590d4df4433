# tracedamon — set-up, demo and tests. `make demo` and `make test` work on a fresh clone:
# they create .venv, install the package with its dependencies, then do their job.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TD     := $(VENV)/bin/tracedamon
STAMP  := $(VENV)/.installed
DEMO   := out/demo

.PHONY: setup demo test bench clean browser perf-corpus

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,plots,dask]'
	touch $(STAMP)

demo: $(STAMP)
	@bash sample_traces/demo.sh $(TD) $(DEMO)

test: $(STAMP) browser perf-corpus
	$(PY) -m pytest -q -n 2 --dist loadfile

# the perf.data files the tests read, recorded with the installed perf once per machine
# into ~/.cache/tracedamon/perf-corpus (tests/perf_corpus.py; the tests would make it on
# first use too). Without perf the tests that read it skip with the reason (fail under CI).
perf-corpus: $(STAMP)
	@$(PY) tests/perf_corpus.py --cache

# the HTML report's tests drive a real headless Chromium: Debian's chromium and
# chromium-driver, installed with apt-get where missing and possible (as root); elsewhere
# those tests skip with the reason (under CI they fail instead)
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null) || echo "could not install chromium"; \
	else echo "chromium/chromedriver missing (apt-get install chromium chromium-driver)"; fi

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf out .pytest_cache build *.egg-info

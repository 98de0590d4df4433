# tracedamon — set-up, demo and tests. `make demo` and `make test` work on a fresh clone:
# they create .venv, install the package with its dependencies, then do their job.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TD     := $(VENV)/bin/tracedamon
STAMP  := $(VENV)/.installed
DEMO   := out/demo

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,plots,dask]'
	touch $(STAMP)

demo: $(STAMP)
	@bash sample_traces/demo.sh $(TD) $(DEMO)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf out .pytest_cache build *.egg-info

# Set-up and routine commands. Each target creates the local venv (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= results/demo

.PHONY: demo test test-all bench docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: $(VENV)/.installed  ## the main job: pendulum swing-up, GD vs Moreau GD, table + plot
	$(VENV)/bin/moreauctl demo --out $(OUT)

# pytest-xdist spreads the tests over the cores (compiled kernels are shared through the disk
# cache): the quick tier takes 2.5 min instead of 4.3 min on 2 cores with an empty cache.
test: $(VENV)/.installed  ## quick tier (what CI runs); pytest's exit 5 (no tests) is not a failure
	$(PY) -m pytest -q -n auto; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test-all: $(VENV)/.installed  ## every test, slow studies included
	$(PY) -m pytest -q -n auto -m ""

BENCH_ARGS ?=
bench: $(VENV)/.installed  ## peers benchmark (issue 5): benchmarks/results.{json,md}; BENCH_ARGS="--quick" for a smoke run
	$(PY) -m pip install -q -e ".[bench]" || echo "bench extras not installed: missing peers are skipped"
	$(PY) benchmarks/suite.py $(BENCH_ARGS)

# The documentation site into docs/_build/html, warnings as errors (a broken docstring
# cross-reference, a malformed table, an example that fails fails the build). -E: a fresh
# environment each time, since Sphinx re-reads only changed files and would not repeat the
# warnings of the others. MOREAUCTL_DOCS_GALLERY=False skips running the gallery scripts
# (CI does; they are the slow part).
MOREAUCTL_DOCS_GALLERY ?= True
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed  ## API reference + gallery into docs/_build/html (warnings are errors)
	rm -rf docs/generated  # autosummary's stubs: stale ones (a renamed module) would be built too
	MOREAUCTL_DOCS_GALLERY=$(MOREAUCTL_DOCS_GALLERY) $(PY) -m sphinx -E -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) results .pytest_cache docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst

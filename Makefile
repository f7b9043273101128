# Set-up and routine commands. Each target creates the local venv (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= results/demo

.PHONY: demo test test-all bench clean

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

clean:
	rm -rf $(VENV) results .pytest_cache

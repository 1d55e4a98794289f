# lmforge: `make demo` (quickstart on the embedded corpus; `make demo MINUTES=1` trains for 1 minute instead
# of 5) · `make test` · `make bench`.
# Each target creates .venv when missing and installs the extras it needs. torch==2.13.0 is installed
# first: on these machines it is a local CPU wheel, while a bare `torch` could pull a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test bench lint clean

$(VENV)/.torch:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) torch==2.13.0
	touch $@

$(VENV)/.installed-base: pyproject.toml $(VENV)/.torch
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch
	$(PIP) -e '.[dev]'
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(VENV)/bin/lmforge quickstart $(if $(MINUTES),--minutes $(MINUTES))

test: $(VENV)/.installed-dev
	$(PY) -m pytest  # tests/ and the docstring examples of src/lmforge (pyproject.toml)

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/run_all.py

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check conftest.py src tests benchmarks docs/*.py
	$(VENV)/bin/ruff format --check conftest.py src tests benchmarks docs/*.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs

# The two commands of the README: `make demo` and `make test`.
# Each creates the project's virtual environment (.venv) when it is missing,
# and installs only what it needs: the demo the runtime and matplotlib (its
# plot), the tests every extra (pandas, Spark, Dask) on top.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test lint venv clean docs clean-docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the demo: no pyspark, dask, pandas or test tools
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot]"
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,plot,pandas,spark,dask]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/skals demo --out skals-demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest skals tests

clean:
	rm -rf $(VENV) build dist *.egg-info skals-demo

# The documentation site: Sphinx with the docs extra in the same .venv.
# Warnings are errors and every cross-reference must resolve; the gallery's
# examples run during the build.
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean-docs:
	rm -rf docs/_build docs/auto_examples docs/generated docs/sg_execution_times.rst

# The two commands of the README: `make demo` and `make test`.
# Each creates the project's virtual environment (.venv) when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test lint venv clean docs clean-docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,plot,pandas,spark,dask]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
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

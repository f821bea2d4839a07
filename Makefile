# The two commands of the README: `make demo` and `make test`.
# Each creates the project's virtual environment (.venv) when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,plot,pandas]"
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

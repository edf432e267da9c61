# One command to install and start, one to test. Everything lives in ./.venv.
PYTHON ?= python3
VENV := .venv
# An exact pin: a looser one lets pip pull a different (CUDA) build on CPU-only machines.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: up test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/dermq up $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/dermq bench service $(ARGS)

clean:
	rm -rf $(VENV) data

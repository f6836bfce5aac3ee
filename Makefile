# Quickstart:  make demo  (train the default model on TinyShakespeare, print a sample; installs only torch, numpy, tqdm)
#              make test  (the whole test suite, slow suites included: what CI runs; installs the course stack too)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed

.PHONY: install install-demo demo test lint clean

# The package and what it needs to train and generate (requirements-demo.txt): about 1 GB, most of it PyTorch.
$(DEMO_STAMP): requirements-demo.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-demo.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# Everything else: Jupyter, nbgrader, matplotlib, the GPT-2 extras, test and lint tools (requirements.txt).
$(STAMP): $(DEMO_STAMP) requirements.txt
	$(BIN)/pip install -q -r requirements.txt
	touch $@

install-demo: $(DEMO_STAMP)

install: $(STAMP)

# A second `make demo` trains a new model; the previous one is kept as runs/default/ckpt.N.pt (see gptedu.checkpoint).
demo: $(DEMO_STAMP)
	$(BIN)/python -m gptedu train --out runs/default
	$(BIN)/python -m gptedu generate --checkpoint runs/default/ckpt.pt --prompt "ROMEO:" --max-new-tokens 500

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf .pytest_cache .ruff_cache
	@echo "runs/ (trained models) is kept; delete it yourself if you want it gone."

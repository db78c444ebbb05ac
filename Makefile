# The two commands of the README. Both set up first (idempotent), then run.
SHELL := /bin/bash
PY := .venv/bin/python
# corpora beside the project when present; override with PROBING_DATA_DIR=...
export PROBING_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1

.PHONY: setup train test bench lint

setup:
	bash scripts/setup.sh

train: setup
	$(PY) train.py probe=attn_plus_glove $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

bench: setup
	$(PY) benchmarks/extraction.py $(ARGS)

lint:
	$(PY) -m ruff check probing tests train.py analyze.py benchmarks

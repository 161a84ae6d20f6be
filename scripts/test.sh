#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs them all
# (lint and type checks included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check agent drivers playback display scripts tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest "$@"

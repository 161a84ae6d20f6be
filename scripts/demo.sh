#!/usr/bin/env bash
# The README's first command: install what is needed, then run the local demo
# (a real broker, the reference console and one agent). Extra arguments go to demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"

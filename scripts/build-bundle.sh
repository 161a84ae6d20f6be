#!/usr/bin/env bash
# Builds the offline bundle for `scripts/install.sh --bundle DIR`: the tcs-agent wheel
# and the wheels of every dependency, in one folder.
#
#   scripts/build-bundle.sh [OUT]        # default: dist/bundle
#
# Wheels with compiled code (numpy, cryptography, pillow) are made for the machine that
# runs this: build the bundle on the same architecture and Debian release as the devices
# (e.g. on one Raspberry Pi with internet, or in an arm64 Debian 12 container), then copy
# OUT and this source tree to each device.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-dist/bundle}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
rm -f "$OUT"/tcs_agent-*.whl
"$PY" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$OUT" .
echo "bundle: $(find "$OUT" -name '*.whl' | wc -l) wheels in $OUT"
echo "install on a device with: sudo scripts/install.sh --bundle $OUT"

#!/usr/bin/env bash
# Builds the offline bundle for `scripts/install.sh --bundle DIR`: the tcs-agent wheel
# and the wheels of every dependency, in one folder.
#
#   scripts/build-bundle.sh [OUT [TAR]]  # default: dist/bundle
#
# With TAR, the wheels are also packed into that one file: the release bundle that
# `tcs-agent update install` (and the agent.update command's MediaRef) takes.
# Wheels with compiled code (numpy, cryptography, pillow) are made for the machine that
# runs this: build the bundle on the same architecture and Debian release as the devices
# (e.g. on one Raspberry Pi with internet, or in an arm64 Debian 12 container), then copy
# OUT and this source tree to each device.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-dist/bundle}
TAR=${2:-}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
rm -f "$OUT"/tcs_agent-*.whl
"$PY" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$OUT" .
echo "bundle: $(find "$OUT" -name '*.whl' | wc -l) wheels in $OUT"
if [ -n "$TAR" ]; then
  (cd "$OUT" && find . -maxdepth 1 -name '*.whl' -printf '%f\n' | sort | tar -cf - -T -) > "$TAR"
  echo "release bundle: $TAR (sha256 $(sha256sum "$TAR" | cut -d' ' -f1))"
fi
echo "install on a device with: sudo scripts/install.sh --bundle $OUT"

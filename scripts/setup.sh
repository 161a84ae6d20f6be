#!/usr/bin/env bash
# Installs everything tcs-agent, its demo and its tests need on Debian 12:
# the Debian packages (with apt-get, when run as root) and the Python package with
# its test extras into ./.venv. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-pip        # the agent itself (Python >= 3.11)
  libportaudio2                           # sounddevice -> PortAudio
  libvlc5 vlc-plugin-base                 # python-vlc (live relay)
  pulseaudio pulseaudio-utils             # tests/demo: a null sink to record what was played
  espeak-ng                               # offline Vietnamese text-to-speech for alerts
  sox libsox-fmt-mp3 lame ffmpeg          # decoding media; making test fixtures
  mosquitto mosquitto-clients             # tests/demo: a real broker with the project's config
  socat                                   # tests: pty pairs standing in for serial modems
  postgresql                              # tests/bench: tcs-central on PostgreSQL (own cluster in a temp dir)
  chromium                                # tests: the HTML report opened headless, screenshot checked
  fonts-dejavu-core fonts-noto-core       # boards: every Vietnamese diacritic; Noto Sans Khmer/Thai/Lao/Cham
  openssl ca-certificates
  debootstrap                             # tests: a Debian 12 root to run scripts/install.sh in
  shellcheck                              # tests: the shell scripts stay shellcheck clean
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages (run as root, or: sudo apt-get install ${missing[*]})" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "setup: ready (.venv)"

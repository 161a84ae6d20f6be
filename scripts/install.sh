#!/usr/bin/env bash
# Installs tcs-agent on Raspberry Pi OS / Debian 12, as root, in one command:
#
#   sudo scripts/install.sh                      # from this source tree (needs internet)
#   sudo scripts/install.sh --bundle DIR         # offline, from wheels made by scripts/build-bundle.sh
#   sudo scripts/install.sh --uninstall [--purge]
#
# Safe to run again (an update of the same version changes nothing). What it does, in order:
# Debian packages; system user and group `tcs-agent` (member of audio, video, dialout,
# gpio, spi, i2c where those groups exist); the release in /opt/tcs-agent/releases/VERSION
# with its own venv, and /opt/tcs-agent/current pointing at it (the layout agent.update
# uses); /etc/tcs-agent with a config skeleton (never overwritten); /var/lib/tcs-agent;
# the systemd unit; the device key (`tcs-agent enroll`); `tcs-agent doctor` when the
# release has it. The service is enabled (and started, where systemd runs) only once
# `tcs-agent config check` passes: a config that still holds the example trust keys is
# refused. Full guide: docs/INSTALL.md.
set -euo pipefail

PREFIX=/opt/tcs-agent
ETC=/etc/tcs-agent
STATE=/var/lib/tcs-agent
DOCS=/usr/share/doc/tcs-agent
UNIT=/etc/systemd/system/tcs-agent.service
USER_NAME=tcs-agent
# Device access: sound, framebuffer, serial modem/relay, GPIO, SPI (MAX7219), I2C (RTC).
# Joined only where the group exists, so neither this script nor the unit ever names a
# group the system lacks (systemd refuses to start a unit with a missing group).
DEVICE_GROUPS=(audio video dialout gpio spi i2c)
# What the agent needs at run time (tests add nothing here: tests/installer reads this list).
APT_PACKAGES=(
  python3 python3-venv                    # the agent (Python >= 3.11) in its own venv
  libportaudio2                           # sounddevice -> PortAudio (speaker output)
  libvlc5 vlc-plugin-base                 # python-vlc (live relay)
  espeak-ng                               # offline Vietnamese text-to-speech for alerts
  ffmpeg                                  # decoding media into the cache's prepared form
  fonts-dejavu-core fonts-noto-core       # boards: fonts with every Vietnamese diacritic
  ca-certificates                         # TLS to the broker and media servers
  i2c-tools                               # scripts/enable-rtc.sh: is an RTC chip fitted?
)

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUNDLE=""
MODE=install
PURGE=0
NO_APT=0

usage() {
  cat <<EOF
usage: $0 [--bundle DIR] [--no-apt] | --uninstall [--purge] | --print-apt-packages

  --bundle DIR          install from the wheels in DIR (made by scripts/build-bundle.sh),
                        without internet
  --no-apt              do not install Debian packages (fail if one is missing)
  --uninstall           remove the release, the unit and the docs; keep config and data
  --purge               with --uninstall: also remove $ETC, $STATE and the user
  --print-apt-packages  print the Debian packages the agent needs, one per line
EOF
}

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) [ $# -ge 2 ] || die "--bundle needs a folder"; BUNDLE=$2; shift 2 ;;
    --no-apt) NO_APT=1; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    --print-apt-packages) printf '%s\n' "${APT_PACKAGES[@]}"; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
[ "$PURGE" = 0 ] || [ "$MODE" = uninstall ] || die "--purge only goes with --uninstall"
[ "$(id -u)" = 0 ] || die "run as root (sudo $0 $*)"

systemd_running() { [ -d /run/systemd/system ]; }

# ---------------------------------------------------------------- uninstall

uninstall() {
  if systemd_running; then
    systemctl disable --now tcs-agent.service 2>/dev/null || true
  elif command -v systemctl >/dev/null; then
    systemctl disable tcs-agent.service 2>/dev/null || true
  fi
  rm -f "$UNIT"
  if systemd_running; then systemctl daemon-reload; fi
  rm -rf "$PREFIX" "$DOCS"
  rm -f /usr/local/bin/tcs-agent
  if [ "$PURGE" = 1 ]; then
    rm -rf "$ETC" "$STATE"
    if getent passwd "$USER_NAME" >/dev/null; then userdel "$USER_NAME"; fi
    if getent group "$USER_NAME" >/dev/null; then groupdel "$USER_NAME"; fi
    say "removed tcs-agent, its configuration, its data and its user"
  else
    say "removed tcs-agent; kept $ETC, $STATE and user $USER_NAME (--purge removes them)"
  fi
}

if [ "$MODE" = uninstall ]; then
  uninstall
  exit 0
fi

# ---------------------------------------------------------------- packages

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$NO_APT" = 0 ] || die "missing Debian packages: ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- user and groups

getent group "$USER_NAME" >/dev/null || groupadd --system "$USER_NAME"
if ! getent passwd "$USER_NAME" >/dev/null; then
  useradd --system --gid "$USER_NAME" --home-dir "$STATE" --no-create-home \
    --shell /usr/sbin/nologin --comment "tcs-agent device agent" "$USER_NAME"
  say "created system user $USER_NAME"
fi
for group in "${DEVICE_GROUPS[@]}"; do
  if getent group "$group" >/dev/null; then usermod -a -G "$group" "$USER_NAME"; fi
done

# ---------------------------------------------------------------- the release

if [ -n "$BUNDLE" ]; then
  [ -d "$BUNDLE" ] || die "--bundle $BUNDLE is not a folder"
  BUNDLE=$(cd "$BUNDLE" && pwd)
  wheel=$(find "$BUNDLE" -maxdepth 1 -name 'tcs_agent-*.whl' | sort | tail -n 1)
  [ -n "$wheel" ] || die "$BUNDLE holds no tcs_agent-*.whl (make it with scripts/build-bundle.sh)"
  VERSION=$(basename "$wheel" | cut -d- -f2)
  PIP_SOURCE=(--no-index --find-links "$BUNDLE" "tcs-agent==$VERSION")
else
  [ -f "$SRC/pyproject.toml" ] || die "no source tree at $SRC and no --bundle given"
  VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$SRC/pyproject.toml" | head -n 1)
  PIP_SOURCE=("$SRC")
fi
[[ "$VERSION" =~ ^[0-9A-Za-z.+_-]+$ ]] || die "cannot tell the version to install (got '$VERSION')"

RELEASE=$PREFIX/releases/$VERSION
if [ -f "$RELEASE/.complete" ]; then
  say "release $VERSION already installed at $RELEASE"
else
  say "installing release $VERSION into $RELEASE"
  # Built in place (a venv records its own path in its scripts); only the marker
  # written last makes it a release, so an interrupted run is redone, never used.
  rm -rf "$RELEASE"
  mkdir -p "$PREFIX/releases"
  python3 -m venv "$RELEASE/venv"
  "$RELEASE/venv/bin/python" -m pip install -q --disable-pip-version-check "${PIP_SOURCE[@]}"
  touch "$RELEASE/.complete"
fi
# Switch atomically: a new symlink renamed over the old one.
ln -sfn "releases/$VERSION" "$PREFIX/current.new"
mv -T "$PREFIX/current.new" "$PREFIX/current"
chmod 0755 "$PREFIX" "$PREFIX/releases"
# agent.update installs releases beside this one and switches `current` as the agent
# (docs/INSTALL.md "Updates"); the guard rolls back a release that does not start.
chown "$USER_NAME:$USER_NAME" "$PREFIX" "$PREFIX/releases"
install -m 0755 "$SRC/scripts/update-guard.sh" "$PREFIX/update-guard"
AGENT=$PREFIX/current/venv/bin/tcs-agent
"$AGENT" --version >/dev/null || die "the installed release does not run: $AGENT --version"
ln -sfn "$AGENT" /usr/local/bin/tcs-agent

# ---------------------------------------------------------------- config, data, docs

install -d -o root -g "$USER_NAME" -m 0750 "$ETC"
if [ ! -e "$ETC/agent.toml" ]; then
  install -o root -g "$USER_NAME" -m 0640 "$SRC/config/agent.example.toml" "$ETC/agent.toml"
  say "wrote the config skeleton $ETC/agent.toml: edit it (device id, broker, trust keys)"
fi
install -d -o "$USER_NAME" -g "$USER_NAME" -m 0750 "$STATE"
install -d -m 0755 "$DOCS"
for doc in README.md docs/INSTALL.md; do
  install -m 0644 "$SRC/$doc" "$DOCS/$(basename "$doc")"
done

# ---------------------------------------------------------------- hardware clock

# A fitted DS3231-class RTC gives the Pi the time after a power cut with no network.
bash "$SRC/scripts/enable-rtc.sh" || say "could not check for an RTC (see above)"

# ---------------------------------------------------------------- the unit

install -m 0644 "$SRC/systemd/tcs-agent.service" "$UNIT"
if systemd_running; then systemctl daemon-reload; fi

# ---------------------------------------------------------------- key, checks, start

# As the service user, so the key is the agent's own (0600) and the config is read
# with the rights the service will have.
as_agent() { runuser -u "$USER_NAME" -- "$@"; }
if ! as_agent "$AGENT" enroll -c "$ETC/agent.toml"; then
  die "enroll failed: fix $ETC/agent.toml ([device] section) and run $0 again"
fi
if "$AGENT" doctor --help >/dev/null 2>&1; then
  as_agent "$AGENT" doctor -c "$ETC/agent.toml" || say "doctor found problems (above)"
fi
if ! as_agent "$AGENT" config check "$ETC/agent.toml"; then
  say "not enabling the service: fix the problems above in $ETC/agent.toml, then run $0 again"
  exit 3
fi
if command -v systemctl >/dev/null; then
  systemctl enable --quiet tcs-agent.service
  if systemd_running; then
    systemctl restart tcs-agent.service
    say "started; follow it with: journalctl -u tcs-agent -f"
  fi
fi
say "installed tcs-agent $VERSION"

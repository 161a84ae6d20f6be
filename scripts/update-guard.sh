#!/bin/sh
# tcs-agent update guard: the first ExecStartPre of tcs-agent.service, run as the
# service user, installed by scripts/install.sh as /opt/tcs-agent/update-guard (outside
# the releases, so a release that cannot even start cannot break it).
#
# While an agent.update is pending (PREFIX/update-pending.json, written before
# `current` moves), every start of the unit is counted. A new release that crashes,
# hangs until the watchdog kills it, or fails `config check` is started again by
# systemd (Restart=always); after MAX starts without it confirming itself (which
# removes the pending file), `current` goes back to the previous release, and the
# record is kept as update-rolled-back.json for that release to report (the `failed`
# ack of the update's jti; agent/updater.py). It never stops the unit from starting.
set -u
PREFIX=${TCS_AGENT_PREFIX:-/opt/tcs-agent}
MAX=${TCS_AGENT_UPDATE_MAX_STARTS:-3}
PENDING=$PREFIX/update-pending.json
STARTS=$PREFIX/update-starts

if [ ! -f "$PENDING" ]; then
  rm -f "$STARTS"
  exit 0
fi
echo start >>"$STARTS" || exit 0
n=$({ wc -l <"$STARTS"; } 2>/dev/null || echo 0)
if [ "$n" -le "$MAX" ]; then
  exit 0
fi
# Only a version-shaped name (the record is written by the agent: never trusted as a path).
previous=$(sed -n 's/.*"previous": *"\([0-9A-Za-z.+_!-]*\)".*/\1/p' "$PENDING" | head -n 1)
case $previous in
  "" | . | ..) echo "update-guard: no previous release to go back to" >&2; exit 0 ;;
esac
if [ ! -f "$PREFIX/releases/$previous/.complete" ]; then
  echo "update-guard: previous release $previous is not installed" >&2
  exit 0
fi
# The same atomic switch as the agent's: a new symlink renamed over `current`. A power
# cut before the rename leaves the pending file, so the next start does this again.
ln -sfn "releases/$previous" "$PREFIX/current.new" &&
  mv -T "$PREFIX/current.new" "$PREFIX/current" &&
  mv -f "$PENDING" "$PREFIX/update-rolled-back.json" &&
  rm -f "$STARTS" &&
  echo "update-guard: the new release did not start $MAX times; back to $previous" >&2
exit 0

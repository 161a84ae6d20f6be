#!/usr/bin/env bash
# Enables a DS3231-class real-time clock on a Raspberry Pi when one is fitted, so a Pi
# that boots after a power cut with no network knows the time (the agent trusts an RTC
# that set the clock: docs/FIELD.md). Called by scripts/install.sh; safe to run again.
#
# - An RTC the kernel already drives (/sys/class/rtc/rtc0): nothing to do.
# - Otherwise, a chip answering on I2C bus 1 at 0x68 (DS3231, DS1307, PCF8523 share it)
#   gets `dtoverlay=i2c-rtc,ds3231` added once to the firmware config; it takes effect at
#   the next reboot. Nothing is changed when no chip answers or the config is not there.
# Paths can be moved for tests: TCS_SYSFS_ROOT (default /sys), TCS_BOOT_CONFIG (default
# /boot/firmware/config.txt, else /boot/config.txt).
set -euo pipefail

SYSFS=${TCS_SYSFS_ROOT:-/sys}
CONFIG=${TCS_BOOT_CONFIG:-}
if [ -z "$CONFIG" ]; then
  for c in /boot/firmware/config.txt /boot/config.txt; do
    if [ -f "$c" ]; then CONFIG=$c; break; fi
  done
fi
say() { printf 'rtc: %s\n' "$*"; }

if [ -e "$SYSFS/class/rtc/rtc0" ]; then
  say "a hardware clock is already in use (rtc0)"
  exit 0
fi
if [ -z "$CONFIG" ] || [ ! -f "$CONFIG" ]; then
  say "no Raspberry Pi firmware config: not a Pi, nothing to enable"
  exit 0
fi
if grep -Eq '^[[:space:]]*dtoverlay=i2c-rtc' "$CONFIG"; then
  say "an RTC overlay is already configured in $CONFIG (reboot if it is new)"
  exit 0
fi
if ! command -v i2cget >/dev/null || ! i2cget -y 1 0x68 0x00 b >/dev/null 2>&1; then
  say "no RTC chip answers on I2C bus 1 at 0x68: the clock comes from NTP or the modem"
  exit 0
fi
printf '\n# tcs-agent: DS3231-class real-time clock on I2C (scripts/enable-rtc.sh)\ndtoverlay=i2c-rtc,ds3231\n' >> "$CONFIG"
say "RTC chip found at 0x68: enabled in $CONFIG; reboot for the kernel to use it"

"""The device configuration (PROTOCOL §7 and docs/ARCHITECTURE.md): parse, validate, freeze.

A mis-set field device is usually a typo made by a technician far from the
province, so validation is strict and *complete*: every problem in the file is
collected and reported at once as `FILE:section.key: what is wrong`, unknown keys
get a "did you mean" hint, and the agent refuses to start on any of them.

`parse_config` is the core: a function of the TOML text and the file's path. Its
only I/O is looking at the files the configuration names (keys, certificates,
password, the storage folder); those probes are grouped in one small section below
so the rest stays pure. `load_config` adds reading the file itself.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import tzhint
from agent.fsutil import read_only_medium
from agent.hosts import is_loopback
from agent.jws import decode_public_key
from agent.model import COMMAND_NAMES
from agent.update import DEFAULT_PREFIX

DisplayKind = Literal["none", "max7219", "framebuffer", "image-dir"]
DisplayPower = Literal["none", "cec", "dpms", "relay"]
ClockTrust = Literal["auto", "always", "never"]
Scheme = Literal["mqtt", "mqtts"]

DISPLAY_KINDS: Final[tuple[DisplayKind, ...]] = ("none", "max7219", "framebuffer", "image-dir")
DISPLAY_POWER: Final[tuple[DisplayPower, ...]] = ("none", "cec", "dpms", "relay")
VIDEO_CODECS: Final = ("h264", "hevc", "vp9", "av1", "mpeg2video", "mpeg4")
_BRIGHTNESS_STEP: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)=(\d{1,3})$")
_SPIDEV: Final = re.compile(r"^/dev/spidev\d+\.\d+$")
_VIDEO_SIZE: Final = re.compile(r"^(\d{2,5})x(\d{2,5})$")
CLOCK_TRUST: Final[tuple[ClockTrust, ...]] = ("auto", "always", "never")
DEFAULT_PORTS: Final[Mapping[str, int]] = {"mqtt": 1883, "mqtts": 8883}
ID_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")

# A trust glob that matches none of the §4 commands is almost certainly a typo
# ("alerts.*") and would silently grant nothing. agent.model holds only data, so the
# config validator still does not depend on the command parser.
# ... plus the one token a technician applies on the device, never from the broker
# (agent/floorcli.py), so a key may be scoped to it alone.
KNOWN_COMMANDS: Final[tuple[str, ...]] = (*COMMAND_NAMES, "clock.lower_floor")
_GLOB_CHARS: Final = re.compile(r"^[a-z0-9._*?-]+$")
_QUIET_HOURS: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_LANGUAGE: Final = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_MINUTES_PER_DAY: Final = 24 * 60
_ENROLL_HINT: Final = "run `tcs-agent enroll -c {file}` to create it"


class ConfigError(Exception):
    """The configuration cannot be used; `.problems` lists every reason, one per string."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(format_problems(problems))


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily local-time span `HH:MM-HH:MM`: start included, end excluded, may wrap midnight."""

    start_min: int
    end_min: int
    text: str

    def __post_init__(self) -> None:
        for name, value in (("start_min", self.start_min), ("end_min", self.end_min)):
            if not 0 <= value < _MINUTES_PER_DAY:
                raise ValueError(f"{name} must be a minute of the day (0-1439), not {value}")
        if self.start_min == self.end_min:
            raise ValueError("start equals end, which would be either no time or all day")

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """Parse `HH:MM-HH:MM` (24-hour clock); ValueError says what is wrong."""
        m = _QUIET_HOURS.match(text.strip())
        if m is None:
            raise ValueError(f"{text!r} is not HH:MM-HH:MM (24-hour clock, e.g. '22:00-05:00')")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        return cls(h1 * 60 + m1, h2 * 60 + m2, text.strip())

    def contains(self, minute_of_day: int) -> bool:
        """Whether local minute `minute_of_day` (0-1439) falls inside the quiet span."""
        if not 0 <= minute_of_day < _MINUTES_PER_DAY:
            raise ValueError(f"minute_of_day must be 0-1439, not {minute_of_day}")
        if self.start_min < self.end_min:
            return self.start_min <= minute_of_day < self.end_min
        return minute_of_day >= self.start_min or minute_of_day < self.end_min


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str
    groups: tuple[str, ...]
    timezone: ZoneInfo
    timezone_name: str
    key_file: Path


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    url: str
    scheme: Scheme
    host: str
    port: int
    tls: bool
    username: str | None = None
    password_file: Path | None = None
    # Kept out of repr so a logged config never shows it.
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = 60
    session_expiry_s: int = 604800
    connect_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class TrustKey:
    kid: str
    public_key: bytes  # raw 32-byte Ed25519
    commands: tuple[str, ...]  # glob patterns, e.g. "alert.*"
    max_priority: int

    def allows(self, cmd: str, priority: int) -> bool:
        """PROTOCOL §3.1: may this key issue `cmd` at `priority`?"""
        return priority <= self.max_priority and any(
            fnmatch.fnmatchcase(cmd, pattern) for pattern in self.commands
        )


@dataclass(frozen=True, slots=True)
class StorageConfig:
    dir: Path
    cache_quota_mb: int = 2048
    outbox_quota_mb: int = 64


@dataclass(frozen=True, slots=True)
class CacheConfig:
    max_kbps: int = 0  # 0 = no cap
    max_parallel: int = 2
    horizon_h: int = 48
    scrub_mb_per_min: int = 20
    missing_warn_min: int = 30
    # Media URLs naming loopback/LAN/link-local addresses would let a command probe
    # the device's own network (issue 7): refused unless a site (or a test on
    # 127.0.0.1) says otherwise.
    allow_private_hosts: bool = False


@dataclass(frozen=True, slots=True)
class AudioConfig:
    output: str = "default"
    monitor: str = ""
    quiet_hours: QuietHours | None = None
    sample_rate: int = 48000
    amp_lead_s: float = 2.0
    amp_idle_s: float = 30.0
    emergency_lead_s: float = 0.3  # max wait for a switched-off amplifier in an emergency
    tts_voice: str = "vi"
    live_ca_file: Path | None = None  # CA certificates trusted for https live streams
    live_require_tls: bool = True  # refuse plain http/rtsp/icecast live streams


@dataclass(frozen=True, slots=True)
class BrightnessStep:
    """From local minute `start_min` on (until the next step), brightness `level` %."""

    start_min: int
    level: int


@dataclass(frozen=True, slots=True)
class DisplayConfig:
    kind: DisplayKind = "none"
    path: str = ""
    width: int = 0
    height: int = 0
    bpp: int = 0  # framebuffer: 0 = ask the device; 16 (RGB565) or 32 (XRGB8888)
    rotate: int = 0  # quarter turns clockwise (luma's convention)
    block_orientation: int = 0  # max7219: 0, 90, -90, 180
    blocks_arranged_in_reverse_order: bool = False  # max7219 chains wired right to left
    contrast: int = 0x70  # max7219 intensity 0-255 at 100 % brightness
    reinit_s: float = 600.0  # max7219: full re-initialisation period
    fps: int = 30  # animation frame rate (marquee, ticker, video)
    brightness: tuple[BrightnessStep, ...] = ()  # by time of day; empty = 100 %
    on_hours: QuietHours | None = None  # screen on inside this span, deliberately off outside
    power_control: DisplayPower = "none"  # how the screen is switched: cec, dpms, relay or none
    backlight: str = ""  # /sys/class/backlight/NAME; "" = the first one present, if any
    dark_in_quiet_hours: bool = False  # boards stay lit in [audio] quiet_hours unless true
    video_codecs: tuple[str, ...] = ("hevc",)  # decoded in hardware (Pi 5: HEVC only)
    video_max: tuple[int, int] = (1920, 1080)
    relay: AmplifierConfig | None = None  # power_control = "relay": [display.relay]


@dataclass(frozen=True, slots=True)
class ReportConfig:
    heartbeat_s: int = 60


@dataclass(frozen=True, slots=True)
class ClockConfig:
    trust: ClockTrust = "auto"


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    play_cap_test: bool = False
    play_cap_exercise: bool = False
    language: str = "vi"


AmplifierKind = Literal["none", "serial-relay", "gpio"]
AMPLIFIER_KINDS: Final[tuple[AmplifierKind, ...]] = ("none", "serial-relay", "gpio")


@dataclass(frozen=True, slots=True)
class AmplifierConfig:
    """[amplifier]: the amplifier's power switch (drivers/amp_serial.py, drivers/amp_gpio.py)."""

    kind: AmplifierKind = "none"
    port: str = ""  # serial-relay: the relay board's tty (best /dev/serial/by-id/…)
    baud: int = 9600
    on_bytes: bytes = b""
    off_bytes: bytes = b""
    query_bytes: bytes = b""  # optional status query; with on_reply/off_reply: state read back
    on_reply: bytes = b""
    off_reply: bytes = b""
    chip: str = "/dev/gpiochip0"  # gpio: the GPIO character device
    line: int = -1  # gpio: line offset on that chip
    active_low: bool = False


@dataclass(frozen=True, slots=True)
class ModemConfig:
    """[modem]: a 3G/4G USB modem over AT commands (drivers/modem.py); off when usb_id = ""."""

    usb_id: str = ""  # "VVVV:PPPP" as `lsusb` prints it
    interface: int = 2  # USB interface of the AT port
    baud: int = 115200
    probe_s: int = 60
    timeout_s: float = 3.0
    reset_after: int = 3
    data_iface: str = ""  # network interface for data usage, e.g. "wwan0" or "ppp0"
    network_time: bool = True  # trust the network's time (NITZ) as a clock source

    @property
    def enabled(self) -> bool:
        return bool(self.usb_id)


@dataclass(frozen=True, slots=True)
class UpdateConfig:
    """`agent.update` (agent/updater.py): the releases root the installer lays out, and
    how long a new release must stay healthy before it is kept (else rolled back)."""

    root: Path = DEFAULT_PREFIX
    healthy_s: int = 60
    confirm_timeout_s: int = 900


@dataclass(frozen=True, slots=True)
class Config:
    source: Path
    device: DeviceConfig
    broker: BrokerConfig
    trust: tuple[TrustKey, ...]
    storage: StorageConfig
    cache: CacheConfig = CacheConfig()
    audio: AudioConfig = AudioConfig()
    display: DisplayConfig = DisplayConfig()
    report: ReportConfig = ReportConfig()
    clock: ClockConfig = ClockConfig()
    alerts: AlertsConfig = AlertsConfig()
    amplifier: AmplifierConfig = AmplifierConfig()
    modem: ModemConfig = ModemConfig()
    update: UpdateConfig = UpdateConfig()

    def trust_key(self, kid: str) -> TrustKey | None:
        return next((k for k in self.trust if k.kid == kid), None)


# ------------------------------------------------------------ the schema's key names

_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "device": ("id", "groups", "timezone", "key_file"),
    "broker": (
        "url",
        "username",
        "password_file",
        "ca_file",
        "cert_file",
        "key_file",
        "keepalive_s",
        "session_expiry_s",
        "connect_timeout_s",
    ),
    "trust": ("kid", "public_key", "commands", "max_priority"),
    "storage": ("dir", "cache_quota_mb", "outbox_quota_mb"),
    "update": ("root", "healthy_s", "confirm_timeout_s"),
    "cache": ("max_kbps", "max_parallel", "horizon_h", "scrub_mb_per_min", "missing_warn_min",
              "allow_private_hosts"),
    "audio": (
        "output",
        "monitor",
        "quiet_hours",
        "sample_rate",
        "amp_lead_s",
        "amp_idle_s",
        "emergency_lead_s",
        "tts_voice",
        "live_ca_file",
        "live_require_tls",
    ),
    "display": (
        "kind",
        "path",
        "width",
        "height",
        "bpp",
        "cascaded",
        "rotate",
        "block_orientation",
        "blocks_arranged_in_reverse_order",
        "contrast",
        "reinit_s",
        "fps",
        "brightness",
        "on_hours",
        "power_control",
        "backlight",
        "dark_in_quiet_hours",
        "video_codecs",
        "video_max",
        "relay",
    ),
    "report": ("heartbeat_s",),
    "clock": ("trust",),
    "alerts": ("play_cap_test", "play_cap_exercise", "language"),
    "amplifier": (
        "kind",
        "port",
        "baud",
        "on_bytes",
        "off_bytes",
        "query_bytes",
        "on_reply",
        "off_reply",
        "chip",
        "line",
        "active_low",
    ),
    "modem": (
        "usb_id",
        "interface",
        "baud",
        "probe_s",
        "timeout_s",
        "reset_after",
        "data_iface",
        "network_time",
    ),
}
_REQUIRED_SECTIONS: Final = ("device", "broker", "trust", "storage")


def known_keys() -> Mapping[str, tuple[str, ...]]:
    """Every section and its keys, nested tables by dotted name ("display.relay"), for
    `tcs-agent config get|set`."""
    return {**_KEYS, "display.relay": _KEYS["amplifier"]}


# ------------------------------------------------- problem collection and typed reads


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(value: object) -> str:
    """Name a TOML value's type for a message, with the value when it is short."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"a date/time ({value.isoformat()})"
    return type(value).__name__


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{self.file}:{where}: {what}")


T = TypeVar("T")


class _Table:
    """Typed reads of one TOML table that record a problem instead of raising.

    Every read returns a usable value (the default, or a placeholder for a missing
    required key) so validation carries on and finds the *next* problem too; the
    caller raises once at the end if anything was recorded.
    """

    def __init__(
        self,
        problems: _Problems,
        where: str,
        data: Mapping[str, Any],
        known: tuple[str, ...],
        *,
        present: bool = True,
    ) -> None:
        self.problems = problems
        self.where = where
        self.data = data
        self.known = known
        # A missing section is reported once, not once per required key.
        self.present = present
        self.failed: set[str] = set()  # keys already reported, so checks don't pile up

    def bad(self, key: str, what: str) -> None:
        self.failed.add(key)
        self.problems.add(f"{self.where}.{key}", what)

    def has(self, key: str) -> bool:
        return key in self.data

    def check_unknown(self) -> None:
        for key in self.data:
            if key not in self.known:
                self.bad(key, "unknown key" + _hint(key, self.known))

    def _typed(self, key: str, kind: type, what: str, required: bool) -> Any:
        """The value if present and of type `kind`, else None (and a problem if it is wrong)."""
        if key not in self.data:
            if required and self.present:
                self.bad(key, "missing required key")
            return None
        value = self.data[key]
        if kind is int:  # TOML true is not an integer, although Python's bool is one
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            self.bad(key, f"must be {what}, not {_describe(value)}")
            return None
        return value

    def text(self, key: str, default: str = "", *, required: bool = False) -> str:
        value = self._typed(key, str, "a string", required)
        return default if value is None else cast(str, value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._typed(key, bool, "a boolean (true or false)", False)
        return default if value is None else cast(bool, value)

    def integer(
        self,
        key: str,
        default: int,
        lo: int | None = None,
        hi: int | None = None,
        *,
        required: bool = False,
    ) -> int:
        value = self._typed(key, int, "an integer", required)
        if value is None:
            return default
        if not _in_range(value, lo, hi):
            self.bad(key, f"must be {_range_text(lo, hi)}, not {value}")
            return default
        return cast(int, value)

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        value = self._typed(key, float, "a number", False)
        if value is None:
            return default
        if not math.isfinite(value) or not lo <= value <= hi:
            self.bad(key, f"must be {_range_text(lo, hi)}, not {value}")
            return default
        return float(value)

    def strings(self, key: str, *, required: bool = False, nonempty: str = "") -> tuple[str, ...]:
        """An array of strings; `nonempty`, if given, is the complaint for an empty array."""
        items = self._typed(key, list, "an array of strings", required)
        if items is None:
            return ()
        if not items and nonempty:
            self.bad(key, nonempty)
        out: list[str] = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                out.append(item)
            else:
                self.bad(f"{key}[{i}]", f"must be a string, not {_describe(item)}")
        return tuple(out)

    def path(self, key: str, base: Path, *, required: bool = False) -> Path | None:
        """A file or folder path; relative ones resolve against the config's folder.

        An empty string means "not set", so a technician can blank an optional file.
        """
        value = self.text(key, required=required)
        if not value.strip():
            if key in self.data and required:
                self.bad(key, "must not be empty")
            return None
        if "\x00" in value:
            self.bad(key, "must not contain a NUL character")
            return None
        p = Path(value)
        return p if p.is_absolute() else base / p


def _in_range(value: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {lo:g} and {hi:g}"
    if lo is not None:
        return f"at least {lo:g}"
    return f"at most {hi:g}"


# --------------------------------------------- the only I/O: files the config names

_MAX_NAMED_FILE: Final = 1 << 20  # keys, certificates and passwords are a few KiB


class _FileProblem(Exception):
    pass


class _FileNotFound(_FileProblem):
    pass


def _read_named_file(path: Path) -> bytes:
    """Read a key, certificate or password file the configuration names.

    Read fully at load (not just stat'ed) because "exists but unreadable" and
    "readable but not what it should be" are exactly what breaks a device at 3 a.m.
    Raises _FileProblem with a sentence naming the path and the reason.
    """
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_NAMED_FILE + 1)
    except FileNotFoundError:
        raise _FileNotFound(f"{path} does not exist") from None
    except IsADirectoryError:
        raise _FileProblem(f"{path} is a directory, not a file") from None
    except PermissionError:
        raise _FileProblem(f"{path} is not readable (permission denied)") from None
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise _FileProblem(f"{path} cannot be read: {reason}") from None
    if len(data) > _MAX_NAMED_FILE:
        raise _FileProblem(f"{path} is larger than 1 MiB; is it the right file?")
    return data


def _directory_problem(path: Path) -> str | None:
    """Whether `path` is, or could be created as, a writable folder; None if fine.

    Walks up to the nearest existing ancestor and asks the kernel (access(2), which
    also reports a read-only SD card) whether we may write there. Creates nothing.
    """
    probe = path
    try:
        while not probe.exists():
            if probe.parent == probe:
                return f"{path} cannot be created: no existing parent folder"
            probe = probe.parent
        if not probe.is_dir():
            if probe == path:
                return f"{path} exists and is not a folder"
            return f"{path} cannot be created: {probe} is not a folder"
        if not os.access(probe, os.W_OK | os.X_OK):
            if probe == path:
                return f"{path} is not writable"
            return f"{path} cannot be created: {probe} is not writable"
    except (OSError, ValueError) as e:
        return f"{path} cannot be checked: {e}"
    return None


# --------------------------------------------------------------- sections (pure)


def _section(doc: Mapping[str, Any], name: str, problems: _Problems) -> _Table:
    data = doc.get(name)
    if data is None:
        if name in _REQUIRED_SECTIONS:
            problems.add(name, "missing section")
        return _Table(problems, name, {}, _KEYS[name], present=False)
    if not isinstance(data, dict):
        problems.add(name, f"must be a table ([{name}]), not {_describe(data)}")
        return _Table(problems, name, {}, _KEYS[name], present=False)
    return _Table(problems, name, data, _KEYS[name])


def _check_id(t: _Table, key: str, value: str) -> None:
    if value and not ID_PATTERN.match(value):
        t.bad(
            key,
            f"{value!r} is not a valid id: use 3-64 characters a-z, 0-9 and '-', "
            "starting with a letter or digit",
        )


def _device(t: _Table, base: Path) -> DeviceConfig:
    dev_id = t.text("id", required=True)
    _check_id(t, "id", dev_id)
    groups = t.strings(
        "groups",
        required=True,
        nonempty="must list at least one group (a device in none misses province-wide alerts)",
    )
    seen: set[str] = set()
    for i, group in enumerate(groups):
        _check_id(t, f"groups[{i}]", group)
        if group in seen:
            t.bad(f"groups[{i}]", f"duplicate group {group!r}")
        seen.add(group)
    tz_name = t.text("timezone", "Asia/Ho_Chi_Minh")
    tz = _zone(t, tz_name)
    key_file = t.path("key_file", base, required=True)
    return DeviceConfig(dev_id, groups, tz, tz_name, key_file or Path())


def _zone(t: _Table, name: str) -> ZoneInfo:
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # agent.tzhint: suggestions never move the clock (Hanoi is not Yangon).
        t.bad("timezone", tzhint.unknown_zone_problem(name))
        return ZoneInfo("UTC")
    inverted = tzhint.inverted_sign_problem(name)
    if inverted:
        t.bad("timezone", inverted)
    return zone


def _broker_url(t: _Table) -> tuple[str, Scheme, str, int]:
    url = t.text("url", required=True).strip()
    if not url:
        if t.has("url"):
            t.bad("url", "must not be empty")
        return url, "mqtts", "", DEFAULT_PORTS["mqtts"]
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        given = f"{parts.scheme}://" if parts.scheme else "(none)"
        t.bad(
            "url",
            f"scheme {given} is not supported; use mqtts://HOST:8883 "
            f"(or mqtt:// to a loopback host only){_hint(scheme, DEFAULT_PORTS)}",
        )
        return url, "mqtts", "", DEFAULT_PORTS["mqtts"]
    host = parts.hostname or ""
    if not host:
        t.bad("url", f"{url!r} names no host")
    if parts.username is not None or parts.password is not None:
        t.bad("url", "must not hold credentials; use broker.username and broker.password_file")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        t.bad("url", f"{url!r} must be just mqtts://HOST[:PORT], without a path or query")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        t.bad("url", f"{url!r} has an invalid port (1-65535)")
        port = DEFAULT_PORTS[scheme]
    if host and scheme == "mqtt" and not is_loopback(host):
        # Commands are signed, but passwords, reports and proofs would cross 3G in clear.
        shown = f"[{host}]" if ":" in host else host
        tls_port = 8883 if port == 1883 else port
        t.bad(
            "url",
            f"plain mqtt:// is only allowed to a loopback host, not {host!r}: "
            f"use mqtts://{shown}:{tls_port}",
        )
    return url, cast(Scheme, scheme), host, port


def _broker(t: _Table, base: Path, device_id: str) -> BrokerConfig:
    url, scheme, host, port = _broker_url(t)
    username = t.text("username") or None
    if username is not None and device_id and username != device_id:
        t.bad("username", f"{username!r} must equal device.id {device_id!r} (PROTOCOL §1)")
    password_file = t.path("password_file", base)
    password = None
    if password_file is not None:
        if username is None:
            t.bad("password_file", "is set but broker.username is not")
        password = _password(t, password_file)
    ca_file = t.path("ca_file", base)
    cert_file = t.path("cert_file", base)
    key_file = t.path("key_file", base)
    _tls_files(t, ca_file, cert_file, key_file)
    if scheme == "mqtt" and (ca_file or cert_file or key_file):
        t.bad("url", "is plain mqtt:// but TLS files are set; use mqtts://")
    return BrokerConfig(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        tls=scheme == "mqtts",
        username=username,
        password_file=password_file,
        password=password,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        keepalive_s=t.integer("keepalive_s", 60, 5, 1200),
        # PROTOCOL §1: at least a day, so commands sent during an outage still arrive.
        session_expiry_s=t.integer("session_expiry_s", 604800, 86400, 0xFFFFFFFF),
        connect_timeout_s=t.number("connect_timeout_s", 10.0, 1.0, 300.0),
    )


def _password(t: _Table, path: Path) -> str | None:
    try:
        raw = _read_named_file(path)
    except _FileProblem as e:
        t.bad("password_file", str(e))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        t.bad("password_file", f"{path} is not UTF-8 text")
        return None
    password = text.rstrip("\r\n")
    if not password:
        t.bad("password_file", f"{path} is empty")
        return None
    return password


def _tls_files(t: _Table, ca: Path | None, cert: Path | None, key: Path | None) -> None:
    if ca is not None:
        _pem_certificates(t, "ca_file", ca)
    if (cert is None) != (key is None):
        missing, given = ("key_file", "cert_file") if key is None else ("cert_file", "key_file")
        t.bad(missing, f"must be set too: broker.{given} is set and mTLS needs both")
    cert_obj = _pem_certificates(t, "cert_file", cert) if cert is not None else None
    key_obj = _pem_private_key(t, "key_file", key) if key is not None else None
    if cert_obj is not None and key_obj is not None:
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if cert_obj.public_key().public_bytes(*spki) != key_obj.public_key().public_bytes(*spki):
            t.bad("key_file", f"{key} does not match the certificate in {cert}")


def _pem_certificates(t: _Table, key: str, path: Path) -> x509.Certificate | None:
    try:
        data = _read_named_file(path)
    except _FileProblem as e:
        t.bad(key, str(e))
        return None
    try:
        return x509.load_pem_x509_certificates(data)[0]
    except ValueError:
        t.bad(key, f"{path} holds no PEM certificate ('-----BEGIN CERTIFICATE-----')")
        return None


def _pem_private_key(t: _Table, key: str, path: Path) -> Any:
    try:
        data = _read_named_file(path)
    except _FileProblem as e:
        t.bad(key, str(e))
        return None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        t.bad(key, f"{path} is encrypted; the agent needs an unencrypted key (mode 0600)")
    except (ValueError, UnsupportedAlgorithm):
        t.bad(key, f"{path} holds no PEM private key")
    return None


def _device_key(t: _Table, path: Path, file: str, *, must_exist: bool) -> None:
    """PROTOCOL §6.4: proofs are signed with this key, so the agent cannot run without it.

    Before enrolment (`must_exist=False`) a missing key is fine, but one that exists
    must still be valid: enroll would otherwise reuse a broken file.
    """
    try:
        data = _read_named_file(path)
    except _FileNotFound:
        if not must_exist:
            return
        t.bad("key_file", f"{path} does not exist; {_ENROLL_HINT.format(file=file)}")
        return
    except _FileProblem as e:
        t.bad("key_file", f"{e}; {_ENROLL_HINT.format(file=file)}")
        return
    if b"-----BEGIN PRIVATE KEY-----" not in data:
        t.bad("key_file", f"{path} is not a PEM PKCS#8 private key ('-----BEGIN PRIVATE KEY-----')")
        return
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        t.bad("key_file", f"{path} holds no valid PEM private key")
        return
    if not isinstance(key, Ed25519PrivateKey):
        t.bad("key_file", f"{path} holds a key that is not Ed25519")


def _trust(doc: Mapping[str, Any], problems: _Problems) -> tuple[TrustKey, ...]:
    data = doc.get("trust")
    if data is None:
        problems.add("trust", "missing section (at least one [[trust]] key is required)")
        return ()
    if not isinstance(data, list):
        problems.add("trust", f"must be an array of tables ([[trust]]), not {_describe(data)}")
        return ()
    if not data:
        problems.add("trust", "at least one [[trust]] key is required")
    keys: list[TrustKey] = []
    first_seen: dict[str, int] = {}
    for i, entry in enumerate(data):
        where = f"trust[{i}]"
        if not isinstance(entry, dict):
            problems.add(where, f"must be a table, not {_describe(entry)}")
            continue
        t = _Table(problems, where, entry, _KEYS["trust"])
        t.check_unknown()
        kid = t.text("kid", required=True)
        if t.has("kid") and isinstance(entry["kid"], str):
            if not kid.strip() or len(kid) > 64 or not kid.isprintable():
                t.bad("kid", f"{kid!r} must be 1-64 printable characters")
            elif kid in first_seen:
                t.bad("kid", f"duplicate kid {kid!r} (also trust[{first_seen[kid]}].kid)")
            else:
                first_seen[kid] = i
        public = b""
        encoded = t.text("public_key", required=True)
        if t.has("public_key") and isinstance(entry["public_key"], str):
            try:
                public = decode_public_key(encoded)
            except ValueError as e:
                t.bad("public_key", f"not a base64url Ed25519 public key: {e}")
        commands = t.strings(
            "commands",
            required=True,
            nonempty="must list at least one command pattern, e.g. 'schedule.set'",
        )
        for j, pattern in enumerate(commands):
            _check_glob(t, f"commands[{j}]", pattern)
        max_priority = t.integer("max_priority", 0, 0, 100, required=True)
        keys.append(TrustKey(kid, public, commands, max_priority))
    return tuple(keys)


def _check_glob(t: _Table, key: str, pattern: str) -> None:
    if not pattern:
        t.bad(key, "must not be empty")
    elif not _GLOB_CHARS.match(pattern):
        t.bad(key, f"{pattern!r} is not a command pattern (a-z, 0-9, '.', '-', '_', '*', '?')")
    elif not any(fnmatch.fnmatchcase(c, pattern) for c in KNOWN_COMMANDS):
        families = {c.split(".")[0] + ".*" for c in KNOWN_COMMANDS}
        hint = _hint(pattern, (*KNOWN_COMMANDS, *sorted(families)))
        t.bad(key, f"{pattern!r} matches no known command{hint}")


def _storage(t: _Table, base: Path) -> StorageConfig:
    folder = t.path("dir", base, required=True)
    if folder is not None:
        problem = _directory_problem(folder)
        # A card the kernel remounted read-only is a fault the agent serves through (its
        # state then lives in memory, agent/db.py), not a configuration mistake.
        if problem and not read_only_medium(folder):
            t.bad("dir", problem)
    return StorageConfig(
        dir=folder or Path(),
        cache_quota_mb=t.integer("cache_quota_mb", 2048, 1),
        outbox_quota_mb=t.integer("outbox_quota_mb", 64, 1),
    )


def _update(t: _Table) -> UpdateConfig:
    healthy = t.integer("healthy_s", 60, 5, 3600)
    timeout = t.integer("confirm_timeout_s", 900, 60, 86400)
    if timeout <= healthy:
        t.bad("confirm_timeout_s", f"must be longer than healthy_s ({healthy})")
    # Absolute only: the releases root is the installer's, not the config folder's.
    text = t.text("root", str(DEFAULT_PREFIX))
    if not text.startswith("/") or "\x00" in text:
        t.bad("root", f"must be an absolute path, not {text!r}")
        text = str(DEFAULT_PREFIX)
    return UpdateConfig(root=Path(text), healthy_s=healthy, confirm_timeout_s=timeout)


def _cache(t: _Table) -> CacheConfig:
    return CacheConfig(
        max_kbps=t.integer("max_kbps", 0, 0),
        max_parallel=t.integer("max_parallel", 2, 1, 16),
        horizon_h=t.integer("horizon_h", 48, 1, 24 * 31),
        scrub_mb_per_min=t.integer("scrub_mb_per_min", 20, 0),
        missing_warn_min=t.integer("missing_warn_min", 30, 0),
        allow_private_hosts=t.boolean("allow_private_hosts", False),
    )


def _audio(t: _Table, base: Path) -> AudioConfig:
    output = t.text("output", "default")
    if t.has("output") and not output.strip():
        t.bad("output", 'must not be empty (use "none" for a device without speakers)')
    quiet = _span(t, "quiet_hours")
    voice = t.text("tts_voice", "vi")
    if t.has("tts_voice") and not voice.strip():
        t.bad("tts_voice", "must not be empty")
    live_ca = t.path("live_ca_file", base)
    if live_ca is not None:
        _pem_certificates(t, "live_ca_file", live_ca)
    sample_rate = t.integer("sample_rate", 48000, 8000, 192000)
    if output.strip().lower() != "none":
        # Ask the engine what it accepts, so `config check` refuses what `run` would.
        from playback.engine import AudioEngine

        for key, why in AudioEngine.settings_problems(sample_rate=sample_rate).items():
            t.bad(key, why)
    return AudioConfig(
        output=output,
        monitor=t.text("monitor"),
        quiet_hours=quiet,
        sample_rate=sample_rate,
        amp_lead_s=t.number("amp_lead_s", 2.0, 0.0, 60.0),
        amp_idle_s=t.number("amp_idle_s", 30.0, 0.0, 86400.0),
        emergency_lead_s=t.number("emergency_lead_s", 0.3, 0.0, 10.0),
        tts_voice=voice,
        live_ca_file=live_ca,
        live_require_tls=t.boolean("live_require_tls", True),
    )


def _display(t: _Table, base: Path) -> DisplayConfig:
    kind = t.text("kind", "none")
    if kind not in DISPLAY_KINDS:
        t.bad(
            "kind",
            f"must be one of {', '.join(DISPLAY_KINDS)}, not {kind!r}" + _hint(kind, DISPLAY_KINDS),
        )
        kind = "none"
    path_text = t.text("path")
    cascaded = t.integer("cascaded", 0, 0, 64)
    if cascaded and kind != "max7219":
        t.bad("cascaded", f"is for kind 'max7219' only, not {kind!r}")
    width = t.integer("width", 0, 0, 4096)
    height = t.integer("height", 0, 0, 4096)
    if cascaded and "cascaded" not in t.failed:
        # luma's convention: `cascaded` modules in one row of 8x8 blocks.
        if (width and width != cascaded * 8) or (height and height != 8):
            t.bad(
                "cascaded",
                f"{cascaded} modules make a {cascaded * 8}x8 panel, but width x height is "
                f"{width}x{height}; set one or the other",
            )
        width, height = cascaded * 8, 8
    bpp = t.integer("bpp", 0)
    if bpp not in (0, 16, 32) and "bpp" not in t.failed:
        t.bad("bpp", f"must be 16 (RGB565) or 32 (XRGB8888), not {bpp}")
        bpp = 0
    # A framebuffer device reports its own geometry; everything else needs it configured.
    needs_size = kind in ("max7219", "image-dir") or (kind == "framebuffer" and bpp != 0)
    for key, value in (("width", width), ("height", height)):
        if kind == "none" or key in t.failed:
            continue
        if value <= 0 and needs_size:
            why = " (a file-backed framebuffer with bpp set)" if kind == "framebuffer" else ""
            t.bad(key, f"must be more than 0 pixels for kind {kind!r}{why}")
        elif kind == "max7219" and value % 8:
            t.bad(key, f"must be a multiple of 8 for max7219 (8x8 modules), not {value}")
    resolved = path_text
    if kind == "max7219" and path_text.strip() and not _SPIDEV.match(path_text):
        t.bad(
            "path",
            f"must be an SPI device /dev/spidevB.D for max7219 (or empty), not {path_text!r}",
        )
    if kind in ("framebuffer", "image-dir"):
        if not path_text.strip():
            what = "a framebuffer device such as /dev/fb0" if kind == "framebuffer" else "a folder"
            t.bad("path", f"must name {what} for kind {kind!r}")
        else:
            p = Path(path_text)
            resolved = str(p if p.is_absolute() else base / p)
            if kind == "image-dir":
                problem = _directory_problem(Path(resolved))
                if problem:
                    t.bad("path", problem)
    rotate = t.integer("rotate", 0, 0, 3)
    block_orientation = t.integer("block_orientation", 0)
    if block_orientation not in (0, 90, -90, 180) and "block_orientation" not in t.failed:
        t.bad("block_orientation", f"must be 0, 90, -90 or 180, not {block_orientation}")
        block_orientation = 0
    power_control = _enum(t, "power_control", "none", DISPLAY_POWER)
    return DisplayConfig(
        kind=cast(DisplayKind, kind),
        path=resolved,
        width=width,
        height=height,
        bpp=bpp,
        rotate=rotate,
        block_orientation=block_orientation,
        blocks_arranged_in_reverse_order=t.boolean("blocks_arranged_in_reverse_order", False),
        contrast=t.integer("contrast", 0x70, 0, 255),
        reinit_s=t.number("reinit_s", 600.0, 5.0, 86400.0),
        fps=t.integer("fps", 30, 1, 60),
        brightness=_brightness(t),
        on_hours=_span(t, "on_hours"),
        power_control=power_control,
        relay=_display_relay(t, power_control),
        backlight=t.text("backlight"),
        dark_in_quiet_hours=t.boolean("dark_in_quiet_hours", False),
        video_codecs=_video_codecs(t),
        video_max=_video_max(t),
    )


def _brightness(t: _Table) -> tuple[BrightnessStep, ...]:
    """`["06:00=100", "19:00=60", "22:00=15"]`: from each local time on, that percent."""
    steps: list[BrightnessStep] = []
    for i, entry in enumerate(t.strings("brightness")):
        m = _BRIGHTNESS_STEP.match(entry.strip())
        if m is None or int(m.group(3)) > 100:
            t.bad(f"brightness[{i}]", f"{entry!r} is not HH:MM=PERCENT (0-100), e.g. '19:00=60'")
            continue
        start = int(m.group(1)) * 60 + int(m.group(2))
        if any(s.start_min == start for s in steps):
            t.bad(f"brightness[{i}]", f"{entry!r} repeats the time {entry.split('=')[0]}")
            continue
        steps.append(BrightnessStep(start, int(m.group(3))))
    return tuple(sorted(steps, key=lambda s: s.start_min))


def _span(t: _Table, key: str) -> QuietHours | None:
    """A daily `HH:MM-HH:MM` span (quiet hours, a screen's on hours); "" = none."""
    text = t.text(key)
    if not text.strip():
        return None
    try:
        return QuietHours.parse(text)
    except ValueError as e:
        t.bad(key, str(e))
        return None


def _video_codecs(t: _Table) -> tuple[str, ...]:
    if not t.has("video_codecs"):
        return ("hevc",)
    codecs = t.strings("video_codecs")
    for i, codec in enumerate(codecs):
        if codec not in VIDEO_CODECS:
            t.bad(
                f"video_codecs[{i}]",
                f"{codec!r} is not one of {', '.join(VIDEO_CODECS)}" + _hint(codec, VIDEO_CODECS),
            )
    return tuple(c for c in codecs if c in VIDEO_CODECS)


def _video_max(t: _Table) -> tuple[int, int]:
    text = t.text("video_max", "1920x1080")
    m = _VIDEO_SIZE.match(text.strip())
    if m is None:
        t.bad("video_max", f"{text!r} is not WIDTHxHEIGHT, e.g. '1920x1080'")
        return (1920, 1080)
    return int(m.group(1)), int(m.group(2))


def _enum(t: _Table, key: str, default: T, choices: tuple[T, ...]) -> T:
    value = t.text(key, cast(str, default))
    if value not in choices:
        names = [str(c) for c in choices]
        t.bad(key, f"must be one of {', '.join(names)}, not {value!r}" + _hint(value, names))
        return default
    return cast(T, value)


def _alerts(t: _Table) -> AlertsConfig:
    language = t.text("language", "vi")
    if t.has("language") and isinstance(t.data["language"], str) and not _LANGUAGE.match(language):
        t.bad("language", f"{language!r} is not a language tag such as 'vi' or 'en-US'")
        language = "vi"
    return AlertsConfig(
        play_cap_test=t.boolean("play_cap_test", False),
        play_cap_exercise=t.boolean("play_cap_exercise", False),
        language=language,
    )


_HEX_BYTES: Final = re.compile(r"^(?:[0-9a-fA-F]{2}(?:[ :]?(?=[0-9a-fA-F])|$))*$")
_USB_ID: Final = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")
_IFACE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_BAUDS: Final = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


def _hex_bytes(t: _Table, key: str, *, required: bool) -> bytes:
    """Bytes as hex pairs, optionally spaced: "A0 01 01 A2" (as relay sellers print them)."""
    text = t.text(key).strip()
    if not text:
        if required and key not in t.failed:
            t.bad(key, 'missing: the bytes that switch the relay, as hex (e.g. "A0 01 01 A2")')
        return b""
    if not _HEX_BYTES.match(text) or len(text) > 3 * 64:
        t.bad(key, f'{text!r} is not up to 64 bytes written in hex (e.g. "A0 01 01 A2")')
        return b""
    return bytes.fromhex(text.replace(":", " "))


def _baud(t: _Table, default: int) -> int:
    baud = t.integer("baud", default, 300, 4_000_000)
    if "baud" not in t.failed and baud not in _BAUDS:
        t.bad("baud", f"{baud} is not a standard serial speed" + _hint(str(baud), map(str, _BAUDS)))
        return default
    return baud


def _amplifier(t: _Table) -> AmplifierConfig:
    """[amplifier], and [display.relay] (a screen switched by the same kind of relay): the
    same keys, read by this one function and checked by the drivers themselves."""
    kind = _enum(t, "kind", "none", AMPLIFIER_KINDS)
    port = t.text("port")
    line = t.integer("line", -1, 0, 1023)
    chip = t.text("chip", "/dev/gpiochip0")
    cfg = AmplifierConfig(
        kind=kind,
        port=port,
        baud=_baud(t, 9600),
        on_bytes=_hex_bytes(t, "on_bytes", required=False),
        off_bytes=_hex_bytes(t, "off_bytes", required=False),
        query_bytes=_hex_bytes(t, "query_bytes", required=False),
        on_reply=_hex_bytes(t, "on_reply", required=False),
        off_reply=_hex_bytes(t, "off_reply", required=False),
        chip=chip,
        line=line,
        active_low=t.boolean("active_low", False),
    )
    # Ask the driver what it accepts, so `config check` refuses what `run` would.
    problems: dict[str, str] = {}
    if kind == "serial-relay":
        from drivers.amp_serial import SerialRelayAmplifier

        problems = SerialRelayAmplifier.settings_problems(
            port=port, on_bytes=cfg.on_bytes, off_bytes=cfg.off_bytes,
            query_bytes=cfg.query_bytes, on_reply=cfg.on_reply, off_reply=cfg.off_reply,
        )  # fmt: skip
    elif kind == "gpio":
        from drivers.amp_gpio import GpioAmplifier

        problems = GpioAmplifier.settings_problems(
            chip=chip, line=line if t.has("line") else None
        )
    for key, why in problems.items():
        if key not in t.failed:
            t.bad(key, why)
    return cfg


def _display_relay(t: _Table, power_control: str) -> AmplifierConfig | None:
    """`[display.relay]`: the screen's power relay, for `power_control = "relay"`."""
    data = t.data.get("relay")
    if data is None:
        if power_control == "relay" and "power_control" not in t.failed:
            t.bad("relay", 'missing: power_control = "relay" needs a [display.relay] table '
                  "(the [amplifier] keys: kind, port, on_bytes, ... or chip, line)")
        return None
    if not isinstance(data, dict):
        t.bad("relay", f"must be a table ([display.relay]), not {_describe(data)}")
        return None
    if power_control != "relay":
        t.bad("relay", f'is for power_control = "relay" only, not {power_control!r}')
        return None
    sub = _Table(t.problems, f"{t.where}.relay", data, _KEYS["amplifier"])
    sub.check_unknown()
    cfg = _amplifier(sub)
    if cfg.kind == "none" and "kind" not in sub.failed:
        sub.bad("kind", "must be serial-relay or gpio: the relay that switches the screen")
        return None
    return cfg


def _relays_apart(
    problems: _Problems, amp: AmplifierConfig, screen: AmplifierConfig | None
) -> None:
    """The screen's relay must not be the amplifier's own contact (each would switch the
    other): same serial port with the same on bytes, or the same GPIO line."""
    if screen is None or screen.kind != amp.kind:
        return
    if amp.kind == "serial-relay" and screen.port == amp.port and screen.on_bytes == amp.on_bytes:
        problems.add("display.relay.on_bytes", "switches the same relay as [amplifier] "
                     "(same port and on_bytes): the screen needs its own relay or channel")
    if amp.kind == "gpio" and (screen.chip, screen.line) == (amp.chip, amp.line):
        problems.add("display.relay.line", "is the [amplifier]'s GPIO line: the screen "
                     "needs its own line")


def _modem(t: _Table) -> ModemConfig:
    usb_id = t.text("usb_id").strip().lower()
    if usb_id and not _USB_ID.match(usb_id):
        t.bad("usb_id", f"{usb_id!r} is not a USB id VVVV:PPPP in hex, as `lsusb` prints it")
        usb_id = ""
    iface = t.text("data_iface").strip()
    if iface and not _IFACE.match(iface):
        t.bad("data_iface", f"{iface!r} is not a network interface name such as wwan0 or ppp0")
        iface = ""
    return ModemConfig(
        usb_id=usb_id,
        interface=t.integer("interface", 2, 0, 15),
        baud=_baud(t, 115200),
        probe_s=t.integer("probe_s", 60, 5, 3600),
        timeout_s=t.number("timeout_s", 3.0, 0.2, 30.0),
        reset_after=t.integer("reset_after", 3, 1, 100),
        data_iface=iface,
        network_time=t.boolean("network_time", True),
    )


def _top_level(doc: Mapping[str, Any], problems: _Problems) -> None:
    for key, value in doc.items():
        if key in _KEYS:
            continue
        is_table = isinstance(value, dict) or (
            isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
        )
        if is_table:
            problems.add(key, "unknown section" + _hint(key, _KEYS))
            continue
        owners = " or ".join(f"[{s}]" for s, keys in _KEYS.items() if key in keys)
        if owners:
            problems.add(key, f"is outside any section; did you mean to put it under {owners}?")
        else:
            problems.add(key, "unknown key outside any section")


def _toml_problem(file: str, text: str, error: tomllib.TOMLDecodeError) -> str:
    # Python 3.11's tomllib gives the position only inside the message text.
    message = str(error)
    m = re.search(r"\(at line (\d+), column (\d+)\)$", message)
    if m:
        what = message[: m.start()].rstrip()
        return f"{file}:{m.group(1)}: invalid TOML: {what} (column {m.group(2)})"
    m = re.search(r"\(at end of document\)$", message)
    if m:
        last_line = max(1, len(text.splitlines()))
        return f"{file}:{last_line}: invalid TOML: {message[: m.start()].rstrip()} (at end of file)"
    return f"{file}: invalid TOML: {message}"


# ------------------------------------------------------------------------ public API


def _parse_toml(text: str, file: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([_toml_problem(file, text, e)]) from None


def parse_config(text: str, source: Path, *, require_device_key: bool = True) -> Config:
    """Validate configuration `text` read from `source`; raise ConfigError listing every problem.

    `source` names the file in messages and is the base for relative paths. With
    `require_device_key=False` (for `tcs-agent enroll`, which creates it) the device
    key file need not exist yet; if it does exist it must still be valid.
    """
    file = str(source)
    problems = _Problems(file)
    doc = _parse_toml(text, file)
    # Lexically normalised ("a/../b" -> "b") so messages and logs show clean paths.
    base = Path(os.path.abspath(source.parent))

    _top_level(doc, problems)
    tables = {name: _section(doc, name, problems) for name in _KEYS if name != "trust"}
    for table in tables.values():
        table.check_unknown()

    device = _device(tables["device"], base)
    if tables["device"].has("key_file") and device.key_file != Path():
        _device_key(tables["device"], device.key_file, file, must_exist=require_device_key)
    broker = _broker(tables["broker"], base, device.id if ID_PATTERN.match(device.id) else "")
    trust = _trust(doc, problems)
    storage = _storage(tables["storage"], base)
    config = Config(
        source=source,
        device=device,
        broker=broker,
        trust=trust,
        storage=storage,
        cache=_cache(tables["cache"]),
        audio=_audio(tables["audio"], base),
        display=_display(tables["display"], base),
        report=ReportConfig(heartbeat_s=tables["report"].integer("heartbeat_s", 60, 5, 86400)),
        clock=ClockConfig(trust=_enum(tables["clock"], "trust", "auto", CLOCK_TRUST)),
        alerts=_alerts(tables["alerts"]),
        amplifier=_amplifier(tables["amplifier"]),
        modem=_modem(tables["modem"]),
        update=_update(tables["update"]),
    )
    _relays_apart(problems, config.amplifier, config.display.relay)
    if problems.items:
        raise ConfigError(problems.items)
    return config


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: does not exist"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a configuration file"]) from None
    except OSError as e:
        raise ConfigError([f"{path}: cannot be read: {e.strerror or e}"]) from None
    try:
        # utf-8-sig: a file saved by a Windows editor starts with a BOM.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        column = e.start - raw.rfind(b"\n", 0, e.start)
        raise ConfigError([f"{path}:{line}: not UTF-8 text (column {column})"]) from None


def load_config(path: Path, *, require_device_key: bool = True) -> Config:
    """Read and validate the configuration file at `path` (see parse_config)."""
    return parse_config(_read_text(path), path, require_device_key=require_device_key)


def load_device(path: Path) -> DeviceConfig:
    """Only the `[device]` section of the file at `path`, validated; ConfigError otherwise.

    For `tcs-agent enroll` and `id`: the device key comes first (with mTLS the broker
    certificate is issued for it afterwards), so the broker's files, the trust keys
    and the rest need not be ready yet. The key file itself may be missing.
    """
    file = str(path)
    doc = _parse_toml(_read_text(path), file)
    problems = _Problems(file)
    table = _section(doc, "device", problems)
    table.check_unknown()
    device = _device(table, Path(os.path.abspath(path.parent)))
    if problems.items:
        raise ConfigError(problems.items)
    return device


def format_problems(problems: Iterable[str]) -> str:
    """One problem per line, as printed by `tcs-agent config check` and at start."""
    return "\n".join(problems)


def check_main(path: Path, *, require_device_key: bool = True) -> int:
    """`tcs-agent config check FILE`: print `FILE: ok` and a summary (0) or every problem (1)."""
    try:
        config = load_config(path, require_device_key=require_device_key)
    except ConfigError as e:
        print(format_problems(e.problems), file=sys.stdout)
        return 1
    n = len(config.trust)
    print(f"{path}: ok")
    print(
        f"device {config.device.id}, broker {config.broker.url}, "
        f"{n} trust key{'' if n == 1 else 's'}"
    )
    return 0

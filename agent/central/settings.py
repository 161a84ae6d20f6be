"""The console's configuration (`central.toml`), validated once, overridable by flags.

Pure apart from reading the TOML file and the broker password file. Every problem
is collected, not just the first, and named like the agent's own config errors:
`FILE:section.key: what is wrong` for values from the file, `--flag: what is
wrong` for values given on the command line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from agent.hosts import is_loopback

# section.key -> (kind, flag that overrides it)
_KEYS: dict[str, tuple[str, str]] = {
    "broker.url": ("str", "--broker"),
    "broker.username": ("str", "--username"),
    "broker.password_file": ("path", "--password-file"),
    "broker.ca_file": ("path", "--ca-file"),
    "broker.cert_file": ("path", "--cert-file"),
    "broker.key_file": ("path", "--tls-key-file"),
    "broker.keepalive_s": ("int", "--keepalive"),
    "broker.connect_timeout_s": ("float", "--connect-timeout"),
    "signing.kid": ("str", "--kid"),
    "signing.key_file": ("path", "--signing-key"),
    "signing.issuer": ("str", "--issuer"),
    "devices.file": ("path", "--devices"),
}

FLAG_FOR: dict[str, str] = {key: flag for key, (_, flag) in _KEYS.items()}


class SettingsError(Exception):
    """Raised with every problem found; `.problems` are `WHERE: what is wrong` strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class BrokerSettings:
    url: str
    scheme: Literal["mqtt", "mqtts"]
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    keepalive_s: int = 60
    connect_timeout_s: float = 10.0

    @property
    def client_id(self) -> str:
        # PROTOCOL §1: client id = username. With mTLS only there is no username;
        # the broker then maps the certificate's identity, and any stable id will do.
        return self.username or "tcs-central"


@dataclass(frozen=True)
class SigningSettings:
    kid: str
    key_file: Path
    issuer: str


@dataclass(frozen=True)
class CentralSettings:
    source: Path | None
    broker: BrokerSettings | None
    signing: SigningSettings | None
    devices_file: Path | None
    warnings: tuple[str, ...] = field(default=())


class _Collector:
    """Merges file values and flag overrides, remembering where each came from."""

    def __init__(self, source: Path | None, file_values: Mapping[str, Any],
                 overrides: Mapping[str, Any], cwd: Path) -> None:
        self.source = source
        self.file_values = file_values
        self.overrides = overrides
        self.cwd = cwd
        self.problems: list[str] = []

    def where(self, key: str) -> str:
        if key in self.overrides or self.source is None:
            return FLAG_FOR[key]
        return f"{self.source}:{key}"

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{self.where(key)}: {text}")

    def raw(self, key: str) -> Any:
        if key in self.overrides:
            return self.overrides[key]
        return self.file_values.get(key)

    def get_str(self, key: str, *, required: bool) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                self.problem(key, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(key, f"must be a non-empty string, not {value!r}")
            return None
        return value.strip()

    def get_path(self, key: str, *, required: bool, must_exist: bool = True) -> Path | None:
        text = self.get_str(key, required=required)
        if text is None:
            return None
        base = self.cwd if key in self.overrides or self.source is None else self.source.parent
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = base / path
        if must_exist and not path.is_file():
            self.problem(key, f"file {path} does not exist")
            return None
        return path

    def get_number(self, key: str, default: float, lo: float, hi: float,
                   *, integer: bool) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = int(value) if integer else float(value)
            except ValueError:
                self.problem(key, f"must be a number, not {value!r}")
                return default
        if isinstance(value, bool) or not isinstance(value, int | float) or (
            integer and not isinstance(value, int)
        ):
            self.problem(key, f"must be {'an integer' if integer else 'a number'}, not {value!r}")
            return default
        if not lo <= value <= hi:
            self.problem(key, f"must be between {lo:g} and {hi:g}, not {value}")
            return default
        return value


def _flatten(source: Path, data: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            problems.append(f"{source}:{section}: must be a table [{section}]")
            continue
        for key, value in table.items():
            name = f"{section}.{key}"
            if name not in _KEYS:
                problems.append(f"{source}:{name}: unknown key")
                continue
            flat[name] = value
    return flat


def _parse_url(c: _Collector) -> tuple[str, Literal["mqtt", "mqtts"], str, int] | None:
    url = c.get_str("broker.url", required=True)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        c.problem("broker.url", f"scheme must be mqtt:// or mqtts://, not {parts.scheme!r}")
        return None
    try:
        port = parts.port
    except ValueError:
        c.problem("broker.url", "port is not a number between 0 and 65535")
        return None
    if not parts.hostname:
        c.problem("broker.url", f"{url!r} names no host")
        return None
    scheme: Literal["mqtt", "mqtts"] = "mqtts" if parts.scheme == "mqtts" else "mqtt"
    return url, scheme, parts.hostname, port or (8883 if scheme == "mqtts" else 1883)


def _read_password(c: _Collector, path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        c.problem("broker.password_file", f"cannot be read: {exc}")
        return None
    # Only the first line: files written by `echo secret > f` end with a newline.
    first = text.splitlines()[0] if text.strip() else ""
    if not first:
        c.problem("broker.password_file", f"{path} is empty")
        return None
    return first


def _broker(c: _Collector, warnings: list[str]) -> BrokerSettings | None:
    before = len(c.problems)
    url = _parse_url(c)
    username = c.get_str("broker.username", required=False)
    password = _read_password(c, c.get_path("broker.password_file", required=False))
    ca_file = c.get_path("broker.ca_file", required=False)
    cert_file = c.get_path("broker.cert_file", required=False)
    key_file = c.get_path("broker.key_file", required=False)
    keepalive = int(c.get_number("broker.keepalive_s", 60, 5, 65535, integer=True))
    timeout = c.get_number("broker.connect_timeout_s", 10.0, 0.5, 300, integer=False)
    if (c.raw("broker.cert_file") is None) != (c.raw("broker.key_file") is None):
        c.problem("broker.cert_file", "cert_file and key_file (mTLS) go together")
    if username is None and c.raw("broker.cert_file") is None and c.raw(
        "broker.username"
    ) is None:
        c.problem("broker.username", "is required unless cert_file/key_file (mTLS) are set")
    if url is None or len(c.problems) > before:
        return None
    text, scheme, host, port = url
    if scheme == "mqtt" and not is_loopback(host):
        warnings.append(
            f"{c.where('broker.url')}: plain mqtt:// to {host} sends the broker password "
            "in clear; use mqtts:// outside tests"
        )
    return BrokerSettings(
        url=text, scheme=scheme, host=host, port=port, tls=scheme == "mqtts",
        username=username, password=password, ca_file=ca_file, cert_file=cert_file,
        key_file=key_file, keepalive_s=keepalive, connect_timeout_s=timeout,
    )


def _signing(c: _Collector) -> SigningSettings | None:
    before = len(c.problems)
    kid = c.get_str("signing.kid", required=True)
    key_file = c.get_path("signing.key_file", required=True)
    issuer = c.get_str("signing.issuer", required=True)
    if kid is None or key_file is None or issuer is None or len(c.problems) > before:
        return None
    return SigningSettings(kid=kid, key_file=key_file, issuer=issuer)


def load_settings(
    path: Path | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    need_broker: bool = True,
    need_signing: bool = False,
    cwd: Path | None = None,
) -> CentralSettings:
    """Read `path` (may be None: flags only), apply flag overrides, validate.

    `overrides` maps `section.key` to the flag's value; relative paths given by flags
    resolve against `cwd` (default: the process's), those in the file against the
    file's folder. Raises SettingsError listing every problem.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key in overrides:
        if key not in _KEYS:
            raise ValueError(f"unknown settings key {key!r}")
    problems: list[str] = []
    file_values: dict[str, Any] = {}
    source = path.resolve() if path is not None else None
    if source is not None:
        try:
            with source.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise SettingsError([f"{source}: no such file"]) from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError([f"{source}: {exc}"]) from None
        file_values = _flatten(source, data, problems)
    c = _Collector(source, file_values, overrides, cwd or Path.cwd())
    c.problems.extend(problems)
    warnings: list[str] = []
    broker = _broker(c, warnings) if need_broker else None
    signing = _signing(c) if need_signing else None
    devices_file = c.get_path("devices.file", required=False)
    if c.problems:
        raise SettingsError(c.problems)
    return CentralSettings(
        source=source, broker=broker, signing=signing, devices_file=devices_file,
        warnings=tuple(warnings),
    )

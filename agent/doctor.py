"""`tcs-agent doctor`: what is wrong with this device, and what to do about it.

A technician on a pole with a laptop runs one command and gets one line per check,
✓ or ✗, and for every ✗ the thing to do. Every check runs that can, even when the
configuration has problems: the checks read the raw TOML leniently (`_Loose`) where
the strict validator would stop, and a problem the strict validator finds in a key
that has its own check (the device key, the storage folder, TLS files …) is reported
by that check, not twice.

Checks talk to the real things: a TCP connection to the broker, a TLS handshake with
the configured CA, an MQTT CONNECT with the device's credentials, a file created in
the storage folder. When the agent is running, its status socket answers for what it
holds (the broker session, the modem port) so the doctor does not fight it for them.
Results carry English text (JSON output is never translated); the text renderer
translates through gettext.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
import struct
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent import clock as clock_mod
from agent import jws
from agent.config import ConfigError, load_config
from agent.i18n import _

DISK_MIN_MB = 50
CHECK_IDS = (
    "config",
    "device_key",
    "broker_reach",
    "broker_tls",
    "broker_auth",
    "trust_keys",
    "clock",
    "disk",
    "storage",
    "audio",
    "display",
    "modem",
    "amplifier",
)
# Config keys whose problems belong to a dedicated check (reported there, not twice).
_OWNED = {
    "device.key_file": "device_key",
    "storage.dir": "storage",
    "broker.ca_file": "broker_tls",
    "broker.cert_file": "broker_tls",
    "broker.key_file": "broker_tls",
    "broker.password_file": "broker_auth",
    "display.path": "display",
}
EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config" / "agent.example.toml"


@dataclass(frozen=True)
class Msg:
    """An English template and its values: translated for people, as is for JSON."""

    template: str
    args: dict[str, Any] = field(default_factory=dict)

    def en(self) -> str:
        return self.template.format(**self.args)

    def local(self) -> str:
        return _(self.template).format(**self.args)


def M(template: str, **args: Any) -> Msg:
    """A message marked for translation (extract with `pybabel extract -k M`)."""
    return Msg(template, args)


@dataclass(frozen=True)
class Check:
    id: str
    ok: bool
    detail: Msg
    fix: Msg | None = None  # on a passed check: a warning worth acting on

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ok": self.ok,
            "detail": self.detail.en(),
            "fix": self.fix.en() if self.fix else None,
        }


@dataclass
class Environment:
    """What the checks read besides the config; tests point these at fakes or tmp trees."""

    sys_root: Path = Path("/sys")
    dev_root: Path = Path("/dev")
    kernel_synced: Callable[[], bool | None] = clock_mod.kernel_ntp_synced
    rtc_set_clock: Callable[[], bool] = clock_mod.rtc_set_clock
    timeout_s: float = 3.0
    audio_devices: Callable[[], tuple[list[dict[str, Any]], int | None]] | None = None


class _Loose:
    """Lenient reads of the raw TOML, for checking what can be checked in a broken file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = Path(os.path.abspath(path.parent))
        self.parsed = True
        try:
            doc = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
        except (OSError, ValueError):
            doc, self.parsed = {}, False
        self.doc: dict[str, Any] = doc

    def get(self, section: str, key: str, default: Any = None, kind: type = str) -> Any:
        table = self.doc.get(section)
        value = table.get(key, default) if isinstance(table, dict) else default
        if kind is int and isinstance(value, bool):
            return default
        return value if isinstance(value, kind) else default

    def file(self, section: str, key: str) -> Path | None:
        value = self.get(section, key, "")
        if not value or not value.strip() or "\x00" in value:
            return None
        p = Path(value)
        return p if p.is_absolute() else self.base / p

    def trust(self) -> list[dict[str, Any]]:
        t = self.doc.get("trust")
        return [e for e in t if isinstance(e, dict)] if isinstance(t, list) else []


# --------------------------------------------------------------------------- checks


def check_config(path: Path) -> tuple[Check, Any]:
    try:
        cfg = load_config(path, require_device_key=False)
    except ConfigError as e:
        mine = [p for p in e.problems if not _owned(p, path)]
        if not mine:
            detail = M("{file}: valid apart from what the checks below report", file=path)
            return Check("config", True, detail), None
        shown = "; ".join(p.removeprefix(f"{path}:") for p in mine[:3])
        more = len(mine) - 3
        return (
            Check(
                "config",
                False,
                M("{count} problem(s): {shown}", count=len(mine), shown=shown)
                if more <= 0
                else M("{count} problem(s): {shown} …", count=len(mine), shown=shown),
                M("run `tcs-agent config check {file}` and fix each line it prints", file=path),
            ),
            None,
        )
    return Check("config", True, M("{file} is valid", file=path)), cfg


def _owned(problem: str, path: Path) -> bool:
    rest = problem.removeprefix(f"{path}:")
    key = rest.split(":", 1)[0].strip()
    return key in _OWNED or key.startswith("trust")


def check_device_key(loose: _Loose) -> Check:
    path = loose.file("device", "key_file")
    enroll = M("run `tcs-agent enroll -c {cfg}` to create it", cfg=loose.path)
    if path is None:
        return Check("device_key", False, M("[device] key_file is not set"), enroll)
    if not path.exists():
        return Check("device_key", False, M("device key {path} does not exist", path=path), enroll)
    try:
        key = jws.load_private_key(path)
    except PermissionError:
        return Check(
            "device_key",
            False,
            M("device key {path} cannot be read by this user", path=path),
            M("run as the agent's user (sudo -u tcs-agent …) or as root"),
        )
    except (OSError, ValueError, TypeError) as e:
        return Check(
            "device_key",
            False,
            M("device key {path} is not an Ed25519 private key ({error})", path=path, error=e),
            M(
                "move the file away and run `tcs-agent enroll -c {cfg}`; "
                "the province must then register the new public key",
                cfg=loose.path,
            ),
        )
    mode = path.stat().st_mode
    fp = jws.fingerprint(jws.public_raw(key))
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check(
            "device_key",
            False,
            M(
                "device key {path} is readable by others (mode {mode:o})",
                path=path,
                mode=stat.S_IMODE(mode),
            ),
            M("chmod 600 {path}", path=path),
        )
    return Check("device_key", True, M("device key {path} (fingerprint {fp})", path=path, fp=fp))


@dataclass
class _Broker:
    url: str
    host: str
    port: int
    tls: bool


def _broker(loose: _Loose) -> _Broker | None:
    url = loose.get("broker", "url", "")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        return None
    tls = parts.scheme == "mqtts"
    return _Broker(url, parts.hostname, port or (8883 if tls else 1883), tls)


def check_broker_reach(b: _Broker | None, timeout_s: float) -> Check:
    fix_url = M("set [broker] url to mqtts://HOST:PORT of the province's broker")
    if b is None:
        return Check("broker_reach", False, M("[broker] url is missing or not mqtt(s)://"), fix_url)
    try:
        with socket.create_connection((b.host, b.port), timeout=timeout_s):
            pass
    except socket.gaierror as e:
        return Check(
            "broker_reach",
            False,
            M("cannot resolve {host}: {error}", host=b.host, error=e.strerror or e),
            M("check the host name in [broker] url and the device's DNS / network link"),
        )
    except ConnectionRefusedError:
        return Check(
            "broker_reach",
            False,
            M("nothing listens on {host}:{port} (connection refused)", host=b.host, port=b.port),
            M("check the broker is running and the port in [broker] url"),
        )
    except OSError as e:
        return Check(
            "broker_reach",
            False,
            M(
                "no answer from {host}:{port}: {error}",
                host=b.host,
                port=b.port,
                error=e.strerror or e or "timed out",
            ),
            M("check the network link (modem signal, cable) and any firewall on the way"),
        )
    return Check("broker_reach", True, M("{host}:{port} answers", host=b.host, port=b.port))


def _tls_context(loose: _Loose, clock_trusted: bool) -> ssl.SSLContext:
    from agent.link import LinkSettings, tls_context

    ca, cert, key = (loose.file("broker", k) for k in ("ca_file", "cert_file", "key_file"))
    settings = LinkSettings(
        client_id="doctor",
        host="",
        port=0,
        tls=True,
        username=None,
        password=None,
        ca_file=str(ca) if ca else None,
        cert_file=str(cert) if cert else None,
        key_file=str(key) if key else None,
        keepalive_s=10,
        session_expiry_s=0,
        connect_timeout_s=3.0,
    )
    ctx = tls_context(settings, check_time=clock_trusted)
    assert ctx is not None
    return ctx


def check_broker_tls(loose: _Loose, b: _Broker, timeout_s: float, clock_trusted: bool) -> Check:
    for k in ("ca_file", "cert_file", "key_file"):
        p = loose.file("broker", k)
        if p is not None and not p.is_file():
            return Check(
                "broker_tls",
                False,
                M("[broker] {key} {path} does not exist", key=k, path=p),
                M("copy the file from the province, or correct the path in [broker] {key}", key=k),
            )
    try:
        ctx = _tls_context(loose, clock_trusted)
        with (
            socket.create_connection((b.host, b.port), timeout=timeout_s) as raw,
            ctx.wrap_socket(raw, server_hostname=b.host) as tls,
        ):
            version = tls.version()
    except ssl.SSLCertVerificationError as e:
        why = e.verify_message or str(e)
        if "hostname" in why.lower() or "match" in why.lower():
            fix = M("use the broker's name as written in its certificate in [broker] url")
        elif "expired" in why.lower() or "not yet valid" in why.lower():
            fix = M("check the device clock (see the clock check) or renew the certificate")
        else:
            fix = M("set [broker] ca_file to the province's CA certificate (PEM)")
        return Check("broker_tls", False, M("broker certificate not trusted: {why}", why=why), fix)
    except ssl.SSLError as e:
        return Check(
            "broker_tls",
            False,
            M("TLS handshake failed: {error}", error=e.reason or e),
            M("check [broker] cert_file/key_file match, and that the port speaks TLS (8883)"),
        )
    except OSError as e:
        return Check(
            "broker_tls",
            False,
            M("TLS connection failed: {error}", error=e.strerror or e),
            M("check [broker] url and the TLS files in [broker]"),
        )
    return Check("broker_tls", True, M("{version}, broker certificate verified", version=version))


def _connect_packet(client_id: str, username: str | None, password: str | None) -> bytes:
    def s(text: str) -> bytes:
        data = text.encode()
        return struct.pack("!H", len(data)) + data

    flags = 0x00  # clean session off: never wipes the device's persistent session
    payload = s(client_id)
    if username is not None:
        flags |= 0x80
        payload += s(username)
        if password is not None:
            flags |= 0x40
            payload += s(password)
    body = s("MQTT") + bytes([4, flags]) + struct.pack("!H", 10) + payload
    length, n = b"", len(body)
    while True:
        byte, n = n % 128, n // 128
        length += bytes([byte | (0x80 if n else 0)])
        if not n:
            break
    return b"\x10" + length + body


def check_broker_auth(
    loose: _Loose, b: _Broker, timeout_s: float, clock_trusted: bool, agent: dict[str, Any] | None
) -> Check:
    if agent is not None and (agent.get("link") or {}).get("connected") is True:
        return Check("broker_auth", True, M("the running agent is logged in to the broker"))
    device_id = loose.get("device", "id", "")
    username = loose.get("broker", "username", "") or device_id or None
    password = None
    pw_file = loose.file("broker", "password_file")
    if pw_file is not None:
        try:
            password = pw_file.read_text().strip()
        except OSError as e:
            return Check(
                "broker_auth",
                False,
                M("password file {path}: {error}", path=pw_file, error=e.strerror or e),
                M("create it with the broker password for this device (mode 600)"),
            )
    try:
        with socket.create_connection((b.host, b.port), timeout=timeout_s) as raw:
            conn: socket.socket = raw
            if b.tls:
                conn = _tls_context(loose, clock_trusted).wrap_socket(raw, server_hostname=b.host)
            conn.sendall(_connect_packet(device_id or "doctor", username, password))
            ack = b""
            while len(ack) < 4:
                chunk = conn.recv(4 - len(ack))
                if not chunk:
                    break
                ack += chunk
            if len(ack) == 4 and ack[0] == 0x20:
                conn.sendall(b"\xe0\x00")  # DISCONNECT
    except (OSError, ssl.SSLError) as e:
        return Check(
            "broker_auth",
            False,
            M("could not log in: {error}", error=getattr(e, "strerror", None) or e),
            M("see the broker_reach and broker_tls checks"),
        )
    if len(ack) != 4 or ack[0] != 0x20:
        return Check(
            "broker_auth",
            False,
            M("the broker closed the connection without an answer (credentials refused)"),
            M("check [broker] username, password_file or the client certificate"),
        )
    code = ack[3]
    if code == 0:
        return Check("broker_auth", True, M("logged in as {user}", user=username))
    if code in (4, 5):
        return Check(
            "broker_auth",
            False,
            M(
                "the broker refused user {user}: wrong user name or password, or not allowed",
                user=username,
            ),
            M(
                "check [broker] username and the password in {path} with the province",
                path=pw_file or "[broker] password_file",
            ),
        )
    return Check(
        "broker_auth",
        False,
        M("the broker refused the login (MQTT code {code})", code=code),
        M("check [device] id and [broker] username with the province"),
    )


def _example_keys() -> set[str]:
    try:
        doc = tomllib.loads(EXAMPLE_CONFIG.read_text())
    except (OSError, ValueError):
        return set()
    trust = doc.get("trust")
    return (
        {str(e.get("public_key")) for e in trust if isinstance(e, dict)}
        if isinstance(trust, list)
        else set()
    )


def check_trust_keys(loose: _Loose) -> Check:
    entries = loose.trust()
    fix = M("put the province's trust keys ([[trust]] kid, public_key) in the config")
    if not entries:
        return Check("trust_keys", False, M("no [[trust]] keys: no command can be accepted"), fix)
    examples = _example_keys()
    for i, e in enumerate(entries):
        kid = e.get("kid", f"trust[{i}]")
        key = e.get("public_key")
        if not isinstance(key, str):
            return Check("trust_keys", False, M("{kid}: public_key missing", kid=kid), fix)
        if key in examples:
            return Check(
                "trust_keys",
                False,
                M("{kid} is the example's throw-away key", kid=kid),
                M("replace it with the province's real public key for {kid}", kid=kid),
            )
        try:
            jws.decode_public_key(key)
        except ValueError as err:
            return Check(
                "trust_keys", False, M("{kid}: public_key {error}", kid=kid, error=err), fix
            )
    return Check(
        "trust_keys",
        True,
        M(
            "{n} trust key(s): {kids}",
            n=len(entries),
            kids=", ".join(str(e.get("kid")) for e in entries),
        ),
    )


def check_clock(
    env: Environment, loose: _Loose, agent: dict[str, Any] | None
) -> tuple[Check, bool]:
    modem_time = bool(loose.get("modem", "usb_id", "")) and loose.get(
        "modem", "network_time", True, bool
    )
    rtc_fitted = (env.sys_root / "class/rtc/rtc0").exists()
    backup = M(
        "without NTP the clock has no other source: fit an RTC module or set [modem] usb_id "
        "so a power cut without data link does not hold the schedule"
    )
    source = None
    if agent is not None and isinstance(agent.get("clock"), dict):
        if agent["clock"].get("synced") is True:
            source = str(agent["clock"].get("source"))
    elif env.kernel_synced():
        source = "ntp"
    elif env.rtc_set_clock():
        source = "rtc"
    if source is None:
        return (
            Check(
                "clock",
                False,
                M(
                    "the clock is not synchronised (no NTP, RTC or network time): scheduled "
                    "programmes are held"
                ),
                M(
                    "check NTP (`timedatectl timesync-status`) and the network; fit an RTC "
                    "module or a modem for time without NTP"
                ),
            ),
            False,
        )
    warn = backup if source == "ntp" and not (rtc_fitted or modem_time) else None
    return Check("clock", True, M("synchronised ({source})", source=source), warn), True


def check_disk(folder: Path) -> Check:
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError as e:
        return Check(
            "disk",
            False,
            M("cannot read free space of {path}: {error}", path=probe, error=e.strerror),
            M("check the storage folder in [storage] dir"),
        )
    free = st.f_bavail * st.f_frsize // (1024 * 1024)
    total = st.f_blocks * st.f_frsize // (1024 * 1024)
    if free < DISK_MIN_MB:
        return Check(
            "disk",
            False,
            M("only {free} MB free of {total} MB on {path}", free=free, total=total, path=probe),
            M(
                "free space: lower [storage] cache_quota_mb, remove old files or logs "
                "(`journalctl --vacuum-size=50M`)"
            ),
        )
    return Check("disk", True, M("{free} MB free of {total} MB", free=free, total=total))


def check_storage(folder: Path | None) -> Check:
    if folder is None:
        return Check(
            "storage",
            False,
            M("[storage] dir is not set"),
            M('set [storage] dir = "/var/lib/tcs-agent"'),
        )
    # The agent creates a missing folder at start: then its nearest parent must be writable.
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return Check(
            "storage",
            False,
            M(
                "storage folder {path} cannot be created: {probe} is not a folder",
                path=folder,
                probe=probe,
            ),
            M("correct [storage] dir"),
        )
    try:
        fd, name = tempfile.mkstemp(prefix=".doctor-", dir=probe)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as e:
        if e.errno == 30:  # EROFS
            return Check(
                "storage",
                False,
                M("storage folder {path} is on a read-only filesystem", path=folder),
                M(
                    "the SD card is probably failing (the kernel remounted it read-only): "
                    "check `dmesg`, back up and replace the card"
                ),
            )
        return Check(
            "storage",
            False,
            M("cannot write in {path}: {error}", path=folder, error=e.strerror or e),
            M("give the agent's user the folder: chown -R tcs-agent: {path}", path=folder),
        )
    if probe != folder:
        return Check("storage", True, M("{path} will be created at start", path=folder))
    return Check("storage", True, M("{path} is writable", path=folder))


def _portaudio_devices() -> tuple[list[dict[str, Any]], int | None]:
    import sounddevice as sd

    devices = [dict(d) for d in sd.query_devices()]
    default = sd.default.device[1]
    return devices, (int(default) if default is not None and default >= 0 else None)


def check_audio(loose: _Loose, env: Environment) -> Check | None:
    output = loose.get("audio", "output", "default")
    if output.strip().lower() == "none":
        return None
    from playback.devices import DeviceNotFound, find_device

    try:
        devices, default = (env.audio_devices or _portaudio_devices)()
    except Exception as e:  # PortAudio missing or broken
        return Check(
            "audio",
            False,
            M("cannot list audio devices: {error}", error=e),
            M("install libportaudio2 (scripts/install.sh does)"),
        )
    try:
        _, name = find_device(output, devices, default_index=default)
    except DeviceNotFound as e:
        return Check(
            "audio",
            False,
            M("{error}", error=e),
            M("plug in the sound card (check `aplay -l`) or set [audio] output to a listed name"),
        )
    return Check("audio", True, M("output {output!r} is {name!r}", output=output, name=name))


def check_display(loose: _Loose, env: Environment) -> Check | None:
    kind = loose.get("display", "kind", "none")
    if kind == "none":
        return None
    from agent.probes.display import display_present

    path = str(loose.file("display", "path") or "")
    present = display_present(kind, path, dev_root=env.dev_root, sys_root=env.sys_root)
    if present:
        return Check("display", True, M("{kind} {path} present", kind=kind, path=path))
    if kind == "framebuffer":
        return Check(
            "display",
            False,
            M("framebuffer {path} is missing or not writable", path=path or "(no path)"),
            M(
                "check the screen's cable and its overlay in /boot/firmware/config.txt, or "
                "correct [display] path (ls /dev/fb*)"
            ),
        )
    if kind == "max7219":
        return Check(
            "display",
            False,
            M("no SPI device (/dev/spidev*) for the LED matrix"),
            M("enable SPI: raspi-config nonint do_spi 0, then reboot"),
        )
    return Check(
        "display",
        False,
        M("display {kind} {path} not usable", kind=kind, path=path),
        M("create the folder for the agent's user or correct [display] path"),
    )


def check_modem(loose: _Loose, env: Environment, agent: dict[str, Any] | None) -> Check | None:
    usb_id = loose.get("modem", "usb_id", "")
    if not usb_id:
        return None
    from drivers.modem import Modem, UsbId, find_port

    try:
        usb = UsbId.parse(usb_id, loose.get("modem", "interface", 2, int))
    except ValueError as e:
        return Check("modem", False, M("{error}", error=e), M("fix [modem] usb_id (see `lsusb`)"))
    if agent is not None:
        modem = ((agent.get("health") or {}).get("modem")) or None
        if modem is None:
            return Check(
                "modem",
                False,
                M("the running agent gets no answer from the modem"),
                M("check the modem is plugged in; see `tcs-agent logs` for modem lines"),
            )
        return Check("modem", True, M("the running agent talks to the modem"))
    port = find_port(usb, sys_root=env.sys_root, dev_root=env.dev_root)
    if port is None:
        return Check(
            "modem",
            False,
            M(
                "no USB device {usb_id} with a serial port on interface {n}",
                usb_id=usb_id,
                n=usb.interface,
            ),
            M("plug the modem in (check `lsusb`), or correct [modem] usb_id / interface"),
        )
    m = Modem(
        usb,
        sys_root=env.sys_root,
        dev_root=env.dev_root,
        timeout_s=min(env.timeout_s, 2.0),
        reset_after=100,
    )
    try:
        reading = m.probe()
    finally:
        m.close()
    if reading is None:
        return Check(
            "modem",
            False,
            M("the modem at {port} does not answer AT commands", port=port),
            M(
                "power-cycle the modem; make sure no other program (ModemManager) holds {port}",
                port=port,
            ),
        )
    if not reading.registered:
        return Check(
            "modem",
            False,
            M("not registered on a network (signal {rssi} dBm)", rssi=reading.rssi_dbm),
            M("check the SIM card and the antenna"),
        )
    return Check(
        "modem", True, M("{op}, signal {rssi} dBm", op=reading.operator, rssi=reading.rssi_dbm)
    )


def check_amplifier(loose: _Loose, env: Environment) -> Check | None:
    kind = loose.get("amplifier", "kind", "none")
    if kind == "none":
        return None
    if kind == "serial-relay":
        port = loose.get("amplifier", "port", "")
        if not port or not Path(port).exists():
            return Check(
                "amplifier",
                False,
                M("relay port {port} does not exist", port=port or "(not set)"),
                M("plug in the relay board and set [amplifier] port (ls /dev/serial/by-id/)"),
            )
        if not os.access(port, os.R_OK | os.W_OK):
            return Check(
                "amplifier",
                False,
                M("relay port {port} is not writable", port=port),
                M("add the agent's user to the dialout group"),
            )
        return Check("amplifier", True, M("relay board at {port}", port=port))
    if kind == "gpio":
        chip = loose.get("amplifier", "chip", "/dev/gpiochip0")
        if not Path(chip).exists():
            return Check(
                "amplifier",
                False,
                M("GPIO chip {chip} does not exist", chip=chip),
                M("correct [amplifier] chip (ls /dev/gpiochip*)"),
            )
        try:
            import gpiod  # noqa: F401
        except ImportError:
            return Check(
                "amplifier",
                False,
                M("libgpiod's Python bindings are missing"),
                M("pip install 'gpiod>=2' in the agent's venv"),
            )
        return Check(
            "amplifier",
            True,
            M("GPIO {chip} line {line}", chip=chip, line=loose.get("amplifier", "line", -1, int)),
        )
    return Check(
        "amplifier",
        False,
        M("unknown [amplifier] kind {kind!r}", kind=kind),
        M("use none, serial-relay or gpio"),
    )


# --------------------------------------------------------------------------- running


def running_agent(storage: Path | None) -> dict[str, Any] | None:
    """The running agent's status through its socket, or None when it is not running."""
    if storage is None:
        return None
    from agent.status_server import SOCKET_NAME, request

    try:
        answer = request(storage / SOCKET_NAME, {"op": "status"}, timeout_s=3.0)
    except (OSError, ValueError):
        return None
    status = answer.get("status")
    return status if isinstance(status, dict) else None


def run_checks(path: Path, env: Environment | None = None) -> Iterator[Check]:
    """Every check that applies, in the order a technician fixes things."""
    env = env or Environment()
    config_check, _cfg = check_config(path)
    yield config_check
    loose = _Loose(path)
    storage = loose.file("storage", "dir")
    agent = running_agent(storage)
    clock_check, trusted = check_clock(env, loose, agent)
    if not loose.parsed:  # nothing else can be told from a file that is not TOML
        yield clock_check
        return
    yield check_device_key(loose)
    broker = _broker(loose)
    reach = check_broker_reach(broker, env.timeout_s)
    yield reach
    if broker is not None and reach.ok:
        tls_ok = True
        if broker.tls:
            tls = check_broker_tls(loose, broker, env.timeout_s, trusted)
            tls_ok = tls.ok
            yield tls
        if tls_ok:
            yield check_broker_auth(loose, broker, env.timeout_s, trusted, agent)
    yield check_trust_keys(loose)
    yield clock_check
    if storage is not None:
        yield check_disk(storage)
    yield check_storage(storage)
    for optional in (
        check_audio(loose, env),
        check_display(loose, env),
        check_modem(loose, env, agent),
        check_amplifier(loose, env),
    ):
        if optional is not None:
            yield optional


def render(check: Check) -> str:
    mark = "✓" if check.ok else "✗"
    line = f"{mark} {check.id}: {check.detail.local()}"
    if check.fix is not None:
        line += "\n    → " + check.fix.local()
    return line


def main(path: Path, *, as_json: bool, env: Environment | None = None) -> int:
    import json
    import sys

    started = time.monotonic()
    checks = []
    for check in run_checks(path, env):
        checks.append(check)
        if not as_json:
            print(render(check), flush=True)
    ok = all(c.ok for c in checks)
    if as_json:
        print(json.dumps({"checks": [c.as_json() for c in checks]}, ensure_ascii=False))
    else:
        elapsed = time.monotonic() - started
        summary = _("all checks passed") if ok else _("some checks failed")
        print(f"{summary} ({elapsed:.1f} s)", file=sys.stdout)
    return 0 if ok else 1

#!/usr/bin/env python3
"""A real Mosquitto for development, demos and tests: TLS, passwords, mTLS and the TCS ACL.

Usable as a library (`start_broker(...) -> Broker`, what tests/support/broker.py and
the demo use) and as a command (`python scripts/devbroker.py start --dir DIR`).

Everything lives in one work directory, reused when it already exists so that
devices keep trusting the same CA and passwords across runs:

    ca.pem ca.key            self-signed CA (the file devices put in `ca_file`)
    server.pem server.key    server certificate for localhost / 127.0.0.1
    clients/<user>.pem|.key  client certificates (CN = user) for the mTLS listener
    passwords/<user>.pass    each user's random password, mode 0600
    mosquitto.passwd acl mosquitto.conf   what Mosquitto reads
    data/                    persistence db (queued QoS 1 messages, sessions)
    mosquitto.log            Mosquitto's log, appended across restarts
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if __package__ in (None, ""):
    # Run as a script: make the repository's `agent` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.central.acl import DeviceEntry, check_id, load_devices, render_acl
from agent.fsutil import atomic_write

HOST = "127.0.0.1"
HOSTNAME = "localhost"
START_TIMEOUT_S = 10.0
CERT_DAYS = 3650


# --------------------------------------------------------------------------- certificates


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret (key, password) readable by its owner only, atomically."""
    # Not fsynced: a developer's throwaway broker is re-made after a power cut.
    atomic_write(path, data, mode=0o600, durable=False)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def _issue(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    server_names: Sequence[str] = (),
    client: bool = False,
) -> x509.Certificate:
    """Build a certificate; issuer None makes a self-signed CA."""
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A little back-dating so a device whose clock is slightly behind still accepts it.
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
    )
    if issuer is None:
        builder = builder.issuer_name(subject).add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        )
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        return builder.sign(key, hashes.SHA256())
    ca_cert, ca_key = issuer
    builder = builder.issuer_name(ca_cert.subject).add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    )
    if server_names:
        sans: list[x509.GeneralName] = []
        for name in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _ensure_cert(
    pem: Path,
    key_path: Path,
    cn: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    **kw: object,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Reuse pem/key if both exist, else create them."""
    if pem.exists() and key_path.exists():
        return x509.load_pem_x509_certificate(pem.read_bytes()), _load_key(key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(cn, key, issuer, **kw)  # type: ignore[arg-type]
    _write_private(key_path, _key_pem(key))
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


# --------------------------------------------------------------------------- configuration


def render_conf(
    workdir: Path, port: int, mtls_port: int, *, bind: str = HOST, run_as_root: bool
) -> str:
    """Mosquitto configuration for the dev broker: one TLS+password and one mTLS listener.

    Mirrors config/mosquitto/mosquitto-password.conf and mosquitto-mtls.conf (see the
    comments there for why each line matters) with paths inside `workdir`.
    """
    d = workdir.resolve()
    # Run as root, mosquitto drops to user `mosquitto`, which cannot read a private
    # temp directory: stay root, but only when we already are (dev/test only).
    user = "user root\n" if run_as_root else ""
    tls = (
        f"cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n"
        # TLS 1.0/1.1 are broken; every Debian 12 device speaks 1.2 and 1.3.
        "tls_version tlsv1.2\n"
    )
    return (
        f"# Generated by scripts/devbroker.py for development and tests. Not for production.\n"
        f"{user}"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {d}/mosquitto.passwd\n"
        f"acl_file {d}/acl\n"
        "persistence true\n"
        f"persistence_location {d}/data/\n"
        "autosave_interval 60\n"
        "persistent_client_expiration 14d\n"
        "max_queued_messages 10000\n"
        "max_queued_bytes 0\n"
        "set_tcp_nodelay true\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        "log_type subscribe\n"
        "connection_messages true\n"
        "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
        "\n"
        f"listener {port} {bind}\n"
        f"{tls}"
        "use_username_as_clientid true\n"
        "\n"
        f"listener {mtls_port} {bind}\n"
        f"{tls}"
        "require_certificate true\n"
        "use_identity_as_username true\n"
        "use_username_as_clientid true\n"
        f"crlfile {d}/crl.pem\n"
    )


def free_port() -> int:
    """A TCP port free on the loopback right now (racy by nature; start retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _mosquitto_binary() -> str:
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if exe is None:
        raise RuntimeError("mosquitto not found: apt-get install mosquitto mosquitto-clients")
    return exe


# --------------------------------------------------------------------------- the broker


class Broker:
    """A Mosquitto subprocess with its certificates, passwords and ACL in `workdir`."""

    host = HOST
    hostname = HOSTNAME

    def __init__(
        self,
        workdir: Path,
        devices: Sequence[DeviceEntry],
        *,
        port: int | None = None,
        mtls_port: int | None = None,
        console_users: Sequence[str] = ("central",),
        bind: str = HOST,
        server_names: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir.resolve()
        self.devices: list[DeviceEntry] = list(devices)
        self.console_users: tuple[str, ...] = tuple(console_users)
        render_acl(self.devices, self.console_users)  # validate before touching disk
        self._fixed_ports = port is not None
        self.port = port if port is not None else free_port()
        self.mtls_port = mtls_port if mtls_port is not None else free_port()
        self.bind = bind
        self.server_names = (HOSTNAME, HOST, *server_names)
        self.ca_file = self.workdir / "ca.pem"
        self.conf_file = self.workdir / "mosquitto.conf"
        self.log_file = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._prepare()

    # ---- files

    @property
    def users(self) -> tuple[str, ...]:
        return (*self.console_users, *(d.id for d in self.devices))

    @property
    def url(self) -> str:
        return f"mqtts://{self.hostname}:{self.port}"

    @property
    def mtls_url(self) -> str:
        return f"mqtts://{self.hostname}:{self.mtls_port}"

    def password_file(self, user: str) -> Path:
        return self.workdir / "passwords" / f"{check_id(user, 'user')}.pass"

    def password(self, user: str) -> str:
        path = self.password_file(user)
        if not path.exists():
            raise KeyError(f"no such broker user: {user!r}")
        return path.read_text(encoding="ascii").strip()

    def client_cert(self, user: str) -> tuple[Path, Path]:
        """(certificate, private key) PEM files for `user` on the mTLS listener."""
        d = self.workdir / "clients"
        cert, key = d / f"{check_id(user, 'user')}.pem", d / f"{user}.key"
        if not cert.exists():
            raise KeyError(f"no such broker user: {user!r}")
        return cert, key

    def _prepare(self) -> None:
        for sub in ("passwords", "clients", "data"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        ca = _ensure_cert(self.ca_file, self.workdir / "ca.key", "tcs dev CA", None)
        server = self.workdir / "server.pem"
        if server.exists():
            # A server cert for other names (e.g. --san) than now asked for is re-issued.
            cert = x509.load_pem_x509_certificate(server.read_bytes())
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have = {str(n.value) for n in sans}
            if not set(self.server_names) <= have:
                server.unlink()
        _ensure_cert(
            server, self.workdir / "server.key", HOSTNAME, ca, server_names=self.server_names
        )
        self._write_credentials(ca)
        if not (self.workdir / "crl.pem").exists():
            self._write_crl(ca)
        self.conf_file.write_text(
            render_conf(
                self.workdir,
                self.port,
                self.mtls_port,
                bind=self.bind,
                run_as_root=os.geteuid() == 0,
            ),
            encoding="utf-8",
        )

    def _write_credentials(
        self, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
    ) -> None:
        """Passwords, client certs, hashed password file and ACL for the current users."""
        if ca is None:
            ca = _ensure_cert(self.ca_file, self.workdir / "ca.key", "tcs dev CA", None)
        plain = []
        for user in self.users:
            pass_path = self.password_file(user)
            if not pass_path.exists():
                _write_private(pass_path, (secrets.token_urlsafe(18) + "\n").encode())
            plain.append(f"{user}:{self.password(user)}\n")
            cert, key = (
                self.workdir / "clients" / f"{user}.pem",
                self.workdir / "clients" / f"{user}.key",
            )
            _ensure_cert(cert, key, user, ca, client=True)
        # mosquitto_passwd -U hashes a whole "user:password" file in place, in one call.
        tmp = self.workdir / "mosquitto.passwd.tmp"
        _write_private(tmp, "".join(plain).encode())
        subprocess.run(
            ["mosquitto_passwd", "-U", str(tmp)], check=True, capture_output=True, timeout=30
        )
        os.replace(tmp, self.workdir / "mosquitto.passwd")
        acl_tmp = self.workdir / "acl.tmp"
        acl_tmp.write_text(render_acl(self.devices, self.console_users), encoding="utf-8")
        os.replace(acl_tmp, self.workdir / "acl")

    def _write_crl(
        self, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
    ) -> None:
        """crl.pem: the CA's revocation list, listing every serial in `revoked`."""
        if ca is None:
            ca = _ensure_cert(self.ca_file, self.workdir / "ca.key", "tcs dev CA", None)
        ca_cert, ca_key = ca
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - dt.timedelta(days=1))
            .next_update(now + dt.timedelta(days=CERT_DAYS))
        )
        listed = self.workdir / "revoked"
        for line in listed.read_text().split() if listed.exists() else ():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(line))
                .revocation_date(now - dt.timedelta(minutes=1))
                .build()
            )
        crl = builder.sign(ca_key, hashes.SHA256())
        atomic_write(self.workdir / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))

    def revoke(self, user: str) -> None:
        """Revoke `user`'s client certificate (CRL); applies at the next (re)start."""
        cert, _key = self.client_cert(user)
        serial = x509.load_pem_x509_certificate(cert.read_bytes()).serial_number
        with (self.workdir / "revoked").open("a", encoding="utf-8") as f:
            f.write(f"{serial}\n")
        self._write_crl()

    # ---- process

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def start(self) -> None:
        """Start Mosquitto and return once the TLS listener completes a handshake."""
        if self.running:
            raise RuntimeError("broker already running")
        attempts = 1 if self._fixed_ports else 3
        for attempt in range(attempts):
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(
                    [_mosquitto_binary(), "-c", str(self.conf_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C in a terminal reaches only us
                )
            try:
                self._wait_ready()
                return
            except RuntimeError:
                log_text = self._log_since(offset)
                if attempt + 1 < attempts and "in use" in log_text:
                    # Lost a race for the free port we picked: pick new ones.
                    self.port, self.mtls_port = free_port(), free_port()
                    self._prepare()
                    continue
                raise RuntimeError(
                    f"mosquitto did not start on port {self.port}:\n{log_text[-2000:]}"
                ) from None

    def _log_since(self, offset: int) -> str:
        with contextlib.suppress(OSError), self.log_file.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
        return ""

    def _wait_ready(self) -> None:
        # Readiness only: the listener completes a handshake. Whether its certificate
        # verifies is the clients' business (tests serve odd ones on purpose).
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                break
            try:
                with (
                    socket.create_connection((HOST, self.port), timeout=1) as raw,
                    ctx.wrap_socket(raw, server_hostname=HOSTNAME),
                ):
                    pass
                with socket.create_connection((HOST, self.mtls_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError("mosquitto not ready")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM): Mosquitto writes its persistence db on the way out."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, like a power cut: only what was autosaved survives."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same ports with the same persistence db."""
        self.stop()
        self.start()

    def reload(self, timeout: float = 5.0) -> None:
        """Re-read the password file and ACL (SIGHUP); returns once Mosquitto did so."""
        if self._proc is None or not self.running:
            return
        before = self._log_since(0).count("Reloading config")
        self._proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        # The log line is written just before the reload, inside Mosquitto's single
        # main loop, so any connection made after we see it meets the new files.
        while self._log_since(0).count("Reloading config") <= before:
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not log a config reload after SIGHUP")
            time.sleep(0.02)

    def set_devices(self, devices: Sequence[DeviceEntry]) -> None:
        """Replace the device list: re-render credentials and ACL, reload if running."""
        render_acl(devices, self.console_users)
        self.devices = list(devices)
        self._write_credentials()
        self.reload()

    def add_device(self, entry: DeviceEntry) -> None:
        """Add (or replace, by id) one device and apply it to the running broker."""
        self.set_devices([*(d for d in self.devices if d.id != entry.id), entry])

    def info(self) -> dict[str, object]:
        return {
            "url": self.url,
            "mtls_url": self.mtls_url,
            "ca_file": str(self.ca_file),
            "passwords_dir": str(self.workdir / "passwords"),
            "client_certs_dir": str(self.workdir / "clients"),
            "log_file": str(self.log_file),
            "users": list(self.users),
        }

    def __enter__(self) -> Broker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_broker(
    workdir: Path,
    devices: Sequence[DeviceEntry],
    *,
    port: int | None = None,
    mtls_port: int | None = None,
    console_users: Sequence[str] = ("central",),
    bind: str = HOST,
    server_names: Sequence[str] = (),
) -> Broker:
    """Prepare `workdir` and start a broker; the caller must `stop()` it (or use `with`)."""
    broker = Broker(
        workdir,
        devices,
        port=port,
        mtls_port=mtls_port,
        console_users=console_users,
        bind=bind,
        server_names=server_names,
    )
    broker.start()
    return broker


# --------------------------------------------------------------------------- command line


def _pid_path(workdir: Path) -> Path:
    return workdir / "devbroker.pid"


DEMO_DEVICES = (
    DeviceEntry("dev-0001", ("vn-48", "vn-48-490", "vn-48-490-20194")),
    DeviceEntry("dev-0002", ("vn-48", "vn-48-491")),
)


def _devices_from_args(args: argparse.Namespace) -> list[DeviceEntry]:
    devices = load_devices(args.devices) if args.devices else []
    if args.demo_devices:
        known = {d.id for d in devices}
        devices += [d for d in DEMO_DEVICES if d.id not in known]
    return devices


def _cmd_start(args: argparse.Namespace) -> int:
    workdir: Path = args.dir
    devices = _devices_from_args(args)
    broker = start_broker(
        workdir,
        devices,
        port=args.port,
        mtls_port=args.mtls_port,
        console_users=args.console_user or ("central",),
        bind=args.bind,
        server_names=args.san,
    )
    _pid_path(workdir).write_text(f"{os.getpid()}\n")
    (workdir / "broker.json").write_text(json.dumps(broker.info(), indent=2) + "\n")
    reload_asked = False

    def on_hup(_sig: int, _frame: object) -> None:
        nonlocal reload_asked
        reload_asked = True

    def on_term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    print(f"broker     {broker.url}   (mTLS: {broker.mtls_url})")
    print(f"CA         {broker.ca_file}")
    print(f"passwords  {workdir.resolve() / 'passwords'}/<user>.pass")
    print(f"mTLS certs {workdir.resolve() / 'clients'}/<user>.pem|.key")
    print(f"users      {', '.join(broker.users)}")
    print(f"log        {broker.log_file}")
    print("Ctrl-C stops; `devbroker.py reload --dir DIR` re-reads the devices file.", flush=True)
    try:
        while True:
            time.sleep(0.5)
            if reload_asked:
                reload_asked = False
                try:
                    broker.set_devices(_devices_from_args(args))
                    print(f"reloaded: users {', '.join(broker.users)}", flush=True)
                except (ValueError, OSError, RuntimeError) as exc:
                    print(f"reload failed, previous devices kept: {exc}", file=sys.stderr)
            if not broker.running:
                print("mosquitto exited; see the log", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
        _pid_path(workdir).unlink(missing_ok=True)
    return 0


def _signal_running(workdir: Path, sig: signal.Signals) -> int:
    try:
        pid = int(_pid_path(workdir).read_text())
    except (OSError, ValueError):
        print(f"no dev broker running in {workdir}", file=sys.stderr)
        return 1
    os.kill(pid, sig)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TCS development MQTT broker (Mosquitto)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("start", help="start a broker and run until Ctrl-C")
    p.add_argument("--dir", type=Path, required=True, help="work directory (reused if present)")
    p.add_argument("--port", type=int, default=None, help="TLS+password port (default: free)")
    p.add_argument("--mtls-port", type=int, default=None, help="mTLS port (default: free)")
    p.add_argument("--devices", type=Path, default=None, help="devices TOML ([[device]] tables)")
    p.add_argument(
        "--demo-devices",
        action="store_true",
        help="also add the demo devices dev-0001 and dev-0002 (groups as in the tests)",
    )
    p.add_argument("--console-user", action="append", help="console user (default: central)")
    p.add_argument("--bind", default=HOST, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--san", action="append", default=[], help="extra server cert name/IP")
    for name, text in (("reload", "re-read the devices file"), ("stop", "stop the broker")):
        q = sub.add_parser(name, help=text)
        q.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.cmd == "start":
        try:
            return _cmd_start(args)
        except (ValueError, RuntimeError, OSError) as exc:
            print(f"devbroker: {exc}", file=sys.stderr)
            return 2
    if args.cmd == "reload":
        return _signal_running(args.dir, signal.SIGHUP)
    return _signal_running(args.dir, signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())

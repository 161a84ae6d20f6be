"""Broker checks: reachable (TCP), TLS (the configured CA, the device's client
certificate), login (an MQTT CONNECT with the device's credentials)."""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.doctor.model import Check, LooseConfig, M


@dataclass
class BrokerAddress:
    url: str
    host: str
    port: int
    tls: bool


def broker_address(loose: LooseConfig) -> BrokerAddress | None:
    url = loose.get("broker", "url", "")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        return None
    tls = parts.scheme == "mqtts"
    return BrokerAddress(url, parts.hostname, port or (8883 if tls else 1883), tls)


def check_broker_reach(b: BrokerAddress | None, timeout_s: float) -> Check:
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


def _tls_context(loose: LooseConfig, clock_trusted: bool) -> ssl.SSLContext:
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


def check_broker_tls(
    loose: LooseConfig, b: BrokerAddress, timeout_s: float, clock_trusted: bool
) -> Check:
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
    loose: LooseConfig,
    b: BrokerAddress,
    timeout_s: float,
    clock_trusted: bool,
    agent: dict[str, Any] | None,
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

"""A real `tcs-agent run` subprocess against the test broker, and a province-side
client that signs commands and watches what the device reports.

    with AgentProc.create(tmp_path, broker, "dev-0001") as agent:   # enrolls + starts
        province = Province(broker, trust_key)                      # paho, sync
        jti = province.send("dev-0001", "status.request")
        ack = province.wait_ack(jti)
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from agent import jws
from agent.link import X509_V_FLAG_NO_CHECK_TIME

REPO = Path(__file__).resolve().parents[2]


@dataclass
class TrustKey:
    kid: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    commands: Sequence[str] = ("*",)
    max_priority: int = 100

    @property
    def public_b64(self) -> str:
        return jws.b64url_encode(jws.public_raw(self.key))

    def toml(self) -> str:
        cmds = ", ".join(json.dumps(c) for c in self.commands)
        return (
            f'[[trust]]\nkid = "{self.kid}"\npublic_key = "{self.public_b64}"\n'
            f"commands = [{cmds}]\nmax_priority = {self.max_priority}\n"
        )


def agent_config(
    workdir: Path,
    broker: Any,
    device_id: str,
    groups: Sequence[str],
    trust: Sequence[TrustKey],
    *,
    clock_trust: str = "always",
    keepalive_s: int = 60,
    heartbeat_s: int = 60,
    extra: str = "",
) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    g = ", ".join(json.dumps(x) for x in groups)
    text = f"""
[device]
id = "{device_id}"
groups = [{g}]
timezone = "Asia/Ho_Chi_Minh"
key_file = "device.key"

[broker]
url = "mqtts://{broker.hostname}:{broker.port}"
username = "{device_id}"
password_file = "{broker.password_file(device_id)}"
ca_file = "{broker.ca_file}"
keepalive_s = {keepalive_s}

{"".join(t.toml() + chr(10) for t in trust)}
[storage]
dir = "state"

[audio]
output = "none"

[display]
kind = "none"

[report]
heartbeat_s = {heartbeat_s}

[clock]
trust = "{clock_trust}"
{extra}
"""
    path = workdir / "agent.toml"
    path.write_text(text)
    return path


def run_cli(
    *args: str, timeout: float = 30, lang: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`tcs-agent ARGS`; with `lang`, under that LANG alone (gettext reads LANGUAGE,
    LC_ALL and LC_MESSAGES first, so those are dropped)."""
    env = None
    if lang is not None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")}  # fmt: skip
        env["LANG"] = lang
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


class AgentProc:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = config.parent / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(
        cls,
        workdir: Path,
        broker: Any,
        device_id: str,
        groups: Sequence[str],
        trust: Sequence[TrustKey],
        **kw: Any,
    ) -> AgentProc:
        cfg = agent_config(workdir, broker, device_id, groups, trust, **kw)
        out = run_cli("enroll", "-c", str(cfg))
        assert out.returncode == 0, out.stderr
        return cls(cfg)

    def start(self) -> AgentProc:
        env = dict(os.environ, TCS_LOG_LEVEL="debug", PYTHONUNBUFFERED="1")
        with self.log.open("ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", "-c", str(self.config)],
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=env,
            )
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 10) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> AgentProc:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Msg:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Province:
    """The provincial side as a plain paho client logged in as `central`."""

    def __init__(
        self,
        broker: Any,
        key: TrustKey | None = None,
        *,
        user: str = "central",
        check_cert_dates: bool = True,
    ) -> None:
        self.key = key
        self.messages: list[Msg] = []
        self._cond = threading.Condition()
        self._new: queue.Queue[Msg] = queue.Queue()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=paho.MQTTv5)
        c.username_pw_set(user, broker.password(user))
        ctx = ssl.create_default_context(cafile=str(broker.ca_file))
        if not check_cert_dates:  # for tests whose broker certificate is dated oddly on purpose
            ctx.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
        c.tls_set_context(ctx)
        c.on_message = self._on_message
        connected = threading.Event()
        c.on_connect = lambda *a, **k: connected.set()
        c.connect(broker.hostname, broker.port, keepalive=30)
        c.loop_start()
        assert connected.wait(10), "province client could not connect"
        sock = c.socket()
        if sock is not None:  # no Nagle delay on our small commands
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Every subscription granted (SUBACK) before the test goes on: nothing the
        # device says afterwards is missed, however slow the broker is to answer.
        granted: set[int] = set()
        c.on_subscribe = lambda _c, _u, mid, *_a: self._granted(granted, mid)
        mids = {c.subscribe(f"tcs/v1/dev/+/{t}", qos=1)[1]
                for t in ("state", "hb", "ack", "proof", "event")}  # fmt: skip
        with self._cond:
            assert self._cond.wait_for(lambda: mids <= granted, 30), "subscriptions not granted"
        self.client = c

    def _granted(self, granted: set[int], mid: int) -> None:
        with self._cond:
            granted.add(mid)
            self._cond.notify_all()

    def _on_message(self, _c: Any, _u: Any, m: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Msg(m.topic, bytes(m.payload), bool(m.retain), time.time()))
            self._cond.notify_all()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    # -- sending --------------------------------------------------------------------

    def token(
        self,
        aud: str,
        cmd: str,
        args: dict[str, Any] | None = None,
        *,
        jti: str | None = None,
        ttl: int = 300,
        iat: int | None = None,
        key: TrustKey | None = None,
        header: dict[str, Any] | None = None,
    ) -> tuple[str, str]:
        k = key or self.key
        assert k is not None
        now = int(time.time()) if iat is None else iat
        jti = jti or uuid.uuid4().hex
        claims = {
            "iss": "vn-48",
            "aud": aud,
            "jti": jti,
            "iat": now,
            "exp": now + ttl,
            "cmd": cmd,
            "args": args or {},
        }
        h = header or {"alg": "EdDSA", "typ": "JWT", "kid": k.kid}
        return jti, jws.sign_compact(k.key, h, claims)

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def send(self, device: str, cmd: str, args: dict[str, Any] | None = None, **kw: Any) -> str:
        jti, token = self.token(device, cmd, args, **kw)
        self.publish(f"tcs/v1/dev/{device}/cmd", token)
        return jti

    # -- watching -------------------------------------------------------------------

    def wait_for(self, pred: Callable[[Msg], bool], timeout: float = 10) -> Msg:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"nothing matching within {timeout}s; got {self.summary()}"
                    )
                self._cond.wait(left)

    def acks(self, device: str = "dev-0001") -> list[dict[str, Any]]:
        with self._cond:
            return [m.json() for m in self.messages if m.topic == f"tcs/v1/dev/{device}/ack"]

    def wait_ack(
        self,
        jti: str | None,
        *,
        status: str | None = None,
        device: str = "dev-0001",
        timeout: float = 10,
        code: str | None = None,
    ) -> dict[str, Any]:
        def pred(m: Msg) -> bool:
            if m.topic != f"tcs/v1/dev/{device}/ack":
                return False
            a = m.json()
            return (
                a["jti"] == jti
                and (status is None or a["status"] == status)
                and (code is None or a["code"] == code)
            )

        return self.wait_for(pred, timeout).json()  # type: ignore[no-any-return]

    def summary(self) -> str:
        return "; ".join(f"{m.topic} {m.payload[:120]!r}" for m in self.messages[-15:])

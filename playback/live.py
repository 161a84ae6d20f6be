"""Relay of a live stream (http/https/icecast/HLS/rtsp) to the output, through libVLC
in a child process (`playback.live_child`).

Why a child: libVLC parses whatever a network stream contains with a large C code
base; inside the agent it would sit beside the device key, and a hang or crash in it
would take the agent down. `LiveStream` keeps the API the playout wiring uses
(`run()` → `LiveEnd`, `stop()`, `played_ms`, `reconnects`, `started_wall`) and
supervises the child like the engine supervises its player process: a child that
dies, or stops sending its heartbeat for `HB_TIMEOUT_S`, is killed (SIGKILL to its
process group) and started again after a back-off, counted as a reconnect; after
`max_retries` such restarts in a row without sound the relay is given up (`failed`,
`relay_crashed`). `stop()` asks the child to stop and kills it if it has not ended
within `STOP_GRACE_S` (closing a stream can block on a dead socket).

`check_url` validates a stream URL; with `require_tls` (`[audio] live_require_tls`,
the default) only https is accepted: anyone on the path of a plain http/rtsp/icecast
stream could speak through the horns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SCHEMES = ("http", "https", "rtsp", "icecast", "mms", "rtmp")
TLS_SCHEMES = ("https",)
POLL_S = 0.1
STALL_S = 4.0  # Playing but the stream clock frozen this long: the player is stuck
DEFAULT_BACKOFF = (1.0, 2.0, 4.0, 8.0)
HB_TIMEOUT_S = 5.0  # the child beats every 0.2 s; this long silent, it is hung
START_TIMEOUT_S = 20.0  # the child's first beat (Python + libVLC start) within this
STOP_GRACE_S = 3.0

EndOutcome = Literal["cancelled", "failed"]


class LiveUnavailable(RuntimeError):
    """libVLC cannot be loaded or cannot make a player here (the relay is not supported)."""


def check_url(url: str, *, require_tls: bool = False) -> str:
    """The stream URL as VLC takes it, or ValueError naming what is wrong with it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"live url scheme {parts.scheme!r} is not one of {', '.join(SCHEMES)}")
    if not parts.hostname:
        raise ValueError(f"live url {url!r} has no host")
    if require_tls and scheme not in TLS_SCHEMES:
        raise ValueError(
            f"live url scheme {parts.scheme!r} is not encrypted and [audio] live_require_tls "
            "is true on this device: use https, or set live_require_tls = false"
        )
    # VLC knows icecast as plain http.
    return "http" + url[len("icecast") :] if scheme == "icecast" else url


@dataclass
class LiveEnd:
    """How a relay ended and what it sounded (wall seconds; None when nothing sounded)."""

    outcome: EndOutcome
    reason: str | None
    started_wall: float | None
    ended_wall: float | None
    played_ms: int
    reconnects: int


@dataclass(frozen=True)
class RelaySettings:
    """What one relay needs; sent to the child as its first line (JSON)."""

    url: str
    device: str
    volume: int = 100
    max_retries: int = 3
    backoff: tuple[float, ...] = DEFAULT_BACKOFF
    stall_s: float = STALL_S
    ca_file: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RelaySettings:
        doc = json.loads(text)
        return cls(
            url=str(doc["url"]),
            device=str(doc["device"]),
            volume=max(0, min(100, int(doc["volume"]))),
            max_retries=int(doc["max_retries"]),
            backoff=tuple(float(x) for x in doc["backoff"]) or (1.0,),
            stall_s=float(doc["stall_s"]),
            ca_file=str(doc["ca_file"]) if doc.get("ca_file") else None,
        )


def _child_env() -> dict[str, str]:
    pkg_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
    return env


class RelayProcesses:
    """Starts relay children for one output device (and CA); once one was taken, the
    next is started ahead, so that a relay after an alert or a crash sounds within a
    moment (Python and libVLC's plugin scan take the best part of a second). The spare
    waits with libVLC started and no stream; `close()` ends it (so does the agent's
    exit: the child ends at the end of its stdin)."""

    def __init__(self, device: str, ca_file: Path | None = None, *, keep_spare: bool = True):
        self.device = device
        self.ca_file = ca_file
        self.keep_spare = keep_spare
        self._spare: asyncio.Task[asyncio.subprocess.Process] | None = None
        self._ready: asyncio.subprocess.Process | None = None  # the spare said "ready"

    async def check(self) -> str:
        """"" when a relay child starts here (it then waits as the spare, so the relay
        asked for next starts at once), else why not (libVLC missing, ...)."""
        if self._spare is None:
            self._spare = asyncio.ensure_future(self._spawn())
        try:
            proc = await asyncio.shield(self._spare)
        except (OSError, LiveUnavailable) as e:
            self._spare = None
            return str(e)
        if self._ready is proc and proc.returncode is None:
            return ""
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                ev = _parse(await proc.stdout.readline())
        except TimeoutError:
            ev = {"detail": f"the live relay process did not start in {START_TIMEOUT_S:g} s"}
        if ev.get("ev") == "ready":
            self._ready = proc
            return ""
        self._spare = None
        await _kill(proc)
        return str(ev.get("detail") or "the live relay process failed at start")[:200]

    async def take(self) -> asyncio.subprocess.Process:
        """A started child, waiting for its settings line."""
        proc: asyncio.subprocess.Process | None = None
        spare, self._spare = self._spare, None
        if spare is not None:
            with contextlib.suppress(OSError):
                proc = await spare
        if proc is None or proc.returncode is not None:
            proc = await self._spawn()
        if self.keep_spare:
            self._spare = asyncio.ensure_future(self._spawn())
        return proc

    async def _spawn(self) -> asyncio.subprocess.Process:
        ca = ["--ca-file", str(self.ca_file)] if self.ca_file is not None else []
        try:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "playback.live_child", "--device", self.device, *ca,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=None, env=_child_env(), start_new_session=True,
            )  # fmt: skip
        except OSError as e:
            raise LiveUnavailable(f"cannot start the live relay process: {e}") from e

    async def close(self) -> None:
        spare, self._spare = self._spare, None
        if spare is None:
            return
        try:
            proc = await spare
        except (OSError, LiveUnavailable, asyncio.CancelledError):
            return
        await _kill(proc)


class LiveStream:
    """One relay of `url` to `device`; `run()` once, `stop()` from anywhere in the loop."""

    def __init__(
        self,
        url: str,
        device: str,
        *,
        volume: int = 100,
        max_retries: int = 3,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        stall_s: float = STALL_S,
        wall: Callable[[], float] = time.time,
        on_sounding: Callable[[], None] | None = None,
        ca_file: Path | None = None,
        processes: RelayProcesses | None = None,
    ) -> None:
        # Without a shared pool (a relay on its own), no child is started ahead.
        self._processes = processes or RelayProcesses(device, ca_file, keep_spare=False)
        self.settings = RelaySettings(
            check_url(url), device, max(0, min(100, volume)), max_retries,
            tuple(backoff) or (1.0,), stall_s, str(ca_file) if ca_file else None,
        )  # fmt: skip
        self.url = self.settings.url
        self.max_retries = max_retries
        self.backoff = self.settings.backoff
        self.wall = wall
        self.on_sounding = on_sounding
        self._stop = asyncio.Event()
        self.reconnects = 0
        self.restarts = 0  # children killed or lost and started again
        self.started_wall: float | None = None
        self._played_before = 0  # ms sounded by earlier children
        self._played_now = 0  # ms sounded by the current child
        self.pid: int | None = None  # the current child's pid (tests, diagnostics)

    def stop(self) -> None:
        self._stop.set()

    @property
    def played_ms(self) -> int:
        return self._played_before + self._played_now

    async def run(self) -> LiveEnd:
        """Relay until stopped (`cancelled`) or given up (`failed`)."""
        failures = 0
        while True:
            end = await self._run_child()
            if end is not None:
                return end
            if self._stop.is_set():
                return self._end("cancelled", None)
            sounded = self._played_now > 0
            self._played_before += self._played_now
            self._played_now = 0
            failures = 0 if sounded else failures + 1
            if failures > self.max_retries:
                return self._end("failed", "relay_crashed")
            self.restarts += 1
            self.reconnects += 1
            delay = self.backoff[min(max(failures, 1), len(self.backoff)) - 1]
            log.warning("live %s: relay process lost; restarting in %.1fs", self.url, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()
            if self._stop.is_set():
                return self._end("cancelled", None)

    def _end(self, outcome: EndOutcome, reason: str | None) -> LiveEnd:
        ended = self.wall() if self.started_wall is not None else None
        return LiveEnd(outcome, reason, self.started_wall, ended, self.played_ms, self.reconnects)

    async def _run_child(self) -> LiveEnd | None:
        """One child until it reports its end (returned) or dies / hangs (None)."""
        proc = await self._processes.take()
        assert proc.stdin is not None and proc.stdout is not None
        self.pid = proc.pid
        # The child's wall clock is ours, unless a test gave us another one.
        offset = self.wall() - time.time()
        reconnects_before = self.reconnects
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            proc.stdin.write((self.settings.to_json() + "\n").encode())
            await proc.stdin.drain()
            timeout = START_TIMEOUT_S
            while True:
                reader = asyncio.ensure_future(proc.stdout.readline())
                done, _ = await asyncio.wait(
                    {reader, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if stopper in done and reader not in done:
                    await _cancelled(reader)  # one reader of the pipe at a time
                    return await self._stop_child(proc, offset, reconnects_before)
                if reader not in done:
                    await _cancelled(reader)
                    log.error("live %s: relay process stopped answering; killed", self.url)
                    return None
                line = reader.result()
                if not line:
                    log.error("live %s: relay process died (exit %s)", self.url,
                              await _exit_code(proc))  # fmt: skip
                    return None
                timeout = HB_TIMEOUT_S
                end = self._on_event(_parse(line), offset, reconnects_before)
                if end is not None:
                    return end
        except (BrokenPipeError, ConnectionResetError):
            return None
        finally:
            stopper.cancel()
            await _kill(proc)
            self.pid = None

    async def _stop_child(
        self, proc: asyncio.subprocess.Process, offset: float, reconnects_before: int
    ) -> LiveEnd:
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(OSError):
            proc.stdin.write(b'{"op": "stop"}\n')
            await proc.stdin.drain()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE_S):
                while line := await proc.stdout.readline():
                    end = self._on_event(_parse(line), offset, reconnects_before)
                    if end is not None:
                        return end
        return self._end("cancelled", None)  # killed on the way out

    def _on_event(
        self, ev: dict[str, Any], offset: float, reconnects_before: int
    ) -> LiveEnd | None:
        kind = ev.get("ev")
        if kind in ("hb", "end"):
            self._played_now = int(ev.get("played_ms") or 0)
            self.reconnects = reconnects_before + int(ev.get("reconnects") or 0)
        if kind == "sounding" and self.started_wall is None:
            self.started_wall = float(ev.get("wall") or time.time()) + offset
            if self.on_sounding is not None:
                self.on_sounding()
        elif kind == "error":
            raise LiveUnavailable(str(ev.get("detail") or "libVLC cannot start"))
        elif kind == "end":
            outcome: EndOutcome = "failed" if ev.get("outcome") == "failed" else "cancelled"
            reason = ev.get("reason")
            return self._end(outcome, str(reason) if reason else None)
        return None


async def _cancelled(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _parse(line: bytes) -> dict[str, Any]:
    try:
        ev = json.loads(line)
    except ValueError:
        return {}
    return ev if isinstance(ev, dict) else {}


async def _exit_code(proc: asyncio.subprocess.Process) -> int | None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            return await proc.wait()
    return None


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5.0):
            await proc.wait()


_AVAILABLE: str | None = None  # "" = libVLC works; else why not (checked once per process)


def vlc_unavailable() -> str:
    """Why libVLC cannot relay here ("" when it can), asked of a child process once:
    libVLC is never loaded into the agent itself. Blocking: call it off the loop."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            out = subprocess.run(
                [sys.executable, "-m", "playback.live_child", "--probe"],
                capture_output=True, text=True, timeout=30, env=_child_env(),
                stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
            if out.returncode != 0:
                _AVAILABLE = f"live relay process failed: {out.stderr.strip()[-200:]}"
            else:
                _AVAILABLE = out.stdout.strip()[:200]
        except (OSError, subprocess.TimeoutExpired) as e:
            _AVAILABLE = f"live relay process cannot run: {e}"[:200]
    return _AVAILABLE

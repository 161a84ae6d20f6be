"""The audio engine the agent talks to: asyncio-friendly, never blocks the loop.

It supervises one player process (`playback.player`) that owns the output stream:
start it, watch its heartbeat, SIGKILL it when it hangs or the device goes away, and
reopen the device by name every `retry_s` until it is back. Decoding and TTS run as
subprocesses with deadlines; file work runs in threads. Everything the caller sees
(`Voice` times and levels) comes from the player's callback, i.e. from sample
positions at the DAC, not from when `play()` was called.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from drivers.amplifier import Amplifier, AmplifierPower, NullAmplifier
from playback.chime import chime_pcm
from playback.decode import DEFAULT_DECODER, decode_to_pcm
from playback.levels import dbfs_from_power
from playback.prepared import Prepared
from playback.tts import render_speech

EmitEvent = Callable[[str, str, str], None]  # (level, code, detail), PROTOCOL §6.5
VoiceOutcome = Literal["completed", "preempted", "cancelled", "failed"]


@dataclass(frozen=True)
class AudioStatus:
    """For the heartbeat's `audio` field."""

    ok: bool
    device: str | None


class Voice:
    """One play request; fields fill in as the player reports, `done` resolves at the end."""

    def __init__(self, vid: int, prepared: Prepared, at_wall: float | None, gain: float) -> None:
        self.id = vid
        self.prepared = prepared
        self.at_wall = at_wall
        self.gain = gain
        self.first_sample_wall: float | None = None
        self.ended_wall: float | None = None
        self.played_ms = 0
        self.level_dbfs: float | None = None
        self.outcome: VoiceOutcome | None = None
        self.reason: str | None = None
        self.done: asyncio.Future[Voice] = asyncio.get_running_loop().create_future()
        self._frames_sent = 0

    def __repr__(self) -> str:
        return f"<Voice {self.id} {self.outcome or 'playing'} {self.played_ms} ms>"


AMP_TICK_S = 0.25  # how often the amplifier's on/off policy is re-evaluated
SAMPLE_RATES = (8000, 16000, 22050, 32000, 44100, 48000)  # what the player opens


class AudioEngine:
    @staticmethod
    def settings_problems(*, sample_rate: int, channels: int = 1) -> dict[str, str]:
        """What the engine would refuse at start, by setting (empty: all accepted).

        `tcs-agent config check` asks this too (agent/config.py), so a configuration
        the engine refuses is refused by the check first, not in a restart loop.
        """
        problems: dict[str, str] = {}
        if sample_rate not in SAMPLE_RATES:
            rates = ", ".join(str(r) for r in SAMPLE_RATES)
            problems["sample_rate"] = f"{sample_rate} is not supported (use one of {rates})"
        if channels not in (1, 2):
            problems["channels"] = f"{channels} must be 1 or 2"
        return problems

    def __init__(
        self,
        output: str,
        sample_rate: int,
        pcm_dir: Path,
        *,
        emit_event: EmitEvent,
        amplifier: Amplifier | None = None,
        amp_lead_s: float = 0.0,
        amp_idle_s: float = 30.0,
        emergency_lead_s: float = 0.3,
        channels: int = 1,
        tts_voice: str = "vi",
        decoder: Sequence[str] = DEFAULT_DECODER,
        decode_timeout_s: float = 60.0,
        retry_s: float = 2.0,
        watchdog_s: float = 1.5,
        open_timeout_s: float = 15.0,
        blocksize: int = 960,
        latency_s: float = 0.08,
    ) -> None:
        if problems := self.settings_problems(sample_rate=sample_rate, channels=channels):
            raise ValueError("; ".join(f"audio.{k} {v}" for k, v in problems.items()))
        self.output = output
        self.rate = sample_rate
        self.channels = channels
        self.pcm_dir = pcm_dir
        self.tts_voice = tts_voice
        self._emit = emit_event
        # No amplifier configured: nothing needs to warm up, so sound never waits
        # (amp_lead_s only applies to a switched amplifier).
        self._power = AmplifierPower(
            amplifier or NullAmplifier(),
            lead_s=amp_lead_s if amplifier is not None else 0.0,
            idle_s=amp_idle_s,
        )
        # An emergency (use_master=False) waits at most this long for an amplifier that
        # was off: its chime covers the rest of the settling (docs/AUDIO.md).
        self._emergency_lead = min(emergency_lead_s, self._power.lead_s)
        self._expected: float | None = None  # the planner's next start (amplifier lead)
        self._decoder = tuple(decoder)
        self._decode_timeout = decode_timeout_s
        self._retry_s = retry_s
        self._watchdog_s = watchdog_s
        self._open_timeout = open_timeout_s
        self._player_args = ["--blocksize", str(blocksize), "--latency", str(latency_s)]
        self._ok: bool | None = None  # None: not yet opened once
        self._device: str | None = None
        self._master = 1.0
        self._voices: dict[int, Voice] = {}
        self._next_id = 1
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.restarts = 0
        self.underflows = 0  # output underruns the current player reported

    # ---- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        """Start supervising the output; returns once it is open (or first failed)."""
        if self.output.strip().lower() == "none":
            self._ok = False
            return
        self._tasks = [
            asyncio.create_task(self._supervise(), name="audio-supervisor"),
            asyncio.create_task(self._amp_loop(), name="audio-amplifier"),
        ]
        await self.wait_ready(self._open_timeout)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The output supervisor and the amplifier loop (long-lived; for liveness)."""
        return list(self._tasks)

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        return self._ok is True

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await self._kill_player(graceful=True)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._fail_all("cancelled", "engine_stopped")
        self._power.update(time.time() + 1e9, playing=False, next_start=None)

    def status(self) -> AudioStatus:
        return AudioStatus(self._ok is True, self._device if self._ok else None)

    # ---- preparing -----------------------------------------------------------------
    async def prepare(
        self, sources: Path | Sequence[Path], sha256s: Sequence[str] | None = None
    ) -> Prepared:
        """Decode media (cached by SHA-256) ahead of its deadline."""
        paths = [sources] if isinstance(sources, Path) else list(sources)
        if sha256s is not None and len(sha256s) != len(paths):
            raise ValueError(f"{len(paths)} media files but {len(sha256s)} sha256s")
        pcms = []
        for i, p in enumerate(paths):
            pcms.append(
                await decode_to_pcm(
                    p, self.pcm_dir, rate=self.rate, channels=self.channels,
                    sha256=None if sha256s is None else sha256s[i],
                    timeout_s=self._decode_timeout, command=self._decoder,
                )
            )  # fmt: skip
        shas = tuple(sha256s) if sha256s is not None else ()
        return await asyncio.to_thread(
            Prepared.from_pcm, pcms, sample_rate=self.rate, channels=self.channels, sha256s=shas
        )

    async def prepare_text(self, text: str, voice: str | None = None) -> Prepared:
        """Speak `text` with espeak-ng (cached by hash of voice and text)."""
        wav, key = await render_speech(text, self.pcm_dir / "tts", voice=voice or self.tts_voice)
        pcm = await decode_to_pcm(
            wav, self.pcm_dir, rate=self.rate, channels=self.channels, sha256=key,
            timeout_s=self._decode_timeout, command=self._decoder,
        )  # fmt: skip
        return await asyncio.to_thread(
            Prepared.from_pcm, [pcm], sample_rate=self.rate, channels=self.channels
        )

    async def prepare_chime(self) -> Prepared:
        pcm = await asyncio.to_thread(chime_pcm, self.pcm_dir, self.rate, self.channels)
        return Prepared.from_pcm([pcm], sample_rate=self.rate, channels=self.channels)

    # ---- playing ---------------------------------------------------------------------
    def set_master(self, gain: float) -> None:
        """Master gain (0..1) for voices played with use_master=True; applies at once."""
        if not 0.0 <= gain <= 1.0:
            raise ValueError(f"master gain {gain} is outside 0..1")
        self._master = gain
        self._send({"op": "master", "gain": gain})

    def play(
        self,
        prepared: Prepared,
        *,
        at_wall: float | None = None,
        offset_s: float = 0.0,
        gain: float = 1.0,
        use_master: bool = True,
    ) -> Voice:
        """Start `prepared` at wall time `at_wall` (None: as soon as possible).

        Starting a voice pre-empts whatever is playing at that sample. An emergency
        passes use_master=False so that its own volume overrides the master volume.
        """
        if (prepared.sample_rate, prepared.channels) != (self.rate, self.channels):
            raise ValueError(
                f"prepared audio is {prepared.sample_rate} Hz/{prepared.channels} ch, "
                f"engine runs {self.rate} Hz/{self.channels} ch"
            )
        if not 0.0 <= gain <= 4.0:
            raise ValueError(f"gain {gain} is outside 0..4")
        if offset_s < 0:
            raise ValueError(f"offset_s {offset_s} is negative")
        now = time.time()
        lead = None if use_master else self._emergency_lead
        earliest = self._power.sound_may_start(now, lead_s=lead)
        start = max(at_wall if at_wall is not None else now, earliest)
        voice = Voice(self._next_id, prepared, None if start <= now else start, gain)
        self._next_id += 1
        self._power.update(now, playing=False, next_start=start)
        if self._ok is not True or self._proc is None or self._proc.stdin is None:
            self._finish(voice, "failed", "output_unavailable", now)
            return voice
        self._voices[voice.id] = voice
        self._send({
            "op": "play", "id": voice.id, "at_wall": voice.at_wall, "gain": gain,
            "use_master": use_master, "offset_frames": round(offset_s * self.rate),
            "segments": [s.to_wire() for s in prepared.segments],
        })  # fmt: skip
        return voice

    def expect(self, at_wall: float | None) -> None:
        """The planner's next start (None: none planned): a switched amplifier is turned
        on `amp_lead_s` before it, so a scheduled item starts on its sample."""
        self._expected = at_wall
        self._wake_amp()

    def _wake_amp(self) -> None:
        now = time.time()
        self._power.update(now, playing=self.playing, next_start=self._next_start(now))

    def _next_start(self, now: float) -> float | None:
        pending = [v.at_wall for v in self._voices.values() if v.at_wall is not None
                   and v.first_sample_wall is None]  # fmt: skip
        if self._expected is not None and self._expected >= now - 1.0:
            pending.append(self._expected)
        # Switch on one amplifier-loop tick early: the loop looks only every AMP_TICK_S.
        return None if not pending else min(pending) - AMP_TICK_S * 1.2

    def preempt(self, voice: Voice) -> None:
        """Stop `voice` within one buffer (short fade); its outcome is `preempted`."""
        self._stop(voice, "preempted")

    def stop_voice(self, voice: Voice) -> None:
        """Stop `voice` within one buffer; its outcome is `cancelled`."""
        self._stop(voice, "cancelled")

    def _stop(self, voice: Voice, outcome: str) -> None:
        if voice.outcome is None and voice.id in self._voices:
            self._send({"op": "stop", "id": voice.id, "outcome": outcome})

    @property
    def playing(self) -> bool:
        return any(v.first_sample_wall is not None for v in self._voices.values())

    # ---- internals ---------------------------------------------------------------------
    def _send(self, obj: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        # A pipe write of a short line never blocks in practice; the buffer is unbounded.
        proc.stdin.write((json.dumps(obj) + "\n").encode())

    def _finish(self, v: Voice, outcome: VoiceOutcome, reason: str | None, ended: float) -> None:
        if v.outcome is not None:
            return
        v.outcome = outcome
        v.reason = reason
        v.ended_wall = ended if v.first_sample_wall is not None else None
        v.played_ms = round(v._frames_sent * 1000 / self.rate)
        self._voices.pop(v.id, None)
        loop = asyncio.get_running_loop()
        # `done` resolves when the last sample has left the DAC, not when it was queued.
        delay = max(0.0, ended - time.time())
        loop.call_later(delay, _resolve, v)

    def _fail_all(self, outcome: VoiceOutcome, reason: str) -> None:
        now = time.time()
        for v in list(self._voices.values()):
            self._finish(v, outcome, reason, now)

    def _set_ok(self, ok: bool, detail: str) -> None:
        was = self._ok
        self._ok = ok
        self._ready.set()
        if ok and was is False:
            self._emit("info", "audio_device_restored", detail)
        elif not ok and was is not False:
            self._emit("error", "audio_device_lost", detail)

    def _on_event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("ev")
        v = self._voices.get(int(ev.get("id") or 0))
        if kind == "started" and v is not None:
            v.first_sample_wall = float(ev["first_sample_wall"])
        elif kind == "ended" and v is not None:
            v._frames_sent = int(ev["frames_sent"])
            if int(ev["count"]):
                v.level_dbfs = round(dbfs_from_power(float(ev["sum_sq"]), int(ev["count"])), 2)
            self._finish(v, ev["outcome"], None, float(ev["ended_wall"]))
        elif kind == "bad_command" and v is not None:
            self._finish(v, "failed", "bad_media", time.time())
        elif kind == "hb":
            self.underflows = int(ev.get("underflows") or 0)  # this player's, since it opened
            for sid, frames in ev.get("progress", {}).items():
                pv = self._voices.get(int(sid))
                if pv is not None:
                    pv._frames_sent = int(frames)

    async def _supervise(self) -> None:
        while not self._stopping:
            detail = await self._run_player_once()
            if self._stopping:
                return
            self._fail_all("failed", "output_unavailable")
            self._set_ok(False, detail)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._retry_s):
                    await self._wake.wait()

    async def _run_player_once(self) -> str:
        """Run one player process until it fails; return why it failed."""
        pkg_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "playback.player", "--device", self.output,
                "--rate", str(self.rate), "--channels", str(self.channels), *self._player_args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True,
            )  # fmt: skip
        except OSError as e:
            return f"cannot start the player: {e}"
        assert proc.stdout is not None and proc.stderr is not None
        err_task = asyncio.create_task(self._drain_stderr(proc.stderr))
        try:
            try:
                async with asyncio.timeout(self._open_timeout):
                    line = await proc.stdout.readline()
            except TimeoutError:
                return f"{self.output}: player did not open the device in {self._open_timeout} s"
            first = _parse(line)
            if first.get("ev") != "ready":
                return str(first.get("detail") or f"{self.output}: player exited at open")
            self._device = str(first.get("device"))
            if self._master != 1.0:
                self._send({"op": "master", "gain": self._master})
            self._set_ok(True, f"output {self._device!r} open")
            return await self._watch(proc)
        finally:
            await self._kill_player(graceful=False)
            err_task.cancel()
            self.restarts += 1

    async def _watch(self, proc: asyncio.subprocess.Process) -> str:
        """Read player events; a silent or stalled player is declared hung."""
        assert proc.stdout is not None
        last_frames = -1
        last_progress = time.monotonic()
        while True:
            try:
                async with asyncio.timeout(self._watchdog_s):
                    line = await proc.stdout.readline()
            except TimeoutError:
                return f"{self._device}: player stopped answering (killed)"
            if not line:
                return f"{self._device}: output stream ended (device gone?)"
            ev = _parse(line)
            if ev.get("ev") == "hb":
                frames = int(ev.get("frames", 0))
                if frames != last_frames:
                    last_frames = frames
                    last_progress = time.monotonic()
                elif time.monotonic() - last_progress > self._watchdog_s:
                    return f"{self._device}: output stalled, no audio consumed (device gone?)"
            self._on_event(ev)

    async def _kill_player(self, *, graceful: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if graceful and proc.stdin is not None:
            proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await proc.wait()
                return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await proc.wait()

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    async def _amp_loop(self) -> None:
        while True:
            self._wake_amp()
            await asyncio.sleep(AMP_TICK_S)


def _resolve(v: Voice) -> None:
    if not v.done.done():
        v.done.set_result(v)


def _parse(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError:
        return {"ev": "garbage", "detail": line[:200].decode("utf-8", "replace")}
    return obj if isinstance(obj, dict) else {"ev": "garbage"}

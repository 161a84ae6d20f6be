"""The live relay's child process: libVLC relays one stream to the ALSA device.

Run as `python -m playback.live_child` by `playback.live.LiveStream`, never inside the
agent: libVLC (demuxers and codecs for whatever a network stream contains) must not
share an address space with the device key, and a libVLC that hangs or crashes is
killed and restarted by the parent like the audio player (playback/player.py).
`--probe` only says whether libVLC can start here (one line: empty, or why not).

Run as `python -m playback.live_child --device DEV [--ca-file PEM]`: libVLC starts at
once (`{"ev": "ready"}`), before any stream is known, so a child started ahead relays
within a moment of being asked. Wire (JSON lines). stdin, from the parent: first line
the relay settings (`playback.live.RelaySettings`)
  {"url", "device", "volume", "max_retries", "backoff", "stall_s", "ca_file"|null}
then `{"op": "stop"}` (or end of stdin) to stop. stdout, to the parent:
  {"ev": "ready"}                                libVLC started
  {"ev": "sounding", "wall"}                     the stream started sounding
  {"ev": "hb", "played_ms", "reconnects"}        every POLL_S while relaying
  {"ev": "end", "outcome", "reason", "started_wall", "ended_wall", "played_ms",
   "reconnects"}                                  then exit 0
  {"ev": "error", "code": "not_supported", "detail"}   libVLC unusable; exit 2

VLC plays straight to the ALSA device (`--aout=alsa`; `--aout=pulse` loses short
clips, see TESTING-NOTES), not through the engine's player process: the playout
runner keeps the engine silent while a relay sounds.

The relay plays until stopped or until the stream is dead for good. A stream that
ends or errors is reopened after a back-off; one whose clock stops advancing while
VLC still says Playing (a stalled socket VLC never gives up on) is closed and reopened
the same way. After `max_retries` reopenings without sound in between, it is given
up (`failed`, `stream_lost`).

https: libVLC (gnutls) trusts the system store, plus the CA certificates of `ca_file`
(`[audio] live_ca_file`, a province's own CA) through `--gnutls-dir-trust`, which takes
a folder and trusts every file in it: the file is copied alone into a private one. A
server whose certificate is not trusted is given up at once (`failed`, `tls_untrusted`):
that is configuration, not a network blip. Reasons come from libVLC's log, the only
place VLC says why an opening failed (player state is just Ended).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from playback.live import POLL_S, LiveEnd, LiveUnavailable, RelaySettings

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0  # a stream that does not start sounding within this is retried
HEALTHY_S = 10.0  # sounding this long resets the retry budget
STOP_SOUNDS_S = 0.5  # at most this much sound is counted while the player stops


def vlc_args(device: str, trust_dir: Path | None = None) -> list[str]:
    """libVLC options: ALSA output to `device`, no video, no interaction, network caching,
    and CA certificates in `trust_dir` trusted for https besides the system's."""
    alsa = "default" if device.strip().lower() in ("", "default") else device
    trust = [f"--gnutls-dir-trust={trust_dir}"] if trust_dir is not None else []
    return [
        *trust,
        "--aout=alsa",
        f"--alsa-audio-device={alsa}",
        "--no-video",
        "--intf=dummy",
        "--no-xlib",
        "--quiet",
        "--network-caching=1000",
        "--http-reconnect",
    ]


class VlcRelay:
    """One relay of `url` to `device` with libVLC, in this process; `run()` once,
    `stop()` from anywhere in the loop."""

    def __init__(
        self,
        settings: RelaySettings,
        *,
        wall: Callable[[], float] = time.time,
        on_sounding: Callable[[], None] | None = None,
    ) -> None:
        self.device = settings.device
        self.ca_file = Path(settings.ca_file) if settings.ca_file else None
        self.apply(settings)
        self.wall = wall
        self.on_sounding = on_sounding
        self._stop = asyncio.Event()
        self._instance: Any = None
        self._trust_dir: Path | None = None
        self._log_cb: Any = None  # the ctypes callback must outlive the instance
        self._tls_error: str | None = None  # set from libVLC's threads by its log
        self.reconnects = 0
        self.started_wall: float | None = None
        self._played_s = 0.0

    def apply(self, settings: RelaySettings) -> None:
        """What to relay and how (the output device and CA are fixed at construction)."""
        s = settings
        self.url, self.volume = s.url, s.volume
        self.max_retries, self.backoff, self.stall_s = s.max_retries, s.backoff, s.stall_s

    def prepare(self) -> None:
        """Start libVLC now (the slow part: plugins), before the stream is known."""
        if self._instance is None:
            self._instance = self._new_instance()

    def stop(self) -> None:
        self._stop.set()

    @property
    def played_ms(self) -> int:
        return round(self._played_s * 1000)

    def _new_instance(self) -> Any:
        try:
            import vlc
        except Exception as e:  # python-vlc missing
            raise LiveUnavailable(f"python-vlc is not importable: {e}") from e
        if self.ca_file is not None:
            # gnutls trusts every file in the folder: give it one holding only the CA.
            self._trust_dir = Path(tempfile.mkdtemp(prefix="tcs-live-ca-"))
            shutil.copyfile(self.ca_file, self._trust_dir / "ca.pem")
        # `import vlc` succeeds without libvlc; only Instance() shows it is missing.
        try:
            inst = vlc.Instance(vlc_args(self.device, self._trust_dir))
        except Exception as e:
            raise LiveUnavailable(f"libVLC cannot start: {e}") from e
        if inst is None:
            raise LiveUnavailable("libVLC cannot start (is libvlc5 / vlc-plugin-base installed?)")
        self._log_cb = vlc.CallbackDecorators.LogCb(self._on_vlc_log)
        inst.log_set(self._log_cb, None)
        return inst

    def _on_vlc_log(self, _data: Any, level: int, _ctx: Any, fmt: bytes | None, _va: Any) -> None:
        # Called on libVLC's threads; only the (unformatted) message text is looked at.
        if level < 4 or not fmt:  # 4 = LIBVLC_ERROR
            return
        if fmt.startswith(b"Certificate verification failure"):
            self._tls_error = "tls_untrusted"
        elif fmt.startswith(b"TLS session handshake error") and self._tls_error is None:
            self._tls_error = "tls_failed"

    def _release(self, inst: Any) -> None:
        inst.log_unset()
        inst.release()
        if self._trust_dir is not None:
            shutil.rmtree(self._trust_dir, ignore_errors=True)
            self._trust_dir = None

    async def run(self) -> LiveEnd:
        """Relay until stopped (`cancelled`) or given up (`failed`, `stream_lost`)."""
        await asyncio.to_thread(self.prepare)
        failures = 0
        reason = "stream_lost"
        try:
            while not self._stop.is_set():
                self._tls_error = None
                sounded = await self._play_once()
                if self._stop.is_set():
                    break
                # A pinned (known_hosts) certificate logs the failure yet plays: only a
                # silent opening counts.
                if self._tls_error == "tls_untrusted" and sounded == 0:
                    reason = "tls_untrusted"
                    break
                failures = 0 if sounded >= HEALTHY_S else failures + 1
                if failures > self.max_retries:
                    reason = self._tls_error or reason
                    break
                self.reconnects += 1
                delay = self.backoff[min(failures, len(self.backoff)) - 1] if failures else 0.2
                log.warning(
                    "live %s: stream lost, reconnect %d in %.1fs", self.url, failures, delay
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
        finally:
            inst, self._instance = self._instance, None
            if inst is not None:
                await asyncio.to_thread(self._release, inst)
        ended = self.wall() if self.started_wall is not None else None
        if self._stop.is_set():
            return LiveEnd("cancelled", None, self.started_wall, ended, self.played_ms,
                           self.reconnects)  # fmt: skip
        return LiveEnd("failed", reason, self.started_wall, ended, self.played_ms, self.reconnects)

    async def _play_once(self) -> float:
        """Open the stream once and play it until it ends, stalls or is stopped;
        returns the seconds it sounded."""
        import vlc

        player = await asyncio.to_thread(self._open)
        sounded = 0.0
        opened = time.monotonic()
        last_t, last_change, last_poll = -1, time.monotonic(), time.monotonic()
        sounding = False  # this opening has started to sound
        counting = False  # the last poll counted time as sounding
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await self._stop.wait()
                state = player.get_state()
                counting = False
                if state in (vlc.State.Ended, vlc.State.Error, vlc.State.Stopped):
                    break
                now = time.monotonic()
                step, last_poll = now - last_poll, now
                t = player.get_time()
                if state == vlc.State.Playing and (sounding or t > 0 or _audio_played(player)):
                    if not sounding:
                        sounding = True
                        if self.started_wall is None:
                            self.started_wall = self.wall()
                            if self.on_sounding is not None:
                                self.on_sounding()
                    else:
                        # Counted in monotonic time between polls while VLC's clock
                        # moves (in coarse steps), not in polls: a late poll loses nothing.
                        sounded += step
                        self._played_s += step
                        counting = True
                    if t != last_t:
                        last_t, last_change = t, now
                    elif now - last_change > self.stall_s:
                        log.warning("live %s: stuck (clock frozen %.1fs); killing player",
                                    self.url, now - last_change)  # fmt: skip
                        counting = False
                        break
                elif not sounding and now - opened > OPEN_TIMEOUT_S:
                    log.warning("live %s: no sound after %.0fs", self.url, OPEN_TIMEOUT_S)
                    break
        finally:
            # stop() can block on a dead socket: off the event loop, and a fresh player next.
            await asyncio.to_thread(_close, player)
            if counting and self._stop.is_set():
                # Stopped while sounding: VLC sounded from the last poll until stop()
                # returned (bounded: a stop that hangs is not sound).
                tail = min(time.monotonic() - last_poll, POLL_S + STOP_SOUNDS_S)
                sounded += tail
                self._played_s += tail
        return sounded

    def _open(self) -> Any:
        player = self._instance.media_player_new()
        media = self._instance.media_new(self.url)
        player.set_media(media)
        media.release()
        player.audio_set_volume(self.volume)
        if player.play() != 0:
            log.warning("live %s: VLC refused to play", self.url)
        return player


def _audio_played(player: Any) -> bool:
    """Whether VLC has handed audio to the output device. An HLS opening sounds about
    a second before VLC's clock (get_time) first moves: the clock alone starts late."""
    import vlc

    media = player.get_media()
    if media is None:
        return False
    try:
        stats = vlc.MediaStats()
        return bool(media.get_stats(stats)) and stats.played_abuffers > 0
    finally:
        media.release()


def _close(player: Any) -> None:
    player.stop()
    player.release()


def probe() -> str:
    """Why libVLC cannot relay here ("" when it can). Makes one Instance, because
    `import vlc` succeeds without libvlc and only Instance() shows it is missing."""
    try:
        import vlc

        inst = vlc.Instance(["--no-video", "--intf=dummy", "--quiet"])
        if inst is None:
            return "libVLC cannot start (install libvlc5)"
        inst.release()
        return ""
    except Exception as e:
        return f"libVLC cannot start: {e}"[:200]


def _emit(ev: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


async def _serve(relay: VlcRelay) -> int:
    loop = asyncio.get_running_loop()
    relay.on_sounding = lambda: _emit({"ev": "sounding", "wall": relay.started_wall})

    def read_stdin() -> None:
        # Any line after the settings is a stop; end of stdin (the parent went away) too.
        sys.stdin.readline()
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(relay.stop)

    # A daemon thread: a blocked read must not keep the process from exiting.
    threading.Thread(target=read_stdin, daemon=True).start()

    async def beat() -> None:
        while True:
            _emit({"ev": "hb", "played_ms": relay.played_ms, "reconnects": relay.reconnects})
            await asyncio.sleep(POLL_S * 2)

    beats = asyncio.create_task(beat())
    try:
        end = await relay.run()
    finally:
        beats.cancel()
    _emit({"ev": "end", **dataclasses.asdict(end)})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playback.live_child")
    parser.add_argument("--probe", action="store_true", help="only say whether libVLC works")
    parser.add_argument("--device", default="default", help="ALSA output device")
    parser.add_argument("--ca-file", default=None, help="CA certificates (PEM) for https")
    args = parser.parse_args(argv)
    if args.probe:
        print(probe())
        return 0
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="live_child %(levelname)s %(message)s")  # fmt: skip
    # libVLC starts before the stream is known: a child started ahead (playback.live's
    # RelayProcesses) then relays within a moment of being asked.
    relay = VlcRelay(RelaySettings(url="", device=args.device, ca_file=args.ca_file))
    try:
        relay.prepare()
    except LiveUnavailable as e:
        _emit({"ev": "error", "code": "not_supported", "detail": str(e)})
        return 2
    _emit({"ev": "ready"})
    line = sys.stdin.readline()
    if not line:
        return 0  # a spare that was never used: the parent closed it
    try:
        relay.apply(RelaySettings.from_json(line))
    except (ValueError, KeyError, TypeError) as e:
        _emit({"ev": "error", "code": "bad_settings", "detail": f"relay settings: {e}"})
        return 2
    return asyncio.run(_serve(relay))


if __name__ == "__main__":
    sys.exit(main())

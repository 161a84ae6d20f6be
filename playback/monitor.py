"""Acoustic verification: a microphone or loop-back input measures what was heard.

With `[audio] monitor` set, a monitor process (`python -m playback.monitor`) records
the named input device and prints, every ~20 ms block, the block's wall time at the
ADC and its sum of squares. `LevelMonitor` keeps the last minutes of those blocks so
`heard_dbfs(start, end)` can report the RMS heard over a voice's span for its proof.
Like the player, it is a separate process so a hung input driver costs a restart.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import queue
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playback.clockmap import ClockMap
from playback.devices import DeviceNotFound, find_device
from playback.levels import dbfs_from_power

KEEP_BLOCKS = 30_000  # ~10 minutes of 20 ms blocks


class LevelMonitor:
    """Supervises the monitor process and answers `heard_dbfs` over a time span."""

    def __init__(
        self,
        device: str,
        sample_rate: int = 48000,
        *,
        retry_s: float = 5.0,
        on_unavailable: Callable[[str], None] | None = None,
        ready_s: float = 15.0,
    ) -> None:
        self.device = device
        self._on_unavailable = on_unavailable
        self._ready_s = ready_s
        self._watch: asyncio.Task[None] | None = None
        self.rate = sample_rate
        self.retry_s = retry_s
        self._blocks: deque[tuple[float, float, int]] = deque(maxlen=KEEP_BLOCKS)
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self.ok = False
        self.last_error: str | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the monitor process in the background; returns at once.

        Start-up never waits for the input: a microphone that opens but sends no
        data must not hold up the agent (and its emergency path) for seconds.
        """
        self._task = asyncio.create_task(self._run(), name="audio-monitor")
        if self._on_unavailable is not None:
            self._watch = asyncio.create_task(self._warn_if_deaf(), name="audio-monitor-watch")

    async def _warn_if_deaf(self) -> None:
        if not await self.wait_ready(self._ready_s) and self._on_unavailable is not None:
            self._on_unavailable(self.last_error or "no input data")

    async def wait_ready(self, timeout_s: float = 15.0) -> bool:
        """Wait until blocks arrive or the input reports an error; True if it hears."""
        deadline = time.monotonic() + timeout_s
        while not self.ok and self.last_error is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.ok

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        await self._kill()  # its stdout ends, so the reader loop ends by itself too
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._kill()

    def heard_dbfs(self, start_wall: float, end_wall: float) -> float | None:
        """RMS heard between the two wall times, or None if the monitor has no data there."""
        blocks = list(self._blocks)
        starts = [b[0] for b in blocks]
        i = bisect.bisect_left(starts, start_wall)
        j = bisect.bisect_left(starts, end_wall)
        chosen = blocks[i:j]
        if not chosen or blocks[-1][0] < end_wall - 0.1:
            return None
        return round(dbfs_from_power(sum(b[1] for b in chosen), sum(b[2] for b in chosen)), 2)

    async def heard_dbfs_settled(
        self, start_wall: float, end_wall: float, wait_s: float = 0.5
    ) -> float | None:
        """`heard_dbfs` once the blocks covering `end_wall` have arrived (they come one
        block and a pipe hop after the sound), waiting at most `wait_s`."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self._blocks and self._blocks[-1][0] >= end_wall:
                break
            if not self.ok:  # no data is coming: do not hold the proof for it
                break
            await asyncio.sleep(0.02)
        return self.heard_dbfs(start_wall, end_wall)

    async def _run(self) -> None:
        pkg_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
        while not self._stopping:
            self._proc = proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "playback.monitor", "--device", self.device,
                "--rate", str(self.rate), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
                start_new_session=True,
            )  # fmt: skip
            assert proc.stdout is not None
            while True:
                try:
                    async with asyncio.timeout(2.0):
                        line = await proc.stdout.readline()
                except TimeoutError:
                    self.last_error = f"monitor {self.device!r} stopped answering"
                    break
                if not line:
                    break
                fields = line.split()
                if fields[0] == b"E":
                    self.last_error = line[2:].decode("utf-8", "replace").strip()
                    continue
                self.ok = True
                self._blocks.append((float(fields[0]), float(fields[1]), int(fields[2])))
            self.ok = False
            await self._kill()
            await asyncio.sleep(self.retry_s)

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await proc.wait()


def main(argv: list[str] | None = None) -> int:
    """The monitor process: one line per input block, `wall sum_sq count`."""
    ap = argparse.ArgumentParser(prog="python -m playback.monitor")
    ap.add_argument("--device", required=True)
    ap.add_argument("--rate", type=int, default=48000)
    args = ap.parse_args(argv)
    import sounddevice as sd  # PortAudio scans devices at import: only in this process

    try:
        index, _ = find_device(
            args.device, sd.query_devices(), default_index=sd.default.device[0], kind="input"
        )
    except DeviceNotFound as e:
        print("E", e, flush=True)
        return 2
    clock = ClockMap()
    out: queue.SimpleQueue[tuple[float, float, int]] = queue.SimpleQueue()

    def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
        clock.observe(time.time(), float(time_info.currentTime))
        mono = indata[:, 0]
        out.put((clock.to_wall(float(time_info.inputBufferAdcTime)),
                 float(mono @ mono), frames))  # fmt: skip

    try:
        stream = sd.InputStream(
            device=index,
            samplerate=args.rate,
            channels=1,
            dtype="float32",
            blocksize=args.rate // 50,
            callback=callback,
        )
        stream.start()
    except Exception as e:  # PortAudioError and friends: report, the parent retries
        print("E", f"{args.device}: {e}", flush=True)
        return 2
    while True:
        try:
            wall, ss, n = out.get(timeout=1.0)
        except queue.Empty:
            if not stream.active:
                return 3
            continue
        try:
            print(f"{wall:.6f} {ss:.9g} {n}", flush=True)
        except BrokenPipeError:
            return 0


if __name__ == "__main__":
    sys.exit(main())

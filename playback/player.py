"""The player process: owns the PortAudio output stream, runs the mixer in its callback.

Run as `python -m playback.player --device NAME --rate 48000 --channels 1`. It is a
separate process so that a hung or crashed audio stack (a USB card pulled mid-write,
a PulseAudio that stopped answering, a segfault in a driver) can be killed with
SIGKILL and restarted by the engine without touching the agent, and so that each
(re)open scans the device list afresh (PortAudio only scans at initialisation).

Wire (JSON lines). stdin, from the engine:
  {"op": "play", "id", "segments": [[frames, path|null], ...], "gain", "use_master",
   "at_wall": float|null, "offset_frames"}
  {"op": "stop", "id", "outcome": "preempted"|"cancelled"}
  {"op": "master", "gain"}
stdout, to the engine:
  {"ev": "ready", "device", "index", "latency"}          stream running
  {"ev": "started", "id", "first_sample_wall"}           wall time at the DAC
  {"ev": "ended", "id", "ended_wall", "outcome", "frames_sent", "sum_sq", "count"}
  {"ev": "hb", "frames", "underflows", "progress": {id: frames_sent}}   every 200 ms
  {"ev": "error", "code", "detail"}                      then exit 2
End of stdin (the engine went away) ends the process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from playback.clockmap import ClockMap
from playback.devices import DeviceNotFound, find_device
from playback.mixer import Ended, Mixer, MixEvent, MixVoice, Outcome, PcmSource, Started

HB_INTERVAL_S = 0.2


class Player:
    def __init__(self, rate: int, channels: int) -> None:
        self.mixer = Mixer(rate=rate, channels=channels, fade_frames=max(1, rate // 200))
        self.commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.clock = ClockMap()
        self.frames = 0
        self.underflows = 0
        self.finished = threading.Event()

    # Runs on PortAudio's thread: no I/O, no blocking, small allocations only.
    def callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        wall = time.time()
        if status.output_underflow:
            self.underflows += 1
        self.clock.observe(wall, float(time_info.currentTime))
        events: list[MixEvent] = []
        while True:
            try:
                op, arg = self.commands.get_nowait()
            except queue.Empty:
                break
            if op == "play":
                self.mixer.add(arg)
            elif op == "stop":
                events.extend(self.mixer.stop(arg[0], arg[1]))
            elif op == "master":
                self.mixer.master = float(arg)
        dac_wall = self.clock.to_wall(float(time_info.outputBufferDacTime))
        events.extend(self.mixer.render(outdata, dac_wall))
        self.frames += frames
        for e in events:
            if isinstance(e, Started):
                self.events.put(
                    {"ev": "started", "id": e.id, "first_sample_wall": e.first_sample_wall}
                )
            elif isinstance(e, Ended):
                self.events.put({
                    "ev": "ended", "id": e.id, "ended_wall": e.ended_wall or dac_wall,
                    "outcome": e.outcome, "frames_sent": e.frames_sent,
                    "sum_sq": e.sum_sq, "count": e.count,
                })  # fmt: skip

    def progress(self) -> dict[str, int]:
        return {str(v.id): v.frames_sent for v in list(self.mixer.active)}


def _voice_from(cmd: dict[str, Any], channels: int) -> MixVoice:
    segs: list[tuple[int, PcmSource]] = []
    for frames, path in cmd["segments"]:
        if path is None:
            segs.append((int(frames), None))
        else:
            # Memory-mapped: pages are read from the SD card as the callback reaches them.
            mm = np.memmap(Path(path), dtype="<i2", mode="r")
            segs.append((min(int(frames), mm.shape[0] // channels), mm))
    return MixVoice(
        id=int(cmd["id"]), segments=segs, gain=float(cmd["gain"]),
        use_master=bool(cmd.get("use_master", True)), at_wall=cmd.get("at_wall"),
        offset_frames=int(cmd.get("offset_frames", 0)),
    )  # fmt: skip


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _writer(player: Player) -> None:
    next_hb = time.monotonic()
    while not player.finished.is_set():
        with contextlib.suppress(queue.Empty):
            _emit(player.events.get(timeout=0.05))
        if time.monotonic() >= next_hb:
            next_hb += HB_INTERVAL_S
            _emit({"ev": "hb", "frames": player.frames, "underflows": player.underflows,
                   "progress": player.progress()})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m playback.player")
    ap.add_argument("--device", required=True)
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--blocksize", type=int, default=960)
    ap.add_argument("--latency", type=float, default=0.08)
    args = ap.parse_args(argv)

    import sounddevice as sd  # imported here: PortAudio scans devices at import

    try:
        index, name = find_device(
            args.device, sd.query_devices(), default_index=sd.default.device[1]
        )
    except DeviceNotFound as e:
        _emit({"ev": "error", "code": "device_not_found", "detail": str(e)})
        return 2
    player = Player(args.rate, args.channels)
    try:
        stream = sd.OutputStream(
            device=index, samplerate=args.rate, channels=args.channels, dtype="float32",
            blocksize=args.blocksize, latency=args.latency, callback=player.callback,
            finished_callback=player.finished.set,
        )  # fmt: skip
        stream.start()
    except Exception as e:  # PortAudioError and friends: report, let the engine retry
        _emit({"ev": "error", "code": "open_failed", "detail": f"{name}: {e}"})
        return 2
    _emit({"ev": "ready", "device": name, "index": index, "latency": stream.latency})
    writer = threading.Thread(target=_writer, args=(player,), daemon=True)
    writer.start()
    for line in sys.stdin:
        try:
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "play":
                player.commands.put(("play", _voice_from(cmd, args.channels)))
            elif op == "stop":
                outcome: Outcome = cmd["outcome"]
                player.commands.put(("stop", (int(cmd["id"]), outcome)))
            elif op == "master":
                player.commands.put(("master", float(cmd["gain"])))
            else:
                raise ValueError(f"unknown op {op!r}")
        except (ValueError, KeyError, TypeError, OSError) as e:
            player.events.put({"ev": "bad_command", "detail": str(e), "id": _safe_id(line)})
    player.finished.set()
    stream.abort()
    return 0


def _safe_id(line: str) -> int | None:
    try:
        v = json.loads(line).get("id")
        return int(v) if v is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


if __name__ == "__main__":
    sys.exit(main())

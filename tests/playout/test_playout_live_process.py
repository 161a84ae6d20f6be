"""The live relay's libVLC runs in its own process (never in the agent), which is killed
and restarted like the audio player; plain streams are refused unless allowed
(`[audio] live_require_tls`). Real agent, real VLC, real stream, null sink."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from support.live_streams import TONE_HZ, ToneStream, hz_around, rms_db
from support.playout import DEVICE, recording, sound_agent
from support.pulse import PulseRig
from support.recorded import recorded_agent, send_accepted


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry), cmd))
    return found


def _start_ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def _relay_pid(agent_pid: int, timeout: float = 20) -> int:
    """The relaying child: the oldest one (a spare, started ahead, is newer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [
            pid for pid, cmd in _children(agent_pid)
            if "playback.live_child" in cmd and "--probe" not in cmd
        ]  # fmt: skip
        if pids:
            return min(pids, key=_start_ticks)
        time.sleep(0.1)
    raise AssertionError("no live relay process under the agent")


def _maps_libvlc(pid: int) -> bool:
    return "libvlc" in Path(f"/proc/{pid}/maps").read_text()


def _wait_tone(pulse: PulseRig, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if abs(hz_around(pulse, time.time() - 0.3) - TONE_HZ) < 5:
            return
    raise AssertionError("the stream's tone was not heard")


def test_relay_runs_outside_the_agent_and_comes_back_after_a_kill(
    tmp_path: Any, broker: Any, pulse: PulseRig, stream: ToneStream
) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, _rec):
        live = send_accepted(
            province, "live.start", {"session_id": "radio-k", "url": stream.url}, timeout=20
        )
        _wait_tone(pulse)
        assert agent.proc is not None
        first = _relay_pid(agent.proc.pid)
        assert _maps_libvlc(first)
        assert not _maps_libvlc(agent.proc.pid)  # libVLC never loaded beside the key
        os.kill(first, signal.SIGKILL)  # libVLC crashed
        deadline = time.monotonic() + 20
        while (second := _relay_pid(agent.proc.pid)) == first:
            assert time.monotonic() < deadline, "the relay was not restarted"
            time.sleep(0.1)
        t_restart = time.time()
        _wait_tone(pulse)  # the speaker relays the stream again
        assert hz_around(pulse, time.time() - 0.3) > 0 and time.time() > t_restart
        stop = province.send(DEVICE, "live.stop", {"session_id": "radio-k"})
        province.wait_ack(stop, status="done", timeout=10)
        done = province.wait_ack(live, status="done", timeout=15)
        assert "reconnect" in (done["detail"] or ""), done
        # Stopped: the speaker falls silent (a spare relay may wait, without a stream).
        t_stop = time.time()
        deadline = time.monotonic() + 10
        while rms_db(pulse, time.time() - 0.35, time.time() - 0.05) > -50:
            assert time.monotonic() < deadline, "still sounding after live.stop"
            time.sleep(0.1)
        assert second != first and time.time() > t_stop


def test_plain_stream_is_refused_when_tls_is_required(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    agent, province, _ = sound_agent(tmp_path / "a", broker, live_require_tls=True)
    with recording(agent, province, pulse):
        for url in ("http://127.0.0.1:9/radio.mp3", "rtsp://127.0.0.1:9/live",
                    "icecast://127.0.0.1:9/radio"):  # fmt: skip
            jti = province.send(DEVICE, "live.start", {"session_id": "s1", "url": url})
            failed = province.wait_ack(jti, status="failed", timeout=10)
            assert failed["code"] == "bad_args"
            assert "live_require_tls" in failed["detail"]

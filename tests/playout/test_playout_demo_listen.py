"""`demo.sh --listen` (scripts/demo_listen.py): the route from the demo's null sink to the
machine's real speakers. There is no sound card here, so a second private PulseAudio
daemon with its own null sink stands in for the machine's sound server: what the
agent's sink receives must come out of the "real" sink (recorded from its monitor)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from support.boards import poll
from support.pulse import load_demo_sound, pulse_available
from support.scripts import load_script

pytestmark = pytest.mark.skipif(not pulse_available(), reason="pulseaudio not installed")


def daemon(tmp_path: Path, name: str, sink: str):  # type: ignore[no-untyped-def]
    ds = load_demo_sound()
    server = ds.PrivatePulse(tmp_path / name)
    ds.start_null_sink(server.full_env(), sink=sink)
    return server


def test_demo_parses_listen() -> None:
    demo = load_script("demo")
    assert demo.parse_args(["--listen"]).listen is True
    assert demo.parse_args([]).listen is False


def test_no_real_speakers_is_said_clearly(tmp_path: Path) -> None:
    """No sound server and no ALSA card: one clear sentence, no route, no exception."""
    dl = load_script("demo_listen")
    ds = load_demo_sound()
    nowhere = ds.with_private(ds.private_env(tmp_path))  # a runtime dir with no daemon
    listen, note = dl.start_listen("demo_null.monitor", nowhere, nowhere, tmp_path / "no-cards")
    assert listen is None
    assert note.startswith("--listen: no real speakers to play to (")
    assert "no PulseAudio/PipeWire server answers" in note
    assert "no ALSA sound card" in note and "null sink only" in note


def test_a_null_sink_is_not_real_speakers(tmp_path: Path) -> None:
    dl = load_script("demo_listen")
    real = daemon(tmp_path, "machine", "real_out")
    try:
        out, why = dl.find_real_output(real.full_env(), tmp_path / "no-cards")
        assert out is None and "'real_out' is a null sink" in why
    finally:
        real.stop()


def test_route_plays_the_demo_sink_on_the_real_sink(tmp_path: Path) -> None:
    ds = load_demo_sound()
    dl = load_script("demo_listen")
    demo, real = daemon(tmp_path, "demo", ds.SINK), daemon(tmp_path, "machine", "real_out")
    recorder = ds.MonitorRecorder(real.full_env(), sink="real_out")
    listen = None
    try:
        out = dl.RealOutput("pulse", "real_out", real.full_env())
        record, play = dl.route_commands(f"{ds.SINK}.monitor", out)
        assert record[:2] == ["parec", f"--device={ds.SINK}.monitor"]
        assert play[:3] == ["pacat", "--playback", "--device=real_out"]
        recorder.start()
        listen = dl.Listen(f"{ds.SINK}.monitor", demo.full_env(), out)
        poll(lambda: recorder.frames > 0)
        # 1 s of 440 Hz played into the demo's sink, as the agent would.
        t = np.arange(ds.RATE) / ds.RATE
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype("<f4").tobytes()
        subprocess.run(
            ["pacat", "--playback", f"--device={ds.SINK}", f"--rate={ds.RATE}",
             "--channels=1", "--format=float32le", "--raw"],
            input=tone, env=demo.full_env(), check=True, timeout=30,
        )  # fmt: skip

        def heard() -> bool:
            return ds.measure(recorder.samples).seconds >= 0.9

        poll(heard, timeout=30)
        assert listen.running()
        x = recorder.samples
        peak_hz = np.argmax(np.abs(np.fft.rfft(x))) * ds.RATE / len(x)
        assert abs(peak_hz - 440) < 5, peak_hz  # the tone itself, not noise
        assert 20 * np.log10(np.max(np.abs(x))) > -12  # at its level (-10.5 dBFS sent)
    finally:
        if listen is not None:
            listen.stop()
        recorder.stop()
        demo.stop()
        real.stop()


@pytest.mark.slow
@pytest.mark.timeout(900)  # the whole demo, on a machine the suites may be loading
def test_demo_with_listen_and_no_speakers_still_completes(tmp_path: Path) -> None:
    """The whole demo (broker, console, agent) with `--listen` on this machine, which
    has no sound card: the clear sentence, then every scene, sound included, as without."""
    import os
    import sys

    from support.scripts import SCRIPTS

    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "xdg"))  # no sound server there
    env.pop("PULSE_SERVER", None)
    (tmp_path / "xdg").mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "demo.py"), "--listen", "--dir", str(tmp_path / "demo")],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-2000:] + done.stderr[-2000:]
    if not Path("/proc/asound/cards").exists():
        assert "--listen: no real speakers to play to (" in out
    assert "alert heard:" in out and "proof verified" in out  # the null sink still records
    assert "frames.jsonl" in out  # ... and the board scene ran to its end

"""`demo.sh --listen`: hear the demo agent on the machine's real speakers.

The agent plays into the demo's private PulseAudio null sink (scripts/demo_sound.py),
whose recording the demo's report is made from; that stays as it is. `--listen` adds a
route from the null sink's monitor to the machine's own default output: `parec` on the
monitor (in the private daemon) piped into `pacat` on the real default sink (the
user's PulseAudio or PipeWire server, from the demo's own environment), or into
`aplay` on ALSA's default device where no sound server runs. A machine without a real
output (a server, a container, a sink that is itself a null sink) is told so, and the
demo goes on with the null sink only.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RATE = 48000
LATENCY_MS = 60  # small enough to hear the alert with the report, large enough not to crackle


@dataclass(frozen=True)
class RealOutput:
    kind: Literal["pulse", "alsa"]
    device: str  # the sink's name (pulse) or the ALSA device ("default")
    env: dict[str, str]  # the environment that reaches it (the machine's, not the demo's)

    def describe(self) -> str:
        if self.kind == "pulse":
            return f"the default sink {self.device!r} of this machine's sound server"
        return f"ALSA device {self.device!r}"


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None


def pulse_default_sink(env: dict[str, str]) -> tuple[str | None, str]:
    """The real default sink of the sound server `env` reaches, or None and why not. A
    null sink is not real (nothing would be heard)."""
    if shutil.which("pactl") is None:
        return None, "pactl not installed"
    info = _run(["pactl", "info"], env)
    if info is None or info.returncode != 0:
        return None, "no PulseAudio/PipeWire server answers"
    default = next(
        (line.split(":", 1)[1].strip() for line in info.stdout.splitlines()
         if line.startswith("Default Sink:")),
        "",
    )  # fmt: skip
    if not default or default == "@DEFAULT_SINK@":
        return None, "the sound server has no default sink"
    sinks = _run(["pactl", "list", "short", "sinks"], env)
    for line in (sinks.stdout if sinks is not None else "").splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1] == default:
            if fields[2].startswith("module-null-sink") or default == "auto_null":
                return None, f"the sound server's default sink {default!r} is a null sink"
            return default, ""
    return None, f"the sound server's default sink {default!r} is not listed"


def alsa_cards(cards: Path = Path("/proc/asound/cards")) -> bool:
    try:
        text = cards.read_text()
    except OSError:
        return False
    return bool(text.strip()) and "no soundcards" not in text


def find_real_output(
    env: dict[str, str], cards: Path = Path("/proc/asound/cards")
) -> tuple[RealOutput | None, str]:
    """Where `--listen` can play, or None and a sentence saying why nowhere."""
    sink, why_not_pulse = pulse_default_sink(env)
    if sink is not None:
        return RealOutput("pulse", sink, env), ""
    if alsa_cards(cards):
        if shutil.which("aplay") is None:
            return None, (
                f"{why_not_pulse}; an ALSA sound card is present but aplay is not "
                "installed (apt-get install alsa-utils)"
            )
        return RealOutput("alsa", "default", env), ""
    return None, f"{why_not_pulse}, and no ALSA sound card (/proc/asound/cards)"


def route_commands(monitor: str, out: RealOutput) -> tuple[list[str], list[str]]:
    """The recorder on the null sink's monitor and the player on the real output, joined
    by a pipe: raw 16-bit mono at RATE on both sides, so nothing is resampled between."""
    record = [
        "parec", f"--device={monitor}", f"--rate={RATE}", "--channels=1",
        "--format=s16le", "--raw", f"--latency-msec={LATENCY_MS}",
    ]  # fmt: skip
    if out.kind == "pulse":
        play = [
            "pacat", "--playback", f"--device={out.device}", f"--rate={RATE}",
            "--channels=1", "--format=s16le", "--raw", f"--latency-msec={LATENCY_MS}",
            "--client-name=tcs-agent demo --listen",
        ]  # fmt: skip
    else:
        play = [
            "aplay", "-q", "-D", out.device, "-t", "raw", "-f", "S16_LE",
            "-r", str(RATE), "-c", "1", f"--buffer-time={LATENCY_MS * 1000}",
        ]  # fmt: skip
    return record, play


class Listen:
    """The running route; `stop()` ends both processes."""

    def __init__(self, monitor: str, demo_env: dict[str, str], out: RealOutput) -> None:
        record, play = route_commands(monitor, out)
        self.out = out
        self._rec = subprocess.Popen(
            record, env=demo_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self._play = subprocess.Popen(
            play, env=out.env, stdin=self._rec.stdout, stderr=subprocess.DEVNULL
        )
        assert self._rec.stdout is not None
        self._rec.stdout.close()  # the player holds the pipe now

    def running(self) -> bool:
        return self._rec.poll() is None and self._play.poll() is None

    def stop(self) -> None:
        for proc in (self._rec, self._play):
            proc.terminate()
        for proc in (self._rec, self._play):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def start_listen(
    monitor: str,
    demo_env: dict[str, str],
    machine_env: dict[str, str],
    cards: Path = Path("/proc/asound/cards"),
) -> tuple[Listen | None, str]:
    """Route the null sink's monitor to the machine's real output, or say why not."""
    out, why = find_real_output(machine_env, cards)
    if out is None:
        return None, (
            f"--listen: no real speakers to play to ({why}); "
            "the demo goes on with its null sink only"
        )
    listen = Listen(monitor, demo_env, out)
    return listen, f"--listen: the agent's sound also plays on {out.describe()}"

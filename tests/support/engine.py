"""The audio engine at the private null sink, with the events it emits kept for asserts.

Use: `events = Events()`, `eng = make_engine(tmp_path, events, retry_s=0.5)`, then
`assert events.codes() == ["audio_device_lost", ...]`.
"""

from __future__ import annotations

from pathlib import Path

from playback.engine import AudioEngine

RATE = 48000


class Events:
    """An `emit_event` callback that keeps every (level, code, detail) it is given."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def __call__(self, level: str, code: str, detail: str) -> None:
        self.items.append((level, code, detail))

    def codes(self) -> list[str]:
        return [c for _, c, _ in self.items]


def make_engine(tmp_path: Path, events: Events, **kw: object) -> AudioEngine:
    """An engine playing to "pulse" (the `pulse` fixture's null sink) at 48 kHz."""
    return AudioEngine("pulse", RATE, tmp_path / "pcm", emit_event=events, **kw)  # type: ignore[arg-type]

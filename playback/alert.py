"""Emergency broadcast audio (PROTOCOL §5.3): chime, message, repeats, gaps, volume.

The whole alert is built as ONE gapless Prepared — [chime, pause, media…, speech] ×
`repeat`, separated by `gap_s` of silence — so its timing is sample-exact and a single
`stop_voice()` (alert.stop, `until`) ends it. Play it with `play_alert()`, which uses
the alert's own volume and ignores the master volume, as the protocol requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from playback.engine import AudioEngine, Voice
from playback.levels import volume_to_gain
from playback.prepared import Prepared

CHIME_PAUSE_S = 0.4  # between the chime and the message, so the two don't run together


async def build_alert(
    engine: AudioEngine,
    *,
    media: Sequence[Path] = (),
    sha256s: Sequence[str] | None = None,
    text: str | None = None,
    lang: str = "vi",
    repeat: int = 3,
    gap_s: float = 5.0,
    chime: bool = True,
) -> Prepared:
    """Decode/speak everything now and return the alert's complete programme."""
    if not media and not (text and text.strip()):
        raise ValueError("an alert needs media or text")
    if not 1 <= repeat <= 100:
        raise ValueError(f"alert repeat {repeat} is outside 1-100")
    if not 0 <= gap_s <= 3600:
        raise ValueError(f"alert gap_s {gap_s} is outside 0-3600")
    parts: list[Prepared] = []
    if media:
        parts.append(await engine.prepare(list(media), sha256s))
    if text and text.strip():
        parts.append(await engine.prepare_text(text, voice=lang))
    message = parts[0].then(*parts[1:])
    once = message
    if chime:
        bell = await engine.prepare_chime()
        once = bell.then(bell.silence(CHIME_PAUSE_S), message)
    programme = once
    for _ in range(repeat - 1):
        programme = programme.then(once.silence(gap_s), once)
    return programme


def play_alert(engine: AudioEngine, programme: Prepared, *, volume: int) -> Voice:
    """Start the alert now at its own volume (0-100), overriding the master volume."""
    return engine.play(programme, gain=volume_to_gain(volume), use_master=False)

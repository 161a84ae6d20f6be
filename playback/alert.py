"""Emergency broadcast audio (PROTOCOL §5.3): chime, message, repeats, gaps, volume.

The whole alert is built as ONE gapless Prepared — [chime, pause, media…, speech] ×
`repeat`, separated by `gap_s` of silence — so its timing is sample-exact and a single
`stop_voice()` (alert.stop, `until`) ends it. Play it with `play_alert()`, which uses
the alert's own volume and ignores the master volume, as the protocol requires.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from playback.engine import AudioEngine, Voice
from playback.levels import volume_to_gain
from playback.prepared import Prepared

CHIME_PAUSE_S = 0.4  # between the chime and the message, so the two don't run together

log = logging.getLogger(__name__)


async def _speech(engine: AudioEngine, text: str, lang: str, warnings: list[str]
                  ) -> Prepared | None:
    """The spoken message; an alert degrades rather than fails (issue 7 item 9): a voice
    espeak-ng does not know falls back to the configured one, and if speech fails
    altogether the chime and the media still play. Each step down is one warning that
    says what the province will hear instead (docs/PROTOCOL-NOTES.md, "Alert speech")."""
    fallback = engine.tts_voice
    voices = list(dict.fromkeys((lang, fallback)))  # the configured voice once
    for voice in voices:
        try:
            speech = await engine.prepare_text(text, voice=voice)
        except Exception as e:  # DecodeError from espeak-ng, OSError: degrade, never fail
            log.warning("speech with voice %r failed: %s", voice, e)
            continue
        if voice != lang:
            warnings.append(f"lang {lang[:35]!r} could not be spoken; "
                            f"using the configured voice {fallback!r}")
        return speech
    tried = " or ".join(repr(v[:35]) for v in voices)
    warnings.append(f"speech failed (voice {tried}): the alert plays without its text")
    return None


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
    warnings: list[str] | None = None,
) -> Prepared:
    """Decode/speak everything now and return the alert's complete programme.

    What could not be done as asked (speech) is appended to `warnings`; only an alert
    left with nothing to sound at all raises."""
    notes = warnings if warnings is not None else []
    if not media and not (text and text.strip()):
        raise ValueError("an alert needs media or text")
    if not 1 <= repeat <= 100:
        raise ValueError(f"alert repeat {repeat} is outside 1-100")
    if not 0 <= gap_s <= 3600:
        raise ValueError(f"alert gap_s {gap_s} is outside 0-3600")
    parts: list[Prepared] = []
    if media:
        parts.append(await engine.prepare(list(media), sha256s))
    if text and text.strip() and (speech := await _speech(engine, text, lang, notes)):
        parts.append(speech)
    if not parts and not chime:
        raise ValueError("the alert's speech failed and it has no media nor chime")
    if chime:
        bell = await engine.prepare_chime()
        once = bell.then(bell.silence(CHIME_PAUSE_S), *parts[:1], *parts[1:])
    else:
        once = parts[0].then(*parts[1:])
    programme = once
    for _ in range(repeat - 1):
        programme = programme.then(once.silence(gap_s), once)
    return programme


def play_alert(engine: AudioEngine, programme: Prepared, *, volume: int) -> Voice:
    """Start the alert now at its own volume (0-100), overriding the master volume."""
    return engine.play(programme, gain=volume_to_gain(volume), use_master=False)

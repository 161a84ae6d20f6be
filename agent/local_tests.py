"""`tcs-agent test speaker|display`: the technician's audible / visible self-tests.

Through the running agent (its status socket) the tone goes through the agent's own
audio engine, so it mixes with and is accounted like everything else; while an alert
sounds it is refused, never mixed into the alert. Without a running agent the CLI
opens the configured output itself for the duration of the tone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Config

if TYPE_CHECKING:
    from agent.playout.wiring import SoundSide


def no_display_test() -> dict[str, Any]:
    return {"ok": False, "detail": "display test not available in this build"}


async def no_display_test_async() -> dict[str, Any]:
    return no_display_test()


async def speaker_via_agent(sound: SoundSide | None) -> dict[str, Any]:
    if sound is None:
        return {"ok": False, "detail": 'no audio output configured ([audio] output = "none")'}
    if sound.playout.alert_id() is not None:
        return {"ok": False, "detail": "an alert is sounding; test again when it has ended"}
    from playback.selftest import test_tone

    res = await test_tone(sound.engine, sound.monitor)
    sound.playout.wake()  # whatever the tone pre-empted is re-planned
    return {"ok": res.ok, "detail": res.detail, "level_dbfs": res.level_dbfs,
            "heard_dbfs": res.heard_dbfs}  # fmt: skip


async def speaker_direct(cfg: Config) -> dict[str, Any]:
    """Play the test tone on the configured output without the agent (it is not running)."""
    if cfg.audio.output.strip().lower() == "none":
        return {"ok": False, "detail": 'no audio output configured ([audio] output = "none")'}
    from playback.engine import AudioEngine
    from playback.selftest import test_tone

    events: list[str] = []

    def emit(level: str, code: str, detail: str) -> None:
        events.append(f"{code}: {detail}")

    with tempfile.TemporaryDirectory(prefix="tcs-test-") as tmp:
        engine = AudioEngine(cfg.audio.output, cfg.audio.sample_rate, Path(tmp), emit_event=emit)
        try:
            await engine.start()
            res = await test_tone(engine)
        except Exception as e:
            return {"ok": False, "detail": f"audio output {cfg.audio.output!r}: {e}"}
        finally:
            await engine.stop()
    detail = res.detail + (f" ({'; '.join(events)})" if events and not res.ok else "")
    return {"ok": res.ok, "detail": detail, "level_dbfs": res.level_dbfs, "heard_dbfs": None}

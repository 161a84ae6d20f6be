"""`tcs-agent test speaker|display`: the technician's audible / visible self-tests.

Through the running agent (its status socket) the test is the agent's own `test.run`:
queued like a priority-0 item, so it waits for whatever sounds or shows and respects
quiet hours. Without a running agent the CLI opens the configured output itself for
the duration of the tone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Config

if TYPE_CHECKING:
    from agent.playout.wiring import PlayoutSide


async def via_agent(sound: PlayoutSide | None, what: str) -> dict[str, Any]:
    """The agent's own `test.run`: queued as a priority-0 item on the outputs that answer
    `what`, so it never interrupts what sounds or shows and respects quiet hours."""
    if sound is None:
        return {"ok": False, "code": "not_supported", "detail": f"no {what} on this device"}
    res = await sound.coordinator.run_test(what)
    return {"ok": res.ok, "code": res.code, "detail": res.detail}


async def speaker_direct(cfg: Config) -> dict[str, Any]:
    """Play the test tone on the configured output without the agent (it is not running)."""
    if cfg.audio.output.strip().lower() == "none":
        return {"ok": False, "code": "no_output",
                "detail": 'no audio output configured ([audio] output = "none")'}
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
            return {"ok": False, "code": "output_unavailable",
                    "detail": f"audio output {cfg.audio.output!r}: {e}"}
        finally:
            await engine.stop()
    detail = res.detail + (f" ({'; '.join(events)})" if events and not res.ok else "")
    code = None if res.ok else "speaker_failed"
    return {"ok": res.ok, "code": code, "detail": detail, "level_dbfs": res.level_dbfs,
            "heard_dbfs": None}

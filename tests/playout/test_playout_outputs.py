"""The middle layer in process: planner loops per output and the alert coordinator,
driven with recording fake outputs (tests/support/fake_output.py). No fixed sleeps,
no wall-clock bounds: every wait polls for what a user would notice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support.fake_output import FakeOutput
from support.timing import until

from agent.liveness import Liveness
from agent.model import AlertStart, MediaRef, ScheduleItem, Slide
from agent.playout.coordinator import AlertCoordinator
from agent.playout.runner import Playout, PlayoutDeps, Spawn
from agent.supervisor import Supervisor

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SHA = "ab" * 32


@dataclass
class Rig:
    speaker: FakeOutput
    board: FakeOutput
    loops: list[Playout]
    co: AlertCoordinator
    proofs: list[dict[str, Any]] = field(default_factory=list)

    def proofs_of(self, subject: str) -> list[dict[str, Any]]:
        return [p for p in self.proofs if subject in (p.get("item_id"), p.get("alert_id"))]

    def schedule(self, *items: ScheduleItem) -> None:
        for lp in self.loops:
            lp.set_schedule(items)


@asynccontextmanager
async def rig(tmp_path: Path, spawn: Spawn | None = None, **speaker_kw: Any) -> AsyncIterator[Rig]:
    media = tmp_path / "m.bin"
    media.write_bytes(b"x")

    async def media_path(_sha: str) -> Path | None:
        return media

    speaker = FakeOutput("speaker", ["audio"], test_what="speaker", **speaker_kw)
    board = FakeOutput("board", ["slides"], test_what="display")
    proofs: list[dict[str, Any]] = []
    stored: dict[str, str] = {}

    async def proof(rec: dict[str, Any]) -> None:
        proofs.append(rec)

    loops = []
    for out in (speaker, board):
        key = out.state_key

        def save(text: str, key: str = key) -> None:
            stored[key] = text

        lp = Playout(
            PlayoutDeps(
                output=out,
                tz=TZ,
                media_path=media_path,
                proof=proof,
                load_state=lambda key=key: stored.get(key),  # type: ignore[misc]
                save_state=save,
                spawn=spawn if out is speaker else None,
            )
        )
        await lp.start()
        loops.append(lp)
    co = AlertCoordinator(loops, media_path, wall=time.time)
    r = Rig(speaker, board, loops, co, proofs)
    try:
        yield r
    finally:
        await co.close()
        for lp in loops:
            await lp.stop()
        speaker.assert_clean()
        board.assert_clean()


def audio_item(item_id: str, in_s: float, priority: int = 20) -> ScheduleItem:
    return ScheduleItem(
        id=item_id,
        kind="audio",
        start=datetime.fromtimestamp(time.time() + in_s, UTC),
        media=(MediaRef("https://cdn.example.vn/a.mp3", SHA, 1, "audio/mpeg"),),
        priority=priority,
    )


def slides_item(item_id: str, in_s: float, priority: int = 20) -> ScheduleItem:
    return ScheduleItem(
        id=item_id,
        kind="slides",
        start=datetime.fromtimestamp(time.time() + in_s, UTC),
        slides=(Slide(duration_s=1.0, text="Thông báo"),),
        priority=priority,
    )


def test_playout_outputs_slides_never_sound_nor_preempt_audio(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, durations={"news": 1.5}) as r:
            r.board.durations["notice"] = 1.0
            # A higher-priority slides item starting while the news plays.
            r.schedule(audio_item("news", 0.3), slides_item("notice", 0.6, priority=80))
            await until(lambda: r.proofs_of("news") and r.proofs_of("notice"), "both proofs")
            assert r.speaker.labels() == ["news"]
            assert r.board.labels() == ["notice"]
            assert r.speaker.prepared == ["news"] and r.board.prepared == ["notice"]
            (news,) = r.proofs_of("news")
            (notice,) = r.proofs_of("notice")
            assert news["outcome"] == "completed" and news["kind"] == "audio"
            assert notice["outcome"] == "completed" and notice["kind"] == "slides"
            assert notice["id"].startswith("board/") and not news["id"].startswith("board/")

    asyncio.run(main())


def test_playout_outputs_alert_reaches_both_and_each_resumes(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, durations={"news": 3.0}, alert_s=0.5) as r:
            r.board.durations["notice"] = 3.0
            r.board.alert_s = 0.5
            r.schedule(audio_item("news", 0.2), slides_item("notice", 0.2))
            await until(
                lambda: r.speaker.now_playing() == "news" and r.board.now_playing() == "notice",
                "programmes playing",
            )
            result = await r.co.run_alert(AlertStart(alert_id="flood", text="Lũ", repeat=1))
            assert result.ok, result
            # Both outputs went back to their own programme after the alert.
            await until(lambda: len(r.proofs_of("news")) == 2, "news resumed and ended")
            await until(lambda: len(r.proofs_of("notice")) == 2, "notice resumed and ended")
            assert r.speaker.labels() == ["news", "alert:flood", "news"]
            assert r.board.labels() == ["notice", "alert:flood", "notice"]
            alerts = r.proofs_of("flood")
            assert sorted(p["outcome"] for p in alerts) == ["completed", "completed"]
            assert len({p["id"] for p in alerts}) == 2  # one proof per output
            assert [p["outcome"] for p in r.proofs_of("news")] == ["preempted", "resumed"]
            # The resumed programme rejoined later in its media (`join`).
            assert r.speaker.played[2].offset_s > 0

    asyncio.run(main())


def test_playout_outputs_test_run_waits_behind_alert(tmp_path: Path) -> None:
    """PROTOCOL §3: a priority-0 `test.run` never interrupts an alert; it runs after."""

    async def main() -> None:
        async with rig(tmp_path, alert_s=1.0) as r:
            alert = asyncio.create_task(
                r.co.run_alert(AlertStart(alert_id="flood", text="Lũ", repeat=1))
            )
            await until(lambda: r.speaker.now_playing() == "alert:flood", "alert sounding")
            # What an `alert.stop` naming it must be allowed to carry (PROTOCOL §3).
            assert r.co.alert_priority("flood") == 100 and r.co.alert_priority("x") == 0
            assert r.co.emergency_active()  # agent.restart waits for this to end
            test = await r.co.run_test("speaker")
            assert test.ok, test
            assert (await alert).ok
            assert r.speaker.labels() == ["alert:flood", "test"]
            assert r.co.alert_priority("flood") == 0 and not r.co.emergency_active()
            (proof,) = [p for p in r.proofs_of("flood") if not p["id"].startswith("board/")]
            assert proof["outcome"] == "completed"
            first_test = r.speaker.played[1].pb.first_wall
            assert first_test is not None and proof["ended_at"] is not None
            assert first_test >= datetime.fromisoformat(proof["ended_at"]).timestamp() - 0.001

    asyncio.run(main())


def test_playout_outputs_test_run_unknown_output(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            speaker_only = r.loops[:1]
            co = AlertCoordinator(speaker_only, r.co._media_path, wall=time.time)
            res = await co.run_test("display")
            assert not res.ok and res.code == "not_supported"

    asyncio.run(main())


def test_playout_outputs_killed_loop_is_restarted_and_plays_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planner loop that dies is an event, is down in the liveness registry (no
    watchdog ping), and comes back: the programme still plays."""
    monkeypatch.setenv("TCS_FAILPOINTS", "part.playout.speaker")
    events: list[tuple[str, str, str]] = []

    async def main() -> None:
        live = Liveness()
        sup = Supervisor(live, lambda *e: events.append(e), restart_delay_s=0.2)
        async with rig(tmp_path, spawn=sup.start) as r:
            r.schedule(audio_item("news", 2.5))
            await until(lambda: not live.healthy(), "loop down")
            assert "playout.speaker" in live.down_parts()
            await until(live.healthy, "loop restarted")
            await until(lambda: r.proofs_of("news"), "news proof")
            assert r.speaker.labels() == ["news"]
            assert r.proofs_of("news")[0]["outcome"] == "completed"
            await sup.aclose()

    asyncio.run(main())
    codes = [c for _l, c, _d in events]
    assert codes == ["part_failed", "part_restored"]

"""A board's memory stays flat over alerts: an ended alert's pages, ticker strip and
playback are freed as soon as the board shows the next thing, by reference counting
alone (garbage collection is off in these tests).

A user notices the failure as an agent that grows by megabytes with every alert at
1080p until the device runs out of memory and its speaker falls silent (it grew by
25 MB an alert before `Playback.done` stopped holding the playback in a cycle;
bench/RESULTS.md). The board is a real image-dir board.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support.boards import frames
from support.timing import until

from agent.config import DisplayConfig
from agent.model import AlertStart
from agent.playout.board import BoardOutput
from display.palette import Tiles

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Only reference counting frees objects: a reference cycle keeps them (as it
    would for minutes in the agent, between Python's rare full collections)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_an_ended_alert_is_freed_when_the_idle_card_shows(tmp_path: Path, no_gc: None) -> None:
    folder = tmp_path / "frames"
    cfg = DisplayConfig(kind="image-dir", path=str(folder), width=640, height=360)
    events: list[Any] = []

    async def main() -> None:
        board = BoardOutput(cfg, tz=TZ, emit=lambda *e: events.append(e))
        await board.start()
        try:
            await until(lambda: any(f["item"] is None for f in frames(folder)), "idle card")
            refs = await show_and_stop(board, "a1", folder)
            await until(lambda: idle_after(folder, "alert:a1"), "idle card after the alert")
            await until(lambda: all(r() is None for r in refs), "the alert's objects freed")
        finally:
            await board.close()
        assert not [e for e in events if e[0] == "error"], events

    asyncio.run(main())


async def show_and_stop(board: BoardOutput, alert_id: str, folder: Path) -> list[Any]:
    """Play an alert until its first frame is shown, stop it; weak references to what
    it held: the playback, its scene, the text page and the ticker strip."""
    media = await board.prepare_alert(AlertStart(alert_id, text="Lũ quét. Sơ tán ngay"), [], [])
    pb = board.play(media)
    await until(lambda: pb.first_wall is not None, "alert shown")
    scene = media.slides[0].build()  # type: ignore[attr-defined]
    text_page = scene.pages[-1][1]
    assert isinstance(text_page, Tiles)  # the banner pages are cached for every alert
    refs = [weakref.ref(o) for o in (pb, scene, text_page, *scene.strips)]
    board.stop(pb)
    await pb.done
    return refs  # and this frame's references end with it


def idle_after(folder: Path, item: str) -> bool:
    lines = frames(folder)
    shown = [i for i, f in enumerate(lines) if f["item"] == item]
    return bool(shown) and any(f["item"] is None for f in lines[shown[-1] :])

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from support.boards import frames
from support.timing import until

from agent.config import DisplayConfig
from agent.model import AlertStart, MediaRef, ScheduleItem, Slide
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


def test_photo_slides_are_decoded_when_cued_and_a_broken_one_refused_at_prepare(
    tmp_path: Path, no_gc: None
) -> None:
    """An item of photos holds no decoded page between prepare and its slot (each is an
    8 MB RGB page at 1080p); they still show, letterboxed, and a broken file raises
    `media_unplayable` when the item is prepared, not at its slot."""
    folder = tmp_path / "frames"
    cfg = DisplayConfig(kind="image-dir", path=str(folder), width=320, height=180)
    events: list[Any] = []
    card = tmp_path / "card.jpg"
    Image.new("RGB", (400, 400), "#FF0000").save(card, quality=95)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    refs = [
        MediaRef("https://cdn.example.vn/card.jpg", "a" * 64, card.stat().st_size, "image/jpeg"),
        MediaRef("https://cdn.example.vn/broken.png", "b" * 64, 72, "image/png"),
    ]
    item = ScheduleItem(
        id="photos", kind="slides", start=datetime.now(UTC),
        slides=(Slide(duration_s=0.5, media=refs[0]), Slide(duration_s=0.5, media=refs[1])),
    )  # fmt: skip

    async def main() -> None:
        board = BoardOutput(cfg, tz=TZ, emit=lambda *e: events.append(e))
        await board.start()
        try:
            media = await board.prepare(item, [card, broken])
            assert [e[1] for e in events] == ["media_unplayable"], events
            assert "photos[1]" in events[0][2]
            live = [o for o in gc.get_objects() if isinstance(o, Image.Image)]
            assert all(im.size != (320, 180) or im.mode == "P" for im in live), live
            pb = board.play(media)
            await pb.done
            assert pb.outcome == "completed"
        finally:
            await board.close()
        shown = [f for f in frames(folder) if f["item"] == "photos"]
        assert len(shown) >= 1
        with Image.open(folder / shown[0]["file"]) as img:
            first = img.convert("RGB")
        # 400x400 red in 320x180: a red square in the middle, black bars each side.
        r, g, b = first.getpixel((160, 90))
        assert r > 240 and g < 16 and b < 16
        assert first.getpixel((5, 90)) == (0, 0, 0)

    asyncio.run(main())

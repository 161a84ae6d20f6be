"""The board output inside the planner loops (in process): slides on their planned
frames with proofs carrying frame hashes, alerts taking over and handing back, the
display self-test, and videos refused before their slot. The board is a real
image-dir board; the speaker beside it a recording fake (tests/support/fake_output.py).
"""

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
from support.boards import black_sha, first_frames, frames
from support.cec import install_fake_cec
from support.fake_output import FakeOutput
from support.timing import until

from agent.config import DisplayConfig, QuietHours
from agent.model import AlertStart, MediaRef, ScheduleItem, Slide
from agent.playout.board import BoardOutput
from agent.playout.coordinator import AlertCoordinator
from agent.playout.runner import Playout, PlayoutDeps

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SIZE = (320, 180)


@dataclass
class Rig:
    folder: Path
    speaker: FakeOutput
    board: BoardOutput
    loops: list[Playout]
    co: AlertCoordinator
    proofs: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    media: dict[str, Path] = field(default_factory=dict)

    def proofs_of(self, subject: str) -> list[dict[str, Any]]:
        return [p for p in self.proofs if subject in (p.get("item_id"), p.get("alert_id"))]

    def schedule(self, *items: ScheduleItem) -> None:
        for lp in self.loops:
            lp.set_schedule(items)


@asynccontextmanager
async def rig(tmp_path: Path, **display: Any) -> AsyncIterator[Rig]:
    folder = tmp_path / "frames"
    media: dict[str, Path] = {}

    async def media_path(sha: str) -> Path | None:
        return media.get(sha)

    events: list[tuple[str, str, str]] = []
    speaker = FakeOutput("speaker", ["audio"], test_what="speaker", alert_s=0.5)
    cfg = DisplayConfig(
        kind="image-dir", path=str(folder), width=SIZE[0], height=SIZE[1], **display
    )
    board = BoardOutput(cfg, tz=TZ, emit=lambda *e: events.append(e))
    proofs: list[dict[str, Any]] = []
    stored: dict[str, str] = {}

    async def proof(rec: dict[str, Any]) -> None:
        proofs.append(rec)

    loops = []
    for out in (speaker, board):
        await out.start()
        key = out.state_key

        def save(text: str, key: str = key) -> None:
            stored[key] = text

        lp = Playout(
            PlayoutDeps(
                output=out, tz=TZ, media_path=media_path, proof=proof,
                load_state=lambda key=key: stored.get(key),  # type: ignore[misc]
                save_state=save,
            )
        )  # fmt: skip
        await lp.start()
        loops.append(lp)
    co = AlertCoordinator(loops, media_path, wall=time.time)
    r = Rig(folder, speaker, board, loops, co, proofs, events, media)
    try:
        yield r
    finally:
        await co.close()
        for lp in loops:
            await lp.stop()
        await board.close()
        speaker.assert_clean()


def slides_item(
    item_id: str, at: float, *texts: str, duration_s: float = 1.0, **kw: Any
) -> ScheduleItem:
    return ScheduleItem(
        id=item_id, kind="slides", start=datetime.fromtimestamp(at, UTC),
        slides=tuple(Slide(duration_s=duration_s, text=t, style={"title": "UBND"}) for t in texts),
        **kw,
    )  # fmt: skip


def test_playout_board_rotation_on_time_with_frame_proofs(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            t0 = time.time() + 2.0
            r.schedule(slides_item("notice", t0, "Một", "Hai ặ", "Ba Ữ"))
            await until(lambda: r.proofs_of("notice"), "notice proved", hang_s=30)
            (proof,) = r.proofs_of("notice")
            lines = [line for line in frames(r.folder) if line["item"] == "notice"]
            # One first frame per slide, each within 50 ms of its planned time.
            assert len(lines) == 3
            for i, line in enumerate(lines):
                assert abs(line["t"] - (t0 + i)) <= 0.050, (i, line["t"] - (t0 + i))
            # Never black: not between slides, not before the first, not after the last.
            assert black_sha(SIZE) not in {line["sha256"] for line in frames(r.folder)}
            assert proof["outcome"] == "completed" and proof["kind"] == "slides"
            assert proof["frame_sha256"] == lines[0]["sha256"]
            assert [f["sha256"] for f in proof["frames"]] == [line["sha256"] for line in lines]
            assert proof["id"].startswith("board/")
            assert r.speaker.labels() == []  # slides never sound

    asyncio.run(main())


def test_playout_board_alert_takes_over_then_programme_resumes(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            r.schedule(slides_item("notice", time.time() + 0.5, "Lịch", duration_s=20.0))
            await until(lambda: r.board.heartbeat()["showing"] == "notice", "notice shown")
            result = await r.co.run_alert(
                AlertStart(alert_id="flood", text="Lũ về", repeat=1, gap_s=0.0)
            )
            assert result.ok, result
            await until(lambda: r.board.heartbeat()["showing"] == "notice", "notice back")
            shown = [line["item"] for line in frames(r.folder) if line["item"] is not None]
            # Runs of what was shown: notice, the alert (banner flashing, then text), notice.
            runs = [x for i, x in enumerate(shown) if i == 0 or shown[i - 1] != x]
            assert runs == ["notice", "alert:flood", "notice"]
            assert black_sha(SIZE) not in {line["sha256"] for line in frames(r.folder)}
            (alert,) = [p for p in r.proofs_of("flood") if p["id"].startswith("board/")]
            assert alert["outcome"] == "completed" and alert["frame_sha256"]
            assert [p["outcome"] for p in r.proofs_of("notice")] == ["preempted"]
            assert r.speaker.labels() == ["alert:flood"]  # the speaker sounded it too

    asyncio.run(main())


def test_playout_board_test_run_acks_the_frame_hash(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            await until(lambda: frames(r.folder), "idle card shown")
            result = await r.co.run_test("display")
            assert result.ok, result
            shown = first_frames(r.folder)["test"]["sha256"]
            assert shown in (result.detail or "")
            hb = r.board.heartbeat()
            assert hb["ok"] and hb["kind"] == "image-dir" and hb["power"] == "on"

    asyncio.run(main())


def test_playout_board_video_refused_before_its_slot(tmp_path: Path) -> None:
    import subprocess

    async def main() -> None:
        async with rig(tmp_path) as r:
            clip = tmp_path / "clip.mp4"
            subprocess.run(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                 "-i", "smptebars=size=320x240:rate=25", "-t", "1", "-c:v", "libx264",
                 "-pix_fmt", "yuv420p", str(clip)],
                check=True,
            )  # fmt: skip
            sha = "cd" * 32
            r.media[sha] = clip
            ref = MediaRef("https://cdn.example.vn/v.mp4", sha, clip.stat().st_size, "video/mp4")
            item = ScheduleItem(
                id="promo", kind="slides", start=datetime.fromtimestamp(time.time() + 60, UTC),
                slides=(Slide(duration_s=5.0, media=ref), Slide(duration_s=5.0, text="Chào")),
            )  # fmt: skip
            r.schedule(item)
            await until(
                lambda: any(e[1] == "media_unplayable" for e in r.events), "unplayable event"
            )
            (event,) = [e for e in r.events if e[1] == "media_unplayable"]
            assert "h264" in event[2] and "promo" in event[2]
            assert not r.proofs_of("promo")  # raised at prepare, a minute before its slot

    asyncio.run(main())


def test_playout_board_emergency_switches_a_screen_on_outside_its_hours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cec = install_fake_cec(tmp_path, monkeypatch)
    now = datetime.now(TZ)
    start = (now.hour + 6) % 24  # a two-hour on-span far from now: the screen is off
    on_hours = QuietHours.parse(f"{start:02d}:00-{(start + 2) % 24:02d}:00")

    async def main() -> None:
        async with rig(tmp_path, on_hours=on_hours, power_control="cec") as r:
            await until(lambda: r.board.heartbeat()["power"] == "off", "deliberately off")
            assert r.board.heartbeat()["power_reason"] == "off_hours" and r.board.heartbeat()["ok"]
            assert cec.read_text().splitlines() == ["standby 0"]
            result = await r.co.run_alert(AlertStart(alert_id="flood", text="Lũ", repeat=1))
            assert result.ok, result
            await until(lambda: r.board.heartbeat()["power"] == "off", "off again after")
            assert cec.read_text().splitlines() == ["standby 0", "on 0", "as", "standby 0"]
            alert_frames = [line for line in frames(r.folder) if line["item"] == "alert:flood"]
            assert alert_frames  # shown while the screen was on

    asyncio.run(main())


def test_playout_board_stays_lit_in_quiet_hours_unless_configured(tmp_path: Path) -> None:
    from support.config import good_config_text

    from agent.config import parse_config
    from agent.playout.wiring import board_output, quiet_hours_for, speaker_output

    def config(dark: str) -> Any:
        text = good_config_text(tmp_path).replace(
            "[report]",
            f'[display]\nkind = "image-dir"\npath = "f"\nwidth = 64\nheight = 16\n{dark}\n[report]',
        )
        assert 'quiet_hours = "22:00-05:00"' in text
        return parse_config(text, tmp_path / "agent.toml")

    lit = config("")
    board = board_output(lit, lambda *_e: None)
    assert board is not None and quiet_hours_for(lit, board) is None
    speaker = speaker_output(lit, lambda *_e: None, None)
    assert quiet_hours_for(lit, speaker) == lit.audio.quiet_hours is not None
    dark = config("dark_in_quiet_hours = true")
    assert quiet_hours_for(dark, board) == dark.audio.quiet_hours


def test_playout_board_video_then_text_without_a_gap(tmp_path: Path) -> None:
    import subprocess

    from PIL import Image

    async def main() -> None:
        async with rig(tmp_path, video_codecs=("hevc",)) as r:
            clip = tmp_path / "bars.mp4"
            subprocess.run(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                 "-i", "smptebars=size=320x240:rate=25", "-t", "3", "-c:v", "libx265",
                 "-x265-params", "log-level=error", "-pix_fmt", "yuv420p", str(clip)],
                check=True,
            )  # fmt: skip
            sha = "ef" * 32
            r.media[sha] = clip
            ref = MediaRef("https://cdn.example.vn/v.mp4", sha, clip.stat().st_size, "video/mp4")
            # Far enough ahead for the item to be prepared (ffprobe, a decoder warmed)
            # on a loaded machine: the promise is about the slot, not the set-up.
            t0 = time.time() + 5.0
            r.schedule(
                ScheduleItem(
                    id="promo",
                    kind="slides",
                    start=datetime.fromtimestamp(t0, UTC),
                    slides=(Slide(duration_s=2.0, media=ref), Slide(duration_s=1.0, text="Hết")),
                )
            )
            await until(lambda: r.proofs_of("promo"), "promo proved", hang_s=30)
            (proof,) = r.proofs_of("promo")
            assert proof["outcome"] == "completed"
            lines = [line for line in frames(r.folder) if line["item"] == "promo"]
            # Each slide's first frame, found by its hash in the board's own record
            # (frames.jsonl), within 50 ms of its planned time: the video pre-rolled
            # (decoded, paused) before its slot, the text slide cued ahead.
            for i, f in enumerate(proof["frames"]):
                first = next(line for line in lines if line["sha256"] == f["sha256"])
                late = first["t"] - (t0 + i * 2.0)
                assert abs(late) <= 0.050, (i, late)
                assert f["at"] >= first["t"]  # the proof's time is when it was written
            assert black_sha(SIZE) not in {line["sha256"] for line in frames(r.folder)}
            # The video's frames reached the board: SMPTE bars, letterboxed (320x240 in 320x180).
            first = Image.open(r.folder / lines[0]["file"]).convert("RGB")
            assert first.getpixel((160 - 120 + 10, 60))[0] > 150  # the grey/white first bar
            assert first.getpixel((5, 60)) == (0, 0, 0)  # letterbox
            assert len(lines) >= 10  # frames kept coming while it played

    asyncio.run(main())


def test_playout_board_relay_switches_the_screen_by_schedule_and_for_an_emergency(
    tmp_path: Path,
) -> None:
    """power_control = "relay": a serial relay board (socat pty) opens outside on_hours,
    closes for an emergency and opens again after; unplugged, it is an event and a
    "failed" screen while the board and the speaker carry on."""
    from support.ptys import PtyPair
    from support.relay_sim import RelaySim

    from agent.config import AmplifierConfig

    on, off = bytes.fromhex("A00201A3"), bytes.fromhex("A00200A2")
    now = datetime.now(TZ)
    start = (now.hour + 6) % 24  # a two-hour on-span far from now: the screen is off
    on_hours = QuietHours.parse(f"{start:02d}:00-{(start + 2) % 24:02d}:00")
    port = tmp_path / "ttyUSB1"
    relay = AmplifierConfig(kind="serial-relay", port=str(port), on_bytes=on, off_bytes=off)

    async def main() -> None:
        with PtyPair(port) as pair, RelaySim(pair.sim_end, on=on, off=off) as sim:
            async with rig(tmp_path, on_hours=on_hours, power_control="relay", relay=relay) as r:
                await until(lambda: r.board.heartbeat()["power"] == "off", "deliberately off")
                hb = r.board.heartbeat()
                assert hb["ok"] and hb["power_reason"] == "off_hours"
                assert hb["power_control"] == "relay" and hb["power_error"] is None
                await until(lambda: sim.bytes_seen() == off, "relay opened at start")
                assert not sim.closed
                result = await r.co.run_alert(AlertStart(alert_id="flood", text="Lũ", repeat=1))
                assert result.ok, result
                await until(lambda: r.board.heartbeat()["power"] == "off", "off again after")
                await until(lambda: sim.bytes_seen() == off + on + off, "relay: off, on, off")
                assert [line for line in frames(r.folder) if line["item"] == "alert:flood"]
                assert not [e for e in r.events if e[1] == "display_power_failed"]

                pair.vanish()  # the relay board is unplugged
                await r.co.run_alert(AlertStart(alert_id="storm", text="Bão", repeat=1))
                await until(lambda: r.board.heartbeat()["power"] == "failed", "failed screen")
                hb = r.board.heartbeat()
                assert "cannot switch on" in hb["power_error"] and hb["ok"]  # board still up
                (event,) = [e for e in r.events if e[1] == "display_power_failed"]
                assert event[0] == "error" and "relay on" in event[2]
                assert [line for line in frames(r.folder) if line["item"] == "alert:storm"]
                assert r.speaker.labels() == ["alert:flood", "alert:storm"]  # never silenced

    asyncio.run(main())


class FlakyScreen:
    """Wraps the rig's real image-dir board: refuses writes while `dead`, or the first
    `refuse_first` writes of one item, as a screen whose cable is pulled does. Anything
    but `show` is passed straight through."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.dead = False
        self.refuse: dict[str, int] = {}
        self.refused = 0

    def show(self, image: Any, *, item: str | None = None, **kw: Any) -> None:
        from display.board import BoardError

        left = self.refuse.get(item or "", 0)
        if self.dead or left:
            if left:
                self.refuse[item or ""] = left - 1
            self.refused += 1
            raise BoardError("screen unplugged (test)")
        self.real.show(image, item=item, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_playout_board_a_dead_screen_does_not_hold_the_programme(tmp_path: Path) -> None:
    """A slide the screen refuses must not leave the board waiting for a frame that will
    never be proved: the item ends at its time (failed, no frames) and the next item is
    shown; a screen that refuses only a slide's first write still lets the item
    complete with the frames that did reach it."""

    async def main() -> None:
        async with rig(tmp_path) as r:
            screen = FlakyScreen(r.board.presenter.board)
            r.board.presenter.board = screen
            screen.dead = True
            t0 = time.time() + 1.0
            r.schedule(
                slides_item("unseen", t0, "Một", "Hai"),
                slides_item("seen", t0 + 2.5, "Ba", "Bốn"),
            )
            await until(lambda: r.proofs_of("unseen"), "unseen item ended", hang_s=30)
            (unseen,) = r.proofs_of("unseen")
            assert unseen["outcome"] == "failed", unseen
            assert not unseen.get("frames")
            assert any(e[1] == "display_failed" for e in r.events)
            screen.dead = False
            screen.refuse["seen"] = 1  # the first write of "Ba" fails, then the screen is back
            await until(lambda: r.proofs_of("seen"), "seen item proved", hang_s=30)
            (seen,) = r.proofs_of("seen")
            assert seen["outcome"] == "completed", seen
            shown = [line for line in frames(r.folder) if line["item"] == "seen"]
            assert shown and seen["frames"][-1]["sha256"] == shown[-1]["sha256"]
            assert r.speaker.labels() == []

    asyncio.run(main())

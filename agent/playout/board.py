"""The board as an `Output` (agent/playout/output.py): slides, alerts and tests on an
LED matrix or screen, with screen power, the frozen-output watchdog and frame proofs.

- Media are `SlideShow`s: each slide pre-rendered into a scene when the item is
  prepared (minutes ahead, in a thread), except videos: preparing one warms a decoder
  process (display/video.py `DecoderPool`), which is given the file one `PREROLL_S`
  before the slot, decodes the first frame and waits paused, so the first frame is
  shown on time and playback resumes from it at the slot.
  A video the board cannot decode in hardware raises the `media_unplayable` event at
  prepare time (before the slot) and is left out of the show.
- `play()` cues each slide on the presenter at its exact wall time; the presenter
  shows the first frame on that frame and reports it, which becomes
  `Playback.first_wall`; `extra` carries `frame_sha256` (the first frame) and
  `frames` (each slide's shown time and hash) into the proof.
- Between items the board never goes black: the last frame stays until the next cue;
  when nothing follows, the idle card (the time and date, the fallback loop) comes
  after `IDLE_AFTER_S`.
- Alerts: a flashing banner, then the text (or the emergency card with the time),
  repeated; the ticker carries the headline; the screen is switched on whatever the
  schedule says, and back off after if it is outside `on_hours`.
- `test.run display`: the test pattern for `TEST_S`, judged by its frame hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image

from agent.config import DisplayConfig
from agent.model import AlertStart, ScheduleItem, Slide
from agent.playout.output import Media, Output, OutputStatus, Playback, TestReport

log = logging.getLogger(__name__)

EmitEvent = Callable[[str, str, str], None]

PREROLL_S = 1.5  # a slide's scene is built/opened this long before its slot
IDLE_AFTER_S = 1.0  # nothing cued this long after a programme ended: the idle card
TEST_S = 3.0  # `test.run display`: how long the test pattern is shown
WATCHDOG_S = 1.0  # frozen-output check and screen-power policy period
REOPEN_S = 10.0  # a board that could not be opened is retried this often
MAX_IMAGE_PIXELS = 40_000_000  # a 40 MP slide image is already absurd; larger is refused
CHARS_PER_S = 12.0  # alert text on screen about as long as it takes to speak it
BANNER_S = 3.0  # display.render.emergency_scene: the flashing banner
# An "as soon as possible" start (an alert) reaches a speaker one output latency after
# play() (playback/engine.py `latency_s`); the board waits as long, so that on a device
# with both the banner and the chime start together (measured: +84 ms apart without).
SPEAKER_LATENCY_S = 0.08


@dataclass(frozen=True)
class SlideSpec:
    duration_s: float
    build: Callable[[], Any]  # -> SceneLike; cheap for pre-rendered slides
    label: str


@dataclass(frozen=True)
class SlideShow:
    """A board's prepared media: slides shown in turn, once."""

    label: str  # item id, "alert:<id>" or "test"
    slides: tuple[SlideSpec, ...]
    emergency: bool = False

    @property
    def duration_s(self) -> float | None:
        return sum(s.duration_s for s in self.slides)


class BoardPlayback(Playback):
    def __init__(self, media: SlideShow, at_wall: float | None) -> None:
        super().__init__(media, at_wall)
        self.show = media
        self.task: asyncio.Task[None] | None = None
        self.extra["frames"] = []


@dataclass
class _Now:
    """What the board shows, for the heartbeat."""

    label: str | None = None
    since: float | None = None
    sha256: str | None = None
    frames: list[tuple[str | None, float, str]] = field(default_factory=list)


class BoardOutput(Output):
    name = "board"
    kinds = frozenset({"slides"})
    test_what = "display"
    live = False

    def __init__(
        self,
        config: DisplayConfig,
        *,
        tz: ZoneInfo,
        emit: EmitEvent,
        quiet_dark: bool = False,
        open_board: Callable[[], Any] | None = None,
        wall: Callable[[], float] = time.time,
        align_s: float = 0.0,
    ) -> None:
        self.config = config
        self.tz = tz
        self.emit = emit
        self.quiet_dark = quiet_dark
        self._open = open_board
        self._wall = wall
        self.align_s = align_s  # SPEAKER_LATENCY_S on a device with a speaker
        self.board: Any = None
        self.presenter: Any = None
        self.power: Any = None
        self._error: str | None = None
        self._latest: BoardPlayback | None = None
        self._emergency = 0  # alerts showing now (the screen stays on)
        self._now = _Now()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shown_waiters: dict[str | None, list[asyncio.Future[Any]]] = {}
        self._decoders: Any = None  # display.video.DecoderPool, once a video is prepared

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _return_big_buffers_to_the_os()
        await self._try_open()
        self._task = asyncio.create_task(self._watch(), name="board-watch")

    async def _try_open(self) -> bool:
        from display.board import BoardError, open_board
        from display.presenter import Presenter
        from drivers.screen import MatrixSwitch, ScreenPower, switch_for

        try:
            board = await asyncio.to_thread(self._open or (lambda: open_board(self.config)))
        except (BoardError, OSError) as e:
            if self._error != str(e):
                self.emit("error", "display_failed", f"{self.config.kind}: {e}"[:200])
            self._error = str(e)
            return False
        self.board = board
        self.presenter = Presenter(
            board, fps=self.config.fps, wall=self._wall,
            on_shown=self._on_shown_threadsafe, on_problem=self._on_problem_threadsafe,
        )  # fmt: skip
        set_lit = getattr(board, "set_lit", None)
        if self.config.power_control == "relay":
            switch = self._relay_switch()
        elif set_lit is not None:
            switch = MatrixSwitch(set_lit)
        else:
            switch = switch_for(self.config)
        contrast = getattr(board, "set_contrast", None)
        dimmer = None
        if contrast is None and self.config.kind == "framebuffer":
            from drivers.screen import Backlight, ScreenError

            try:
                dimmer = Backlight.find(self.config.backlight)
            except ScreenError as e:
                self.emit("warning", "display_backlight", str(e)[:200])
        self.power = ScreenPower(switch, dimmer=dimmer, contrast=contrast)
        self.presenter.start()
        self._error = None
        if board.size[1] < 16:
            self.emit(
                "info", "display_small_panel",
                f"{board.size[0]}x{board.size[1]} panel: text in the compact font, scrolling; "
                "stacked Vietnamese marks need 16 px",
            )  # fmt: skip
        self._cue_idle(self._wall())
        return True

    def _relay_switch(self) -> Any:
        """The screen's relay ([display.relay]) through the amplifier's relay drivers; a
        relay that cannot be opened is a failed screen switch and an event, never a
        board or speaker that stops."""
        from agent.hardware import build_relay
        from drivers.screen import BrokenSwitch, RelaySwitch

        relay_cfg = self.config.relay
        try:
            if relay_cfg is None:
                raise ValueError("no [display.relay] configured")
            relay = build_relay(relay_cfg)
            if relay is None:
                raise ValueError("[display.relay] kind is none")
        except Exception as e:
            self.emit("error", "display_power_failed", f"relay: {e}"[:200])
            return BrokenSwitch("relay", f"relay unavailable: {e}")
        return RelaySwitch(relay)

    def tasks(self) -> Sequence[asyncio.Task[None]]:
        """The watch task (watchdog, screen power, reopening), for the liveness registry."""
        return () if self._task is None else (self._task,)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        latest = self._latest
        if latest is not None and latest.task is not None:
            latest.task.cancel()
        if self.presenter is not None:
            await asyncio.to_thread(self.presenter.stop)
        if self.board is not None:
            await asyncio.to_thread(self.board.close)
        if self._decoders is not None:
            await asyncio.to_thread(self._decoders.close)
        close_switch = getattr(getattr(self.power, "switch", None), "close", None)
        if callable(close_switch):  # the relay keeps its state: a restart does not blank
            with contextlib.suppress(Exception):
                await asyncio.to_thread(close_switch)

    async def wait_ready(self, timeout: float) -> bool:
        return self.status().ok

    def status(self) -> OutputStatus:
        """`detail` is the heartbeat's `display` beyond `ok` (PlayoutSide.display merges
        it): kind, what is shown since when and its frame hash, power and brightness."""
        board_ok = self.board is not None and bool(self.board.ok) and self._error is None
        at = self._now.since
        detail: dict[str, Any] = {
            "kind": self.config.kind,
            "showing": self._now.label,
            "since": None
            if at is None
            else datetime.fromtimestamp(at, self.tz).isoformat(timespec="milliseconds"),
            "frame_sha256": self._now.sha256,
            "power": None,
            "power_reason": None,
            "brightness": None,
        }
        if self.power is not None:
            detail.update(self.power.report())
        if self._error:
            detail["error"] = self._error
        return OutputStatus(board_ok, self.config.path or self.config.kind, detail)

    def heartbeat(self) -> dict[str, Any]:
        """The heartbeat's `display` as PlayoutSide.display builds it (for tests)."""
        st = self.status()
        return {"ok": st.ok, **st.detail}

    # ---- watchdog and screen power -----------------------------------------------------

    async def _watch(self) -> None:
        if self.board is not None:
            await self._apply_power()  # the first heartbeat already knows the power state
        while True:
            await asyncio.sleep(WATCHDOG_S if self.board is not None else REOPEN_S)
            if self.board is None:
                await self._try_open()
                continue
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.presenter.check)
            await self._apply_power()

    async def _apply_power(self) -> None:
        """Screen on/off and brightness for now (schedule, emergency)."""
        from drivers.screen import wanted

        local = datetime.fromtimestamp(self._wall(), self.tz)
        want = wanted(
            local, on_hours=self.config.on_hours, steps=self.config.brightness,
            emergency=self._emergency > 0,
        )  # fmt: skip
        await self._apply(want)

    async def _apply(self, want: Any) -> None:
        """Apply a wanted screen state; a switch that fails is an event (once, until it
        works again) and the state "failed" in the heartbeat, never an exception that
        would stop the watch task, the board or the speaker. ScreenPower retries it."""
        power = self.power
        before = power.error
        try:
            await asyncio.to_thread(power.apply, want, self.config.contrast)
        except Exception as e:  # pragma: no cover - ScreenPower catches ScreenError itself
            log.exception("screen power")
            power.power, power.error = "failed", f"{type(e).__name__}: {e}"
        if power.error and not before:  # once per failure, not per retry or wording
            self.emit(
                "error", "display_power_failed",
                f"{power.switch.name} {'on' if want.on else 'off'}: {power.error}"[:200],
            )  # fmt: skip
        elif before and not power.error:
            self.emit("info", "display_power_restored", f"{power.switch.name}: {power.power}")

    async def _power_on_now(self) -> None:
        """An emergency switches the screen on at once, not at the next watch round."""
        from drivers.screen import wanted

        if self.power is None:
            return
        local = datetime.fromtimestamp(self._wall(), self.tz)
        want = wanted(local, on_hours=None, steps=(), emergency=True)
        await self._apply(want)

    # ---- preparing ---------------------------------------------------------------------

    async def prepare(self, item: ScheduleItem, paths: Sequence[Path]) -> Media:
        if not item.slides:
            raise ValueError(f"item {item.id!r} has no slides")
        by_sha = {m.sha256: p for m, p in zip(_slide_media(item), paths, strict=False)}
        specs: list[SlideSpec] = []
        for i, slide in enumerate(item.slides):
            spec = await asyncio.to_thread(self._slide, item.id, i, slide, by_sha)
            if spec is not None:
                specs.append(spec)
        if not specs:
            raise ValueError(f"item {item.id!r}: no slide can be shown on this board")
        return SlideShow(item.id, tuple(specs))

    def _size(self) -> tuple[int, int]:
        if self.board is None:
            raise RuntimeError("display not open")
        return tuple(self.board.size)

    def _mono(self) -> bool:
        return self.board is not None and self.board.mode == "1"

    def _slide(
        self, item_id: str, index: int, slide: Slide, by_sha: dict[str, Path]
    ) -> SlideSpec | None:
        """Render a text slide, check an image or video slide (those are rendered or
        opened when cued); runs in a worker thread."""
        from display.render import image_scene, parse_style, text_scene

        size, mono = self._size(), self._mono()
        label = f"{item_id}[{index}]"
        try:
            style = parse_style(slide.style)
        except ValueError as e:
            self.emit("warning", "slide_invalid", f"{label}: {e}"[:200])
            return None
        if slide.media is None:
            scene = text_scene(slide.text or "", style, size, self.tz, mono=mono)
            return SlideSpec(slide.duration_s, lambda: scene, label)
        path = by_sha.get(slide.media.sha256)
        if path is None:
            return None
        if slide.media.type.startswith("video/"):
            return self._video_slide(label, slide, path, style.background)

        def build() -> Any:
            Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
            with Image.open(path) as img:
                img.draft("RGB", size)  # a JPEG decodes at the smallest scale >= the board
                img.load()
                return image_scene(img, style, size, mono=mono)

        try:
            build()  # a broken file is refused now, before its slot
        except (OSError, Image.DecompressionBombError, ValueError) as e:
            self.emit("warning", "media_unplayable", f"{label}: not an image: {e}"[:200])
            return None
        # Rendered again when cued (PREROLL_S ahead), not held from prepare: a 1080p
        # photo page is 8 MB (Pillow RGB), an item of ten photos held 83 MB.
        return SlideSpec(slide.duration_s, build, label)

    def _video_slide(self, label: str, slide: Slide, path: Path, bg: str) -> SlideSpec | None:
        from display.video import DecoderPool, VideoError, VideoScene, probe, unplayable_reason

        try:
            info = probe(path)
        except VideoError as e:
            self.emit("warning", "media_unplayable", f"{label}: {e}"[:200])
            return None
        why = unplayable_reason(info, self.config.video_codecs, self.config.video_max)
        if why is not None:
            self.emit("warning", "media_unplayable", f"{label}: {why}"[:200])
            return None
        size = self._size()
        if self._decoders is None:
            self._decoders = DecoderPool()
        pool = self._decoders
        pool.warm()  # minutes ahead: at the slot only the file is opened

        def build() -> Any:
            scene = VideoScene(path, info, size, bg, pool=pool)
            scene.open()
            return scene

        return SlideSpec(slide.duration_s, build, label)

    async def prepare_alert(
        self,
        args: AlertStart,
        paths: Sequence[Path],
        shas: Sequence[str],
        warnings: list[str] | None = None,
    ) -> Media:
        from display.render import emergency_scene

        size, mono = self._size(), self._mono()
        text = (args.text or "").strip()
        text_s = max(5.0, len(text) / CHARS_PER_S)
        scene = await asyncio.to_thread(
            emergency_scene, text, size, self.tz, self._wall(), lang=args.lang, mono=mono,
            text_s=text_s,
        )  # fmt: skip
        # Shown about as long as the speaker sounds it: repeats of banner + text + gap.
        total = max(1, args.repeat) * (BANNER_S + text_s + args.gap_s)
        spec = SlideSpec(total, lambda: scene, f"alert:{args.alert_id}")
        return SlideShow(f"alert:{args.alert_id}", (spec,), emergency=True)

    async def prepare_test(self) -> Media:
        from display.render import test_pattern
        from display.scene import Scene

        scene = Scene(((0.0, test_pattern(self._size())),), mono=self._mono())
        return SlideShow("test", (SlideSpec(TEST_S, lambda: scene, "test"),))

    # ---- playing -----------------------------------------------------------------------

    def play(
        self,
        media: Media,
        *,
        at_wall: float | None = None,
        offset_s: float = 0.0,
        volume: int = 100,
        use_master: bool = True,
    ) -> Playback:
        if not isinstance(media, SlideShow):
            raise TypeError(f"{media!r} was not prepared by the board")
        pb = BoardPlayback(media, at_wall)
        if self.presenter is None or self.board is None:
            pb.finish("failed", "output_unavailable")
            return pb
        self._latest = pb
        pb.task = asyncio.get_running_loop().create_task(
            self._run(pb, at_wall, offset_s), name=f"board-{media.label}"
        )
        return pb

    async def _run(self, pb: BoardPlayback, at_wall: float | None, offset_s: float) -> None:
        show = pb.show
        start = self._wall() + self.align_s if at_wall is None else at_wall
        if show.emergency:
            self._emergency += 1
            await self._power_on_now()
        try:
            t = start - offset_s
            first = True
            for spec in show.slides:
                end = t + spec.duration_s
                if end <= start:  # joined past this slide
                    t = end
                    continue
                slot = max(t, start)
                await self._sleep_until(slot - PREROLL_S)
                scene = await asyncio.to_thread(spec.build)
                waiter = self._expect_shown(show.label)
                self.presenter.cue(scene, item=show.label, at=max(slot, self._wall()))
                del scene  # the presenter owns it now (see the `finally` below)
                shown = await self._await_shown(waiter, show.label, end)
                t = end
                if shown is None:  # the screen refused the slide; the presenter said why
                    continue
                pb.extra["frames"].append({"at": shown.at, "sha256": shown.sha256})
                if first:
                    pb.started(shown.at)
                    pb.extra["frame_sha256"] = shown.sha256
                    first = False
            await self._sleep_until(t)
            ended = self._wall()
            if first:  # not one slide reached the screen: no proof of showing it
                pb.finish("failed", "output_unavailable", ended_wall=ended)
            else:
                pb.finish("completed", ended_wall=ended, played_ms=_ms(pb, ended))
        except asyncio.CancelledError:
            ended = self._wall()
            pb.finish(
                getattr(pb, "_cancel_outcome", "cancelled"), ended_wall=ended,
                played_ms=_ms(pb, ended),
            )  # fmt: skip
            raise
        except Exception as e:
            log.exception("board playback %s failed", show.label)
            pb.finish("failed", "output_unavailable", ended_wall=self._wall())
            self.emit("error", "display_failed", f"{show.label}: {e}"[:200])
        finally:
            # A cancelled task keeps its CancelledError, whose traceback holds this frame,
            # which holds `pb`, which held the task: a cycle that kept each alert's 1080p
            # frames alive until a full garbage collection (+25 MB per alert, measured).
            pb.task = None
            if show.emergency:
                self._emergency -= 1
            if self._latest is pb:
                self._cue_idle(self._wall() + IDLE_AFTER_S)
                # Not kept once ended: it holds its slides' pages (an alert's 1080p text
                # page and ticker) until the next playback (tests/playout/*_memory.py).
                self._latest = None

    def _end(self, pb: Playback, outcome: str) -> None:
        if not isinstance(pb, BoardPlayback):
            raise TypeError(f"{pb!r} was not started by the board")
        pb._cancel_outcome = outcome  # type: ignore[attr-defined]
        if pb.task is not None and not pb.task.done():
            pb.task.cancel()
        else:
            pb.finish(outcome, ended_wall=self._wall())  # type: ignore[arg-type]

    def preempt(self, pb: Playback) -> None:
        self._end(pb, "preempted")

    def stop(self, pb: Playback) -> None:
        self._end(pb, "cancelled")

    async def judge_test(self, pb: Playback) -> TestReport:
        sha = pb.extra.get("frame_sha256")
        if pb.outcome == "completed" and sha:
            return TestReport(True, f"test pattern shown on {self.config.kind}; frame_sha256 {sha}")
        return TestReport(False, f"test {pb.outcome}: {pb.reason}", "display_failed")

    # ---- presenter callbacks (from its thread) -----------------------------------------

    async def _await_shown(
        self, waiter: asyncio.Future[Any], label: str | None, until_wall: float
    ) -> Any:
        """The slide's first frame as shown, or None if the screen has not taken it by the
        end of its slot. Bounded so that a dead screen cannot hold the board's programme
        (or an alert) forever; the stale waiter is withdrawn so that it cannot swallow the
        next slide's frame, which carries the same label."""
        try:
            return await asyncio.wait_for(
                asyncio.shield(waiter), max(0.0, until_wall - self._wall())
            )
        except TimeoutError:
            waiters = self._shown_waiters.get(label, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._shown_waiters.pop(label, None)
            waiter.cancel()
            return None

    def _expect_shown(self, label: str | None) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._shown_waiters.setdefault(label, []).append(fut)
        return fut

    def _on_shown_threadsafe(self, shown: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_shown, shown)

    def _on_shown(self, shown: Any) -> None:
        self._now = _Now(shown.item, shown.at, shown.sha256)
        waiters = self._shown_waiters.pop(shown.item, [])
        if waiters:
            fut = waiters.pop(0)
            if waiters:
                self._shown_waiters[shown.item] = waiters
            if not fut.done():
                fut.set_result(shown)

    def _on_problem_threadsafe(self, code: str, detail: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            level = "error" if code == "display_failed" else "warning"
            loop.call_soon_threadsafe(self.emit, level, code, detail[:200])

    # ---- helpers -----------------------------------------------------------------------

    def _cue_idle(self, at: float) -> None:
        from display.render import Style, text_scene

        if self.presenter is None:
            return
        size = self.board.size
        scene = text_scene(
            datetime.fromtimestamp(at, self.tz).strftime("%d/%m/%Y"),
            Style(clock=size[1] >= 64, title=" " if size[1] >= 64 else "", color="#A0A0A0"),
            size, self.tz, mono=self._mono(),
        )  # fmt: skip
        self.presenter.cue(scene, item=None, at=at)

    async def _sleep_until(self, wall: float) -> None:
        while (left := wall - self._wall()) > 0:
            await asyncio.sleep(min(left, 1.0))


def _return_big_buffers_to_the_os() -> None:
    """Fix glibc's mmap threshold at 1 MiB (M_MMAP_THRESHOLD).

    Frames are 2-8 MB buffers allocated and freed from several threads; glibc raises its
    threshold to the largest freed mmap'd chunk, after which such buffers come from the
    heap and fragmentation grows the agent by 15-25 MB per 1080p alert (measured: 95 MB
    idle, 231 MB after 9 alerts). A fixed threshold keeps them mmap'd, so each is
    returned to the OS when freed (flat at the idle figure; bench/bench_display_agent.py).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (glibc's malloc.h)


def _slide_media(item: ScheduleItem) -> list[Any]:
    """The MediaRefs of a slides item, in the order of `agent.scheduler.item_media`."""
    from agent.scheduler import item_media

    return list(item_media(item))


def _ms(pb: Playback, ended: float) -> int:
    return 0 if pb.first_wall is None else max(0, int((ended - pb.first_wall) * 1000))

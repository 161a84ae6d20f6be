"""Shows scenes on a board on time, in its own thread (the asyncio core never waits on a
frame being drawn or written).

`cue(scene, item=, at=)` prepares the scene's first frame at once (a text slide's when
due: it is composed from prepared tiles in about a millisecond) and shows it at wall
time `at`, replacing whatever is shown then: there is never a blank frame between two
slides, the board holds the last frame of one until the first frame of the next. Each
first frame is reported through `on_shown` with the time it was actually written and
its SHA-256 (for proofs). Animated scenes (marquee, ticker, flashing banner) get a
frame every 1/fps s; a static slide with a clock only when the minute changes.

`check()` is the frozen-output watchdog (docs/DISPLAY.md): an animated scene whose
frames stopped reaching the board, or a framebuffer that no longer holds what was
written (something else drew on it), is reported and the board is re-initialised.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from display import memory
from display.board import Board, BoardError
from display.frames import frame_sha256
from display.scene import SceneLike

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Shown:
    """A scene's first frame reached the board."""

    item: str | None
    planned: float  # wall time it was cued for
    at: float  # wall time the frame was written
    sha256: str


@dataclass
class _Cue:
    scene: SceneLike
    item: str | None
    at: float
    # Rendered at cue time, dropped once shown (the board holds it from then on); None
    # for a scene whose frames are cheap to compose (`prerender` False): drawn when due.
    first: Image.Image | None


class Presenter:
    def __init__(
        self,
        board: Board,
        *,
        fps: int = 30,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        on_shown: Callable[[Shown], None] | None = None,
        on_problem: Callable[[str, str], None] | None = None,
    ) -> None:
        self.board = board
        self.fps = fps
        self._wall = wall
        self._mono = monotonic
        self._on_shown = on_shown
        self._on_problem = on_problem
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._pending: list[_Cue] = []  # by time; the next slides, pre-rendered
        self._current: _Cue | None = None
        self._shown: Shown | None = None
        # Whether the current scene has a frame on the board. No copy of that frame is
        # kept: the board (framebuffer, device) holds it, and a 1080p copy is 2-8 MB.
        self._drawn = False
        self._last_write = monotonic()
        self._clock_text: str | None = None
        self._thread: threading.Thread | None = None
        self._closers: list[threading.Thread] = []
        self._rows = "rows" in inspect.signature(board.show).parameters

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("presenter already started")
        self._thread = threading.Thread(target=self._run, name="board-presenter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            dropped, self._pending = self._pending, []
        for cue in dropped:
            cue.scene.close()
        if self._current is not None:
            self._current.scene.close()
        for closer in self._closers:
            closer.join(timeout=5)

    def cue(self, scene: SceneLike, *, item: str | None, at: float | None = None) -> None:
        """Show `scene` from wall time `at` (now if None), dropping cues planned at or
        after `at`. Renders the first frame here, so call it ahead of time (and off the
        event loop) for an on-time start; except for a scene whose `prerender` is False
        (text slides: their frames are composed from prepared tiles in a few ms), whose
        first frame is composed when due."""
        when = self._wall() if at is None else at
        # A text slide's frame is composed from its tiles in a few ms: holding it from
        # the cue on (up to PREROLL_S, 2 MB at 1080p) would cost more than drawing it.
        first = scene.frame(0.0, when) if getattr(scene, "prerender", True) else None
        with self._lock:
            # A new plan supersedes whatever was planned from its time on.
            dropped = [c for c in self._pending if c.at >= when]
            self._pending = [c for c in self._pending if c.at < when]
            self._pending.append(_Cue(scene, item, when, first))
        for cue in dropped:
            cue.scene.close()
        self._wake.set()

    def clear_pending(self) -> None:
        """Drop every cue not shown yet (the plan changed)."""
        with self._lock:
            dropped, self._pending = self._pending, []
        for cue in dropped:
            cue.scene.close()

    @property
    def shown(self) -> Shown | None:
        """The current scene's first frame, once it is on the board."""
        return self._shown

    @property
    def animated(self) -> bool:
        current = self._current
        return current is not None and current.scene.animated

    # ----------------------------------------------------------------- watchdog

    def check(self) -> str | None:
        """Frozen-output watchdog; returns the problem found (and handles it) or None."""
        current = self._current
        if current is None or self._thread is None:
            return None
        problem = None
        stale = self._mono() - self._last_write
        stalled = getattr(current.scene, "stalled_s", None)
        if current.scene.animated and stale > max(2.0, 10.0 / self.fps):
            problem = f"animated scene: no frame reached the board for {stale:.1f} s"
        elif stalled is not None and stalled() > 2.0:
            problem = f"video: the decoder sent no new frame for {stalled():.1f} s"
        intact = getattr(self.board, "intact", None)
        static = not current.scene.animated
        if problem is None and intact is not None and static and intact() is False:
            problem = "the framebuffer no longer holds the frame written (overdrawn)"
        if problem is not None:
            self._report("display_frozen", problem)
            reset = getattr(self.board, "reset", None)
            if reset is not None:
                try:
                    reset()
                except BoardError as e:
                    self._report("display_failed", f"re-initialisation failed: {e}")
            with self._lock:  # redraw from the current scene's first frame on
                self._drawn = False
                self._last_write = self._mono()
            self._wake.set()
        return problem

    # ------------------------------------------------------------------- thread

    def _report(self, code: str, detail: str) -> None:
        log.warning("%s: %s", code, detail)
        if self._on_problem is not None:
            self._on_problem(code, detail)

    def _write(self, frame: Image.Image, item: str | None, rows: tuple[int, int] | None) -> bool:
        try:
            if rows is not None and self._rows:
                self.board.show(frame, item=item, rows=rows)  # type: ignore[call-arg]
            else:
                self.board.show(frame, item=item)
        except BoardError as e:
            self._report("display_failed", str(e))
            return False
        self._drawn = True
        self._last_write = self._mono()
        return True

    def _run(self) -> None:
        frame_s = 1.0 / self.fps
        while not self._stop:
            now = self._wall()
            cue = None
            with self._lock:
                # Several due at once (a late wake-up): only the latest is worth showing.
                while self._pending and self._pending[0].at <= now + 0.001:
                    cue = self._pending.pop(0)
            try:
                if cue is not None:
                    self._show_first(cue)
                elif self._current is not None:
                    self._tick(now)
            except Exception as e:  # a broken scene must not end the presenter thread
                log.exception("presenter: frame failed")
                self._report("display_failed", f"frame failed: {e}")
                self._wake.wait(0.5)  # no hot loop on a scene that fails every frame
            self._wake.wait(self._sleep(frame_s))
            self._wake.clear()

    def _show_first(self, cue: _Cue) -> None:
        first, cue.first = cue.first, None
        if first is None:
            first = cue.scene.frame(0.0, cue.at)
        if self._write(first, cue.item, None):
            written = self._wall()  # before anything else: this is when it was shown
            self._replace(cue)
            self._clock_text = None
            shown = Shown(cue.item, cue.at, written, frame_sha256(first))
            del first
            self._shown = shown
            if self._on_shown is not None:
                self._on_shown(shown)
            memory.trim()  # the old scene's pages were just freed (display/memory.py)
        else:
            self._replace(cue)  # keep trying to draw it
            self._drawn = False

    def _replace(self, cue: _Cue) -> None:
        old, self._current = self._current, cue
        cue.scene.begin()
        if old is not None and old.scene is not cue.scene:
            self._retire(old.scene)

    def _retire(self, scene: SceneLike) -> None:
        """Close a scene no longer shown, off this thread: a video's decoder process takes
        tens of ms to end (measured up to 180 ms under load), which must delay neither
        the next slide's proof time nor its next frames."""
        self._closers = [t for t in self._closers if t.is_alive()]
        closer = threading.Thread(target=scene.close, name="scene-close", daemon=True)
        closer.start()
        self._closers.append(closer)

    def _tick(self, now: float) -> None:
        current = self._current
        assert current is not None
        scene = current.scene
        clock_text = scene.clock.text(now) if scene.clock is not None else None
        changed_clock = clock_text != self._clock_text
        if not scene.animated and not changed_clock and self._drawn:
            return
        frame = scene.frame(max(0.0, now - current.at), now)
        rows = scene.changing_rows() if not changed_clock and self._drawn else None
        if self._write(frame, current.item, rows):
            self._clock_text = clock_text

    def _sleep(self, frame_s: float) -> float:
        now = self._wall()
        waits = [1.0]
        with self._lock:
            if self._pending:
                waits.append(self._pending[0].at - now)
        current = self._current
        if current is not None and (current.scene.animated or not self._drawn):
            elapsed = now - current.at
            waits.append(frame_s - (elapsed % frame_s))
        elif current is not None and current.scene.clock is not None:
            waits.append(60.0 - (now % 60.0))
        return max(0.0, min(waits))

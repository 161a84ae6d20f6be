"""`[display] kind = "max7219"`: chains of 8×8 LED modules driven over SPI by luma.led-matrix.

MAX7219 chains pick up noise on long pole cables and then show garbage until they are
initialised again (peers' issue trackers are full of it). So the chain is fully
re-initialised (luma's init sequence: scan limit, decode mode, display test, intensity,
shutdown off) every `reinit_s` seconds and after any SPI error, then the last frame is
sent again. The SPI interface is injected (`spi=`): on a Pi it is luma's
`luma.core.interface.serial.spi`, in tests a recording fake.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from agent.config import DisplayConfig
from display.board import BoardError, fit_to

log = logging.getLogger(__name__)

_SPIDEV = re.compile(r"^/dev/spidev(\d+)\.(\d+)$")


class Max7219Board:
    kind = "max7219"

    def __init__(
        self,
        spi: Any,
        *,
        width: int,
        height: int,
        rotate: int = 0,
        block_orientation: int = 0,
        blocks_arranged_in_reverse_order: bool = False,
        contrast: int = 0x70,
        reinit_s: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spi = spi
        self._options: dict[str, Any] = {
            "width": width,
            "height": height,
            "rotate": rotate,
            "block_orientation": block_orientation,
            "blocks_arranged_in_reverse_order": blocks_arranged_in_reverse_order,
        }
        self._contrast = contrast
        self._reinit_s = reinit_s
        self._mono = monotonic
        self._last: Image.Image | None = None
        self._ok = False
        self.reinits = 0  # how many times the chain was initialised (diagnostics)
        self._device: Any = None
        self._lit = True
        self._init()

    def _init(self) -> None:
        """Send the full initialisation sequence (a new luma device on the same bus)."""
        from luma.led_matrix.device import max7219  # optional hardware library: lazy

        try:
            self._device = max7219(self._spi, contrast=self._contrast, **self._options)
            if not self._lit:
                self._device.hide()
        except Exception as e:  # luma raises whatever the SPI layer raises
            self._ok = False
            raise BoardError(f"max7219 initialisation failed: {e}") from e
        self.reinits += 1
        self._since = self._mono()
        self._ok = True

    @property
    def size(self) -> tuple[int, int]:
        w, h = self._options["width"], self._options["height"]
        return (h, w) if self._options["rotate"] in (1, 3) else (w, h)

    @property
    def mode(self) -> str:
        return "1"

    @property
    def ok(self) -> bool:
        return self._ok

    def show(self, image: Image.Image, *, item: str | None = None) -> None:
        frame = fit_to(image, self.size, "1")
        if not self._ok or self._mono() - self._since >= self._reinit_s:
            self._init()
        try:
            self._device.display(frame)
        except Exception as e:
            # The chain may now hold half a frame or worse: start it again from scratch
            # and resend the frame; if that fails too, the board is failed.
            log.warning("max7219: SPI error (%s); re-initialising the chain", e)
            self._ok = False
            self._init()
            try:
                self._device.display(frame)
            except Exception as e2:
                self._ok = False
                raise BoardError(f"max7219 SPI error after re-initialisation: {e2}") from e2
        self._last = frame

    def reset(self) -> None:
        """Re-initialise the chain now and resend the last frame (the watchdog's cure)."""
        self._init()
        if self._last is not None:
            self._device.display(self._last)

    def set_contrast(self, level: int) -> None:
        """LED intensity 0-255 (the chip has 16 steps); kept across re-initialisations."""
        if not 0 <= level <= 255:
            raise ValueError(f"contrast {level} is outside 0-255")
        self._contrast = level
        if self._ok:
            self._device.contrast(level)

    def set_lit(self, lit: bool) -> None:
        """Shutdown mode on/off (the screen-power switch for a matrix)."""
        self._lit = lit
        if self._ok:
            (self._device.show if lit else self._device.hide)()

    def close(self) -> None:
        self._device = None


def spi_from_path(path: str) -> Any:
    """luma's SPI interface for `/dev/spidevB.D` (default /dev/spidev0.0)."""
    from luma.core.interface.serial import noop, spi

    m = _SPIDEV.match(path or "/dev/spidev0.0")
    if m is None:
        raise BoardError(f"max7219 path {path!r} is not /dev/spidevB.D")
    try:
        return spi(port=int(m.group(1)), device=int(m.group(2)), gpio=noop())
    except Exception as e:
        raise BoardError(f"max7219 SPI {path}: {e}") from e


def open_board(config: DisplayConfig, *, spi: Any = None, **inject: Any) -> Max7219Board:
    return Max7219Board(
        spi if spi is not None else spi_from_path(config.path),
        width=config.width,
        height=config.height,
        rotate=config.rotate,
        block_orientation=config.block_orientation,
        blocks_arranged_in_reverse_order=config.blocks_arranged_in_reverse_order,
        contrast=config.contrast,
        reinit_s=config.reinit_s,
        **inject,
    )

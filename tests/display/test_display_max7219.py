"""MAX7219 chains: the exact bytes on the SPI bus, and re-initialisation after an error."""

from __future__ import annotations

import pytest
from PIL import Image
from support.spi import RecordingSpi

from display.board import BoardError
from display.max7219 import Max7219Board

# MAX7219 registers (datasheet table 2): digits 1-8 are registers 0x01-0x08.
DECODE, INTENSITY, SCANLIMIT, SHUTDOWN, TEST = 0x09, 0x0A, 0x0B, 0x0C, 0x0F
CHAIN = 4


def each(register: int, value: int) -> list[int]:
    """One register write to every module of the 4-module chain (one SPI transfer)."""
    return [register, value] * CHAIN


def init_sequence(contrast: int) -> list[list[int]]:
    blank = [each(digit, 0) for digit in range(1, 9)]
    return [
        each(SCANLIMIT, 7),
        each(DECODE, 0),
        each(TEST, 0),
        each(INTENSITY, contrast >> 4),
        *blank,  # luma clears the chain on init
        each(SHUTDOWN, 1),
    ]


def known_frame() -> Image.Image:
    """32x8: the top-left pixel, the bottom-right pixel, and column 9 lit top to bottom."""
    image = Image.new("1", (32, 8))
    image.putpixel((0, 0), 1)
    image.putpixel((31, 7), 1)
    for y in range(8):
        image.putpixel((9, y), 1)
    return image


# Each transfer carries one digit (column) for all 4 modules, the module farthest down
# the chain first (x 24-31, 16-23, 8-15, 0-7); bit y of the byte is row y.
FRAME_BYTES = [
    [1, 0x00, 1, 0x00, 1, 0x00, 1, 0x01],  # column 0 of each module: (0,0)
    [2, 0x00, 2, 0x00, 2, 0xFF, 2, 0x00],  # column 1: x=9 is module 2's column 1
    *[[d, 0, d, 0, d, 0, d, 0] for d in range(3, 8)],
    [8, 0x80, 8, 0x00, 8, 0x00, 8, 0x00],  # column 7: (31,7) in the last module
]


def test_exact_bytes_for_init_and_a_known_frame(spi: RecordingSpi) -> None:
    board = Max7219Board(spi, width=32, height=8, contrast=0x80)
    assert spi.calls == init_sequence(0x80)
    spi.calls.clear()
    board.show(known_frame(), item="x")
    assert spi.calls == FRAME_BYTES
    assert board.ok


def test_spi_error_reinitialises_the_chain_and_resends_the_frame(spi: RecordingSpi) -> None:
    board = Max7219Board(spi, width=32, height=8, contrast=0x80)
    spi.calls.clear()
    spi.fail_at = {3}  # the 4th transfer of the frame fails half-way through
    board.show(known_frame())
    assert spi.calls == [*FRAME_BYTES[:4], *init_sequence(0x80), *FRAME_BYTES]
    assert board.ok and board.reinits == 2


def test_periodic_reinitialisation(spi: RecordingSpi) -> None:
    now = [0.0]
    board = Max7219Board(
        spi, width=32, height=8, contrast=0x80, reinit_s=60, monotonic=lambda: now[0]
    )
    board.show(known_frame())
    spi.calls.clear()
    now[0] = 59.0
    board.show(known_frame())
    assert spi.calls == FRAME_BYTES
    spi.calls.clear()
    now[0] = 61.0
    board.show(known_frame())
    assert spi.calls == [*init_sequence(0x80), *FRAME_BYTES]


def test_a_dead_bus_marks_the_board_failed(spi: RecordingSpi) -> None:
    board = Max7219Board(spi, width=32, height=8)
    spi.fail_at = set(range(len(spi.calls), len(spi.calls) + 1000))
    with pytest.raises(BoardError):
        board.show(known_frame())
    assert not board.ok


def test_contrast_and_lit_state_survive_reinitialisation(spi: RecordingSpi) -> None:
    board = Max7219Board(spi, width=32, height=8, contrast=0x80)
    board.set_contrast(0x30)
    board.set_lit(False)
    spi.calls.clear()
    spi.fail_at = {0}
    board.show(known_frame())
    assert each(INTENSITY, 0x3) in spi.calls
    assert spi.calls.index(each(SHUTDOWN, 0)) > spi.calls.index(each(SHUTDOWN, 1))

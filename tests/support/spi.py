"""A recording SPI bus for MAX7219 tests (there is no SPI bus here)."""

from __future__ import annotations

from typing import Any


class RecordingSpi:
    """Stands in for luma's SPI interface (no SPI bus here): records every `data` call
    and raises on anything the MAX7219 driver should never ask of it."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.fail_at: set[int] = set()  # 0-based indices of data() calls that raise

    def data(self, data: list[int]) -> None:
        index = len(self.calls)
        self.calls.append(list(data))
        if index in self.fail_at:
            raise OSError(121, "Remote I/O error (injected)")

    def command(self, *cmd: int) -> None:
        raise AssertionError(f"MAX7219 never sends SPI commands, got command{cmd}")

    def cleanup(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected use of the SPI interface: .{name}")

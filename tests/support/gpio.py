"""A strict fake GPIO line (no GPIO chip exists here) for the relay drivers' tests."""

from __future__ import annotations


class StrictLine:
    """A fake GPIO line: only set(bool), get() and release(); anything else fails the test."""

    def __init__(self, fail: bool = False) -> None:
        self.values: list[bool] = []
        self.released = False
        self.fail = fail

    def set(self, active: bool) -> None:
        assert isinstance(active, bool), f"set({active!r}) is not a bool"
        assert not self.released, "set() after release()"
        if self.fail:
            raise OSError(5, "Input/output error")
        self.values.append(active)

    def get(self) -> bool:
        assert not self.released, "get() after release()"
        if self.fail:
            raise OSError(5, "Input/output error")
        return self.values[-1] if self.values else False

    def release(self) -> None:
        assert not self.released, "released twice"
        self.released = True

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"unexpected use of the GPIO line: {name}")

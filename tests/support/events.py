"""An async event sink (level, code, detail) that records what an operator would see."""

from __future__ import annotations


class AsyncEvents:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    async def __call__(self, level: str, code: str, detail: str) -> None:
        self.items.append((level, code, detail))

    def codes(self) -> list[str]:
        return [c for _, c, _ in self.items]

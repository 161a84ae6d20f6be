"""SD card health: ext4 error counters and read-only remounts.

Reads `/sys/fs/ext4/<dev>/errors_count` (errors the filesystem met since it was made)
and `/proc/mounts` (whether the filesystems holding `/` and the agent's storage are
mounted read-only). Read because a dying card first shows as filesystem errors, then
the kernel remounts it read-only (errors=remount-ro) and the agent can neither cache
media nor keep proofs: the province must send someone with a new card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.probes import read_int, read_text


@dataclass(frozen=True)
class CardHealth:
    fs_errors: int | None  # sum over ext4 filesystems; None when no counter could be read
    read_only: tuple[str, ...]  # watched mount points mounted read-only

    def as_json(self) -> dict[str, object]:
        return {"fs_errors": self.fs_errors, "read_only": list(self.read_only)}


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal.
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, ch)
    return field


def mounts(proc_root: Path = Path("/proc")) -> list[tuple[str, tuple[str, ...]]] | None:
    """(mount point, options) for every well-formed line of /proc/mounts; None if unreadable."""
    text = read_text(proc_root / "mounts", 1 << 20)
    if text is None:
        return None
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1].startswith("/"):
            out.append((_unescape(parts[1]), tuple(parts[3].split(","))))
    return out


Mount = tuple[str, tuple[str, ...]]


def _mount_of(path: Path, table: list[Mount]) -> Mount | None:
    best: Mount | None = None
    text = str(path)
    for point, opts in table:  # later lines shadow earlier ones mounted at the same place
        inside = text == point or text.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, opts)
    return best


def fs_errors(sys_root: Path = Path("/sys")) -> int | None:
    base = sys_root / "fs/ext4"
    try:
        devices = sorted(base.iterdir())
    except OSError:
        return None
    counts = [read_int(d / "errors_count") for d in devices]
    known = [c for c in counts if c is not None and c >= 0]
    return sum(known) if known else None


def card_health(
    watched: list[Path], *, sys_root: Path = Path("/sys"), proc_root: Path = Path("/proc")
) -> CardHealth | None:
    table = mounts(proc_root)
    errors = fs_errors(sys_root)
    if table is None and errors is None:
        return None
    read_only: list[str] = []
    for path in watched:
        found = _mount_of(path, table or [])
        if found is not None and "ro" in found[1] and found[0] not in read_only:
            read_only.append(found[0])
    return CardHealth(errors, tuple(read_only))

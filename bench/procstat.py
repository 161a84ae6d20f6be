"""CPU time and memory of a process, read from /proc (Linux), for the benchmarks.

The benches import it as `procstat` (a script's own folder is first on sys.path).
"""

from __future__ import annotations

import os
from pathlib import Path


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name; index 0 is field 3 (state).

    The name is split off at the last ')' because it may itself hold spaces and ')'."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime of the process (stat fields 14-15), or with `children` cutime +
    cstime (fields 16-17: its children that have exited and been reaped)."""
    fields = stat_fields(pid)
    i = 13 if children else 11
    return (int(fields[i]) + int(fields[i + 1])) / os.sysconf("SC_CLK_TCK")


def _kb_line(path: Path, key: str) -> float:
    """The `key:  N kB` line of a /proc file, in MB; NaN when there is none
    (a figure that was not measured must not read as zero)."""
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    """VmRSS from /proc/<pid>/status, in MB."""
    return _kb_line(Path(f"/proc/{pid}/status"), "VmRSS")


def pss_mb(pid: int) -> float:
    """Pss from /proc/<pid>/smaps_rollup, in MB.

    RSS counts shared pages (the Python interpreter, numpy) in full in every process
    that maps them; PSS divides them among the sharers, so PSS figures add up."""
    return _kb_line(Path(f"/proc/{pid}/smaps_rollup"), "Pss")


def peak_rss_mb(pid: int) -> float:
    """VmHWM (the highest RSS since start or since `reset_peak_rss`), in MB."""
    return _kb_line(Path(f"/proc/{pid}/status"), "VmHWM")


def reset_peak_rss(pid: int) -> None:
    """Restart VmHWM from the current RSS (Linux 4.0+: `5` to /proc/<pid>/clear_refs),
    so a peak can be measured over one phase of a run (e.g. after start-up)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")

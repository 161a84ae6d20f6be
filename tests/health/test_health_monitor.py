"""The health monitor: events on change (card read-only, under-voltage, modem lost) and
the heartbeat filled from its snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.events import AsyncEvents

from agent.clock import ClockStatus
from agent.heartbeat import Heartbeat, HeartbeatSources
from agent.probes.modem import ModemReading
from agent.probes.monitor import HealthMonitor, Roots, Sources
from agent.probes.throttle import SYSFS_FILE


def put(root: Path, rel: str, content: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


@pytest.fixture
def tree(tmp_path: Path) -> Roots:
    roots = Roots(sys=tmp_path / "sys", proc=tmp_path / "proc", dev=tmp_path / "dev")
    put(roots.sys, "class/thermal/thermal_zone0/temp", "51000\n")
    put(roots.sys, SYSFS_FILE, "0\n")
    put(roots.sys, "fs/ext4/mmcblk0p2/errors_count", "0\n")
    put(roots.proc, "mounts", "/dev/mmcblk0p2 / ext4 rw 0 0\n")
    put(roots.proc, "loadavg", "0.10 0.1 0.1 1/1 1\n")
    put(roots.proc, "meminfo", "MemTotal: 100 kB\nMemAvailable: 60 kB\n")
    put(roots.proc, "uptime", "10.0 1.0\n")
    return roots


@pytest.mark.anyio
async def test_events_on_change_only(tree: Roots, tmp_path: Path) -> None:
    modem: list[ModemReading | None] = [ModemReading(-80, "Viettel", True)]
    events = AsyncEvents()
    mon = HealthMonitor(
        Sources(tmp_path, roots=tree, modem=lambda: modem[0], use_vcgencmd=False),
        every_s=60,
        event=events,
    )
    await mon.poll_once()
    assert events.codes() == []

    # The kernel remounts the card read-only after errors; the supply sags.
    put(tree.proc, "mounts", "/dev/mmcblk0p2 / ext4 rw 0 0\n/dev/mmcblk0p2 / ext4 ro 0 0\n")
    put(tree.sys, "fs/ext4/mmcblk0p2/errors_count", "2\n")
    put(tree.sys, SYSFS_FILE, "50005\n")
    modem[0] = None
    await mon.poll_once()
    assert sorted(events.codes()) == [
        "card_read_only",
        "modem_lost",
        "storage_errors",
        "under_voltage",
    ]
    level = {c: lvl for lvl, c, _ in events.items}
    assert level["card_read_only"] == "error"

    # Nothing new: no repeated events at every poll.
    events.items.clear()
    await mon.poll_once()
    assert events.codes() == []

    # Under-voltage passes (only "since boot" remains) and comes back; the modem returns.
    put(tree.sys, SYSFS_FILE, "50000\n")
    modem[0] = ModemReading(-90, "Vinaphone", True)
    await mon.poll_once()
    assert events.codes() == ["modem_back"]
    put(tree.sys, SYSFS_FILE, "50001\n")
    await mon.poll_once()
    assert events.codes() == ["modem_back", "under_voltage"]


@pytest.mark.anyio
async def test_problem_present_at_start_reported_once(tree: Roots, tmp_path: Path) -> None:
    put(tree.sys, SYSFS_FILE, "10000\n")
    events = AsyncEvents()
    mon = HealthMonitor(Sources(tmp_path, roots=tree, use_vcgencmd=False), every_s=60, event=events)
    await mon.poll_once()
    await mon.poll_once()
    assert events.codes() == ["under_voltage"]
    assert "since boot" in events.items[0][2]


@pytest.mark.anyio
async def test_heartbeat_uses_snapshot_and_nulls_what_is_unknown(
    tree: Roots, tmp_path: Path
) -> None:
    (tree.proc / "meminfo").unlink()
    mon = HealthMonitor(
        Sources(
            tmp_path,
            roots=tree,
            modem=lambda: ModemReading(-65, "Mobifone", True, "lte"),
            use_vcgencmd=False,
        ),
        every_s=60,
        event=AsyncEvents(),
    )
    hb = Heartbeat(
        HeartbeatSources(
            storage_dir=tmp_path,
            schedule_version=lambda: None,
            volume=lambda: 80,
            clock=lambda: ClockStatus(False, "none"),
            outbox=lambda: 0,
            health=lambda: mon.snapshot,
        )
    )
    before = hb.build("2026-12-01T10:00:00.000+07:00")
    assert before["cpu_temp_c"] is None and before["modem"] is None  # no sample yet
    await mon.poll_once()
    beat = hb.build("2026-12-01T10:01:00.000+07:00")
    assert beat["cpu_temp_c"] == 51.0
    assert beat["load1"] == 0.1
    assert beat["mem_used_pct"] is None
    assert beat["modem"] == {"rssi_dbm": -65, "operator": "Mobifone"}
    assert beat["health"]["system_uptime_s"] == 10
    assert beat["health"]["power"]["under_voltage_now"] is False
    assert beat["health"]["modem"]["registered"] is True

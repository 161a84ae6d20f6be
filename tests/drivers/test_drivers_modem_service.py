"""The agent's modem service: the probe loop off the event loop, a reset event reaching the
operator, the health monitor's modem_lost / modem_back events, and network time as the
clock's source."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from support.events import AsyncEvents
from support.modem_sim import ModemSim, PtyPair, fake_usb_sysfs

from agent import clock_sources
from agent.config import ModemConfig
from agent.hardware import ModemService
from agent.probes.modem import heartbeat_field
from agent.probes.monitor import HealthMonitor, Roots, Sources


@pytest.mark.anyio
async def test_modem_service_events_and_heartbeat(tmp_path: Path) -> None:
    sys_root, dev = tmp_path / "sys", tmp_path / "dev"
    dev.mkdir()
    fake_usb_sysfs(sys_root, "ttyUSB2")
    events = AsyncEvents()
    cfg = ModemConfig(usb_id="2c7c:0125", timeout_s=0.3, reset_after=2)
    svc = ModemService(cfg, events, sys_root=sys_root, dev_root=dev, step_clock=False)
    monitor = HealthMonitor(
        Sources(tmp_path, roots=Roots(sys=sys_root, proc=tmp_path / "proc", dev=dev),
                modem=lambda: svc.reading, use_vcgencmd=False),
        every_s=60,
        event=events,
    )  # fmt: skip
    try:
        with PtyPair(dev / "ttyUSB2") as pair, ModemSim(pair.sim_end) as sim:
            sim.cclk = '"' + time.strftime("%y/%m/%d,%H:%M:%S", time.gmtime()) + '+00"'
            assert await svc.probe_once() is not None
            await monitor.poll_once()
            assert heartbeat_field(monitor.snapshot.modem if monitor.snapshot else None) == {
                "rssi_dbm": -73,
                "operator": "Viettel",
            }
            # Network time agrees with the wall clock: a trusted source named "modem".
            clock_sources.register(svc.time_source)
            assert clock_sources.trusted_source() == "modem"

            sim.hung_until_cfun = True
            assert await svc.probe_once() is None
            await monitor.poll_once()
            assert events.codes() == ["modem_lost"]
            assert await svc.probe_once() is None
            assert events.codes() == ["modem_lost", "modem_reset"]
            assert sim.resets == 1
            assert await svc.probe_once() is not None
            await monitor.poll_once()
            assert events.codes() == ["modem_lost", "modem_reset", "modem_back"]
            pair.vanish()
            shutil.rmtree(sys_root / "bus/usb/devices")
        assert await svc.probe_once() is None
        await monitor.poll_once()
        assert events.codes()[-1] == "modem_lost"
    finally:
        await svc.stop()
        clock_sources.unregister(svc.time_source)
    assert svc.time_source not in clock_sources.registered()

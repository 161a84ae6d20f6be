"""Trusted time without NTP: modem network time and an RTC name the clock's source."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import clock, clock_sources
from agent.clock_sources import EARLIEST, NetworkTime, RtcTime


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(autouse=True)
def no_sources() -> Iterator[None]:
    yield
    for s in clock_sources.registered():
        clock_sources.unregister(s)


def test_network_time_carried_forward_until_stale() -> None:
    mono = Mono()
    reading: list[tuple[float, float] | None] = [None]
    src = NetworkTime(lambda: reading[0], monotonic=mono)
    assert src.now() is None
    reading[0] = (EARLIEST + 500.0, 1000.0)
    mono.t = 1060.0
    assert src.now() == EARLIEST + 560.0
    mono.t = 1000.0 + 25 * 3600
    assert src.now() is None  # a day-old reading is no longer vouched for
    reading[0] = (EARLIEST - 1.0, mono.t)
    assert src.now() is None  # a modem's power-on default, not the network's time


def test_rtc_from_fake_sysfs(tmp_path: Path) -> None:
    mono = Mono()
    rtc = RtcTime(tmp_path, monotonic=mono)
    assert not rtc.present()
    rtc.refresh()
    assert rtc.now() is None
    f = tmp_path / "class/rtc/rtc0/since_epoch"
    f.parent.mkdir(parents=True)
    f.write_text(f"{int(EARLIEST) + 100}\n")
    rtc.refresh()
    mono.t += 5
    assert rtc.now() == EARLIEST + 105
    f.write_text("946684800\n")  # flat battery: 2000-01-01
    rtc.refresh()
    assert rtc.now() is None
    f.write_text("garbage")
    rtc.refresh()
    assert rtc.now() is None


def test_clock_status_names_the_source_that_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "kernel_ntp_synced", lambda: False)
    monkeypatch.setattr(clock, "rtc_set_clock", lambda: False)
    assert clock.clock_status("auto", lower_bound=0).as_json() == {
        "synced": False,
        "source": "none",
    }
    far = NetworkTime(lambda: (time.time() + 3600, time.monotonic()))
    clock_sources.register(far)
    assert clock.clock_status("auto", lower_bound=0).trusted is False  # disagrees by an hour
    near = NetworkTime(lambda: (time.time() + 1, time.monotonic()))
    clock_sources.register(near)
    assert clock.clock_status("auto", lower_bound=0).as_json() == {
        "synced": True,
        "source": "modem",
    }
    assert clock.clock_status("never", lower_bound=0).trusted is False


def test_step_clock_only_when_unsynced_and_disagreeing(monkeypatch: pytest.MonkeyPatch) -> None:
    stepped: list[float] = []
    monkeypatch.setattr(time, "clock_settime", lambda _c, t: stepped.append(t))
    ahead = NetworkTime(lambda: (time.time() + 3600, time.monotonic()))
    assert clock_sources.step_clock(ahead, kernel_synced=True) is False
    same = NetworkTime(lambda: (time.time(), time.monotonic()))
    assert clock_sources.step_clock(same, kernel_synced=False) is False
    assert stepped == []
    assert clock_sources.step_clock(ahead, kernel_synced=False) is True
    assert len(stepped) == 1 and abs(stepped[0] - (time.time() + 3600)) < 5

    def refuse(_c: int, _t: float) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(time, "clock_settime", refuse)
    assert clock_sources.step_clock(ahead, kernel_synced=False) is False

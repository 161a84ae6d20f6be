"""Each health probe against fake /sys and /proc trees: good values, garbage, missing files.

A probe that cannot tell must say None, never a made-up number (PROTOCOL §6.2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.probes.amplifier import amplifier_state
from agent.probes.audio import sound_cards
from agent.probes.cpu_temp import cpu_temp_c
from agent.probes.disk import disk_free_mb
from agent.probes.display import display_present
from agent.probes.load import load1
from agent.probes.memory import mem_used_pct
from agent.probes.modem import ModemReading, data_bytes, heartbeat_field
from agent.probes.sdcard import card_health
from agent.probes.throttle import SYSFS_FILE, throttle
from agent.probes.uptime import system_uptime_s


def put(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


GARBAGE = ["", "banana", "\x00\xff\xfe", "12abc", "nan", "-", "9" * 400]


def test_cpu_temp_reads_millidegrees(tmp_path: Path) -> None:
    put(tmp_path, "class/thermal/thermal_zone0/temp", "48312\n")
    assert cpu_temp_c(tmp_path) == 48.3


@pytest.mark.parametrize("content", [*GARBAGE, "999999", "-273000"])
def test_cpu_temp_garbage_or_impossible_is_unknown(tmp_path: Path, content: str) -> None:
    put(tmp_path, "class/thermal/thermal_zone0/temp", content)
    assert cpu_temp_c(tmp_path) is None


def test_cpu_temp_missing_is_unknown(tmp_path: Path) -> None:
    assert cpu_temp_c(tmp_path) is None


def test_load_and_uptime(tmp_path: Path) -> None:
    put(tmp_path, "loadavg", "0.42 0.30 0.20 1/123 4567\n")
    put(tmp_path, "uptime", "86400.55 170000.10\n")
    assert load1(tmp_path) == 0.42
    assert system_uptime_s(tmp_path) == 86400


@pytest.mark.parametrize("content", [*GARBAGE, "-1 0 0", "inf 0 0"])
def test_load_and_uptime_garbage(tmp_path: Path, content: str) -> None:
    put(tmp_path, "loadavg", content)
    put(tmp_path, "uptime", content)
    assert load1(tmp_path) is None
    assert system_uptime_s(tmp_path) is None


def test_load_and_uptime_missing(tmp_path: Path) -> None:
    assert load1(tmp_path) is None and system_uptime_s(tmp_path) is None


MEMINFO = "MemTotal:        1000000 kB\nMemFree:          100000 kB\nMemAvailable:     750000 kB\n"


def test_memory_counts_reclaimable_cache_as_free(tmp_path: Path) -> None:
    put(tmp_path, "meminfo", MEMINFO)
    assert mem_used_pct(tmp_path) == 25.0


@pytest.mark.parametrize(
    "content",
    [
        *GARBAGE,
        "MemTotal: 1000 kB\n",  # no MemAvailable (very old kernel): no guess from MemFree
        "MemTotal: 0 kB\nMemAvailable: 0 kB\n",
        "MemTotal: 100 kB\nMemAvailable: 200 kB\n",
        "MemTotal: lots kB\nMemAvailable: 1 kB\n",
    ],
)
def test_memory_garbage(tmp_path: Path, content: str) -> None:
    put(tmp_path, "meminfo", content)
    assert mem_used_pct(tmp_path) is None


def test_disk_free_and_missing_folder(tmp_path: Path) -> None:
    free = disk_free_mb(tmp_path)
    assert free is not None and free >= 0
    assert disk_free_mb(tmp_path / "nope") is None


@pytest.mark.parametrize(
    ("content", "uv_now", "uv_boot", "thr_now", "thr_boot"),
    [
        ("0\n", False, False, False, False),
        ("50005\n", True, True, True, True),
        ("50000\n", False, True, False, True),
        ("10000\n", False, True, False, False),
        ("throttled=0x1\n", True, False, False, False),
    ],
)
def test_throttle_bits(
    tmp_path: Path, content: str, uv_now: bool, uv_boot: bool, thr_now: bool, thr_boot: bool
) -> None:
    put(tmp_path, SYSFS_FILE, content)
    t = throttle(tmp_path, use_vcgencmd=False)
    assert t is not None
    assert (t.under_voltage_now, t.under_voltage_since_boot) == (uv_now, uv_boot)
    assert (t.throttled_now, t.throttled_since_boot) == (thr_now, thr_boot)


@pytest.mark.parametrize("content", ["", "banana", "\x00\xff", "nan", "-", "zz", "1ffffffff"])
def test_throttle_garbage(tmp_path: Path, content: str) -> None:
    put(tmp_path, SYSFS_FILE, content)
    assert throttle(tmp_path, use_vcgencmd=False) is None


def test_throttle_missing_without_vcgencmd(tmp_path: Path) -> None:
    assert throttle(tmp_path, use_vcgencmd=False) is None


MOUNTS = """\
/dev/mmcblk0p2 / ext4 rw,noatime 0 0
proc /proc proc rw,nosuid 0 0
/dev/mmcblk0p1 /boot/firmware vfat rw 0 0
"""


def test_card_healthy(tmp_path: Path) -> None:
    sys_root, proc_root = tmp_path / "sys", tmp_path / "proc"
    put(sys_root, "fs/ext4/mmcblk0p2/errors_count", "0\n")
    put(proc_root, "mounts", MOUNTS)
    h = card_health([Path("/"), Path("/var/lib/tcs-agent")], sys_root=sys_root, proc_root=proc_root)
    assert h is not None and h.fs_errors == 0 and h.read_only == ()


def test_card_remounted_read_only_and_errors(tmp_path: Path) -> None:
    sys_root, proc_root = tmp_path / "sys", tmp_path / "proc"
    put(sys_root, "fs/ext4/mmcblk0p2/errors_count", "3\n")
    put(sys_root, "fs/ext4/sda1/errors_count", "garbage")
    # The same mount point mounted again read-only: the later line wins, as in the kernel.
    put(
        proc_root,
        "mounts",
        MOUNTS + "/dev/mmcblk0p3 /var/lib/tcs\\040agent ext4 ro,relatime 0 0\nbroken line\n",
    )
    h = card_health(
        [Path("/"), Path("/var/lib/tcs agent/cache")], sys_root=sys_root, proc_root=proc_root
    )
    assert h is not None
    assert h.fs_errors == 3
    assert h.read_only == ("/var/lib/tcs agent",)


def test_card_unknown_when_nothing_readable(tmp_path: Path) -> None:
    assert card_health([Path("/")], sys_root=tmp_path, proc_root=tmp_path) is None


def test_card_errors_unknown_but_mounts_known(tmp_path: Path) -> None:
    put(tmp_path / "proc", "mounts", "/dev/x / ext4 ro 0 0\n")
    put(tmp_path / "sys", "fs/ext4/x/errors_count", "nope")
    h = card_health([Path("/")], sys_root=tmp_path / "sys", proc_root=tmp_path / "proc")
    assert h is not None and h.fs_errors is None and h.read_only == ("/",)


def test_sound_cards(tmp_path: Path) -> None:
    put(
        tmp_path,
        "asound/cards",
        " 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n"
        "                      bcm2835 Headphones\n"
        " 1 [Device         ]: USB-Audio - USB Audio Device\n",
    )
    assert sound_cards(tmp_path) == ["Headphones", "Device"]
    put(tmp_path, "asound/cards", "--- no soundcards ---\n")
    assert sound_cards(tmp_path) == []
    put(tmp_path, "asound/cards", "banana\n")
    assert sound_cards(tmp_path) is None
    assert sound_cards(tmp_path / "none") is None


def test_display_presence(tmp_path: Path) -> None:
    fb = put(tmp_path, "fb.raw", b"\0" * 64)
    assert display_present("framebuffer", str(fb)) is True
    assert display_present("framebuffer", str(tmp_path / "fb9")) is False
    dev = tmp_path / "dev"
    dev.mkdir()
    assert display_present("max7219", "", dev_root=dev) is False
    put(dev, "spidev0.0", "")
    assert display_present("max7219", "", dev_root=dev) is True
    assert display_present("max7219", "", dev_root=tmp_path / "nodev") is None
    assert display_present("image-dir", str(dev)) is True
    assert display_present("image-dir", str(tmp_path / "gone")) is False
    assert display_present("none", "") is None


def test_modem_fields_and_data_usage(tmp_path: Path) -> None:
    assert heartbeat_field(None) is None
    assert heartbeat_field(ModemReading(-71, "Viettel", True, "lte")) == {
        "rssi_dbm": -71,
        "operator": "Viettel",
    }
    put(tmp_path, "class/net/wwan0/statistics/rx_bytes", "1234\n")
    put(tmp_path, "class/net/wwan0/statistics/tx_bytes", "99\n")
    assert data_bytes("wwan0", tmp_path) == {"rx_bytes": 1234, "tx_bytes": 99}
    put(tmp_path, "class/net/ppp0/statistics/rx_bytes", "x")
    assert data_bytes("ppp0", tmp_path) is None
    assert data_bytes("wwan1", tmp_path) is None
    assert data_bytes("../../etc", tmp_path) is None


def test_amplifier_state_read_back_or_commanded() -> None:
    class Relay:
        def __init__(self, answer: object) -> None:
            self.answer = answer

        def read_back(self) -> object:
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    class Plain:
        is_on = True

    assert amplifier_state(Relay(False)) == {"on": False, "read_back": True}
    assert amplifier_state(Relay(None)) is None
    assert amplifier_state(Relay(OSError("EIO"))) is None
    assert amplifier_state(Plain()) == {"on": True, "read_back": False}
    assert amplifier_state(object()) is None

"""Cellular modem health: signal, operator, registration (from the modem driver) and data
usage (from `/sys/class/net/<iface>/statistics/{rx,tx}_bytes`).

The AT conversation itself lives in drivers/modem.py and runs in its own thread; this
probe only turns its last answers into heartbeat fields. Read because in villages the
modem is the link: a weak signal or a lost registration explains a device that went
quiet, and data usage shows a SIM about to run out of credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.probes import read_int


@dataclass(frozen=True)
class ModemReading:
    """What the driver learnt at its last successful probe."""

    rssi_dbm: int | None
    operator: str | None
    registered: bool | None
    access: str | None = None  # e.g. "lte", "umts", "gsm" when the modem said


def heartbeat_field(reading: ModemReading | None) -> dict[str, object] | None:
    """PROTOCOL §6.2 `modem`: `{"rssi_dbm", "operator"}`, or null when the modem is silent."""
    if reading is None:
        return None
    return {"rssi_dbm": reading.rssi_dbm, "operator": reading.operator}


def data_bytes(iface: str, sys_root: Path = Path("/sys")) -> dict[str, int] | None:
    """Bytes received and sent on the modem's network interface since it came up."""
    if not iface or "/" in iface or iface in (".", ".."):
        return None
    stats = sys_root / "class/net" / iface / "statistics"
    rx, tx = read_int(stats / "rx_bytes"), read_int(stats / "tx_bytes")
    if rx is None or tx is None or rx < 0 or tx < 0:
        return None
    return {"rx_bytes": rx, "tx_bytes": tx}

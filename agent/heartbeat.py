"""The heartbeat (PROTOCOL §6.2): what the province's dashboard shows for each device.

Subsystems that are optional or arrive later (cache, audio, display, modem, what is
playing) are plugged in as small provider callables; a provider that is absent or
fails yields null, never a guess.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import __version__
from agent.clock import ClockStatus
from agent.probes.modem import heartbeat_field
from agent.probes.monitor import Snapshot, Sources, sample

log = logging.getLogger(__name__)

Provider = Callable[[], Any]


@dataclass
class HeartbeatSources:
    """Where each field comes from. Set by the service at start, read at every beat."""

    storage_dir: Path
    schedule_version: Callable[[], int | None]
    volume: Callable[[], int]
    clock: Callable[[], ClockStatus]
    outbox: Callable[[], int]
    playing: Provider | None = None
    alert_id: Provider | None = None
    cache: Provider | None = None
    audio: Provider | None = None
    display: Provider | None = None
    modem: Provider | None = None
    # The health monitor's last snapshot (agent/probes/monitor.py); without one the
    # probes are read right here, which blocks: only for tests and tools.
    health: Callable[[], Snapshot | None] | None = None
    extra: dict[str, Provider] = field(default_factory=dict)


def _probe(provider: Provider | None) -> Any:
    if provider is None:
        return None
    try:
        return provider()
    except Exception:  # a broken probe must never stop the heartbeat
        log.exception("heartbeat probe failed")
        return None


class Heartbeat:
    def __init__(
        self, sources: HeartbeatSources, *, monotonic: Callable[[], float] = time.monotonic
    ):
        self._src = sources
        self._mono = monotonic
        self._started = monotonic()
        self._seq = 0

    def build(self, at: str) -> dict[str, Any]:
        s = self._src
        self._seq += 1
        if s.health is not None:
            h = _probe(s.health) or Snapshot()  # no sample yet: every field null
        else:
            h = _probe(lambda: sample(Sources(s.storage_dir))) or Snapshot()
        return {
            "seq": self._seq,
            "at": at,
            "uptime_s": int(self._mono() - self._started),
            "agent_version": __version__,
            "schedule_version": _probe(s.schedule_version),
            "playing": _probe(s.playing),
            "alert_id": _probe(s.alert_id),
            "volume": _probe(s.volume),
            "clock": _probe(lambda: s.clock().as_json()),
            "cpu_temp_c": h.cpu_temp_c,
            "load1": h.load1,
            "mem_used_pct": h.mem_used_pct,
            "disk_free_mb": h.disk_free_mb,
            "cache": _probe(s.cache),
            "audio": _probe(s.audio),
            "display": _probe(s.display),
            "modem": _probe(s.modem) if s.modem is not None else heartbeat_field(h.modem),
            "health": h.details(),
            "outbox": _probe(s.outbox),
            **{k: _probe(p) for k, p in s.extra.items()},
        }

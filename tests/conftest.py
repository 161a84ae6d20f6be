"""Shared pytest setup: `tests/` on sys.path (for `from support.x import …`) and the
real-broker fixtures every area may use."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# `agent` is importable via `pip install -e .` or `python -m pytest` from the root; make
# a bare `pytest` from anywhere work too (appended, so an installed copy still wins).
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from support.broker import DEFAULT_CONSOLE, DEFAULT_DEVICES, DeviceEntry, start_broker


@pytest.fixture
def anyio_backend() -> str:
    # aiomqtt (paho underneath) runs on asyncio only.
    return "asyncio"


BrokerFactory = Callable[..., Any]


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[BrokerFactory]:
    """Start brokers with custom devices: `broker_factory(devices, console_users=..., port=...)`.

    Every broker started is stopped at teardown."""
    started: list[Any] = []

    def make(
        devices: Sequence[DeviceEntry] = DEFAULT_DEVICES,
        *,
        console_users: Sequence[str] = DEFAULT_CONSOLE,
        **kw: Any,
    ) -> Any:
        workdir = tmp_path / f"broker{len(started)}"
        b = start_broker(workdir, devices, console_users=console_users, **kw)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> Any:
    """A fresh broker: dev-0001 (vn-48, vn-48-490, vn-48-490-20194), dev-0002
    (vn-48, vn-48-491), console user `central`; TLS+password on .port, mTLS on .mtls_port."""
    return broker_factory()

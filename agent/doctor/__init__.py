"""`tcs-agent doctor`: what is wrong with this device, and what to do about it.

A technician on a pole with a laptop runs one command and gets one line per check,
✓ or ✗, and for every ✗ the thing to do. Every check runs that can, even when the
configuration has problems: the checks read the raw TOML leniently (`LooseConfig`) where
the strict validator would stop, and a problem the strict validator finds in a key
that has its own check (the device key, the storage folder, TLS files …) is reported
by that check, not twice.

Checks talk to the real things: a TCP connection to the broker, a TLS handshake with
the configured CA, an MQTT CONNECT with the device's credentials, a file created in
the storage folder. When the agent is running, its status socket answers for what it
holds (the broker session, the modem port) so the doctor does not fight it for them.
Results carry English text (JSON output is never translated); the text renderer
translates through gettext.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.doctor.broker import (
    broker_address,
    check_broker_auth,
    check_broker_reach,
    check_broker_tls,
)
from agent.doctor.device import (
    check_clock,
    check_config,
    check_device_key,
    check_disk,
    check_storage,
    check_trust_keys,
)
from agent.doctor.hardware import (
    check_amplifier,
    check_audio,
    check_display,
    check_modem,
    check_screen_relay,
)
from agent.doctor.model import CHECK_IDS, Check, Environment, LooseConfig, Msg
from agent.i18n import _

__all__ = ["CHECK_IDS", "Check", "Environment", "Msg", "main", "render", "run_checks"]


def running_agent(storage: Path | None) -> dict[str, Any] | None:
    """The running agent's status through its socket, or None when it is not running."""
    if storage is None:
        return None
    from agent.status_server import SOCKET_NAME, request

    try:
        answer = request(storage / SOCKET_NAME, {"op": "status"}, timeout_s=3.0)
    except (OSError, ValueError):
        return None
    status = answer.get("status")
    return status if isinstance(status, dict) else None


def run_checks(path: Path, env: Environment | None = None) -> Iterator[Check]:
    """Every check that applies, in the order a technician fixes things."""
    env = env or Environment()
    config_check, _cfg = check_config(path)
    yield config_check
    loose = LooseConfig(path)
    storage = loose.file("storage", "dir")
    agent = running_agent(storage)
    clock_check, trusted = check_clock(env, loose, agent)
    if not loose.parsed:  # nothing else can be told from a file that is not TOML
        yield clock_check
        return
    yield check_device_key(loose)
    broker = broker_address(loose)
    reach = check_broker_reach(broker, env.timeout_s)
    yield reach
    if broker is not None and reach.ok:
        tls_ok = True
        if broker.tls:
            tls = check_broker_tls(loose, broker, env.timeout_s, trusted)
            tls_ok = tls.ok
            yield tls
        if tls_ok:
            yield check_broker_auth(loose, broker, env.timeout_s, trusted, agent)
    yield check_trust_keys(loose)
    yield clock_check
    if storage is not None:
        yield check_disk(storage)
    yield check_storage(storage)
    for optional in (
        check_audio(loose, env),
        check_display(loose, env),
        check_modem(loose, env, agent),
        check_amplifier(loose, env),
        check_screen_relay(loose, env),
    ):
        if optional is not None:
            yield optional


def render(check: Check) -> str:
    mark = "✓" if check.ok else "✗"
    line = f"{mark} {check.id}: {check.detail.local()}"
    if check.fix is not None:
        line += "\n    → " + check.fix.local()
    return line


def main(path: Path, *, as_json: bool, env: Environment | None = None) -> int:
    import json
    import sys

    started = time.monotonic()
    checks = []
    for check in run_checks(path, env):
        checks.append(check)
        if not as_json:
            print(render(check), flush=True)
    ok = all(c.ok for c in checks)
    if as_json:
        print(json.dumps({"checks": [c.as_json() for c in checks]}, ensure_ascii=False))
    else:
        elapsed = time.monotonic() - started
        summary = _("all checks passed") if ok else _("some checks failed")
        print(f"{summary} ({elapsed:.1f} s)", file=sys.stdout)
    return 0 if ok else 1

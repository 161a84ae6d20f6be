"""Break and fix a running test broker's ACL (rewrite + SIGHUP), as a wrong ACL after a
device's re-enrolment would: `deny_proofs(broker)` ... `allow_all(broker)`."""

from __future__ import annotations

from typing import Any

from agent.central.acl import render_acl

DEV = "dev-0001"


def deny_proofs(broker: Any, device: str = DEV) -> None:
    """The ACL as rendered, minus the device's right to write its proofs."""
    acl = render_acl(broker.devices, broker.console_users)
    line = f"topic write tcs/v1/dev/{device}/proof\n"
    assert line in acl
    (broker.workdir / "acl").write_text(acl.replace(line, ""), encoding="utf-8")
    broker.reload()


def allow_all(broker: Any) -> None:
    """The ACL as rendered for the broker's devices again."""
    (broker.workdir / "acl").write_text(
        render_acl(broker.devices, broker.console_users), encoding="utf-8"
    )
    broker.reload()

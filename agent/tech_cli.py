"""The technician's subcommands: `doctor`, `status`, `test speaker|display`.

Registered on the `tcs-agent` parser by `register()` (agent/cli.py calls it once), so
these commands stay out of the way of the other subcommands. Text for people goes
through gettext (`agent.i18n._`); `--json` output is never translated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from agent.i18n import _

EXIT_NOT_RUNNING = 3


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add doctor, status and test to the subparsers action `sub`."""
    doctor = sub.add_parser(
        "doctor", help=_("check this device and say what to fix"), parents=[common]
    )
    doctor.add_argument("-c", "--config", type=Path, required=True)
    doctor.add_argument("--json", action="store_true", help=_("machine-readable output"))
    doctor.set_defaults(func=cmd_doctor)

    status = sub.add_parser("status", help=_("the running agent's live state"), parents=[common])
    status.add_argument("-c", "--config", type=Path, required=True)
    status.add_argument("--json", action="store_true", help=_("machine-readable output"))
    status.set_defaults(func=cmd_status)

    test = sub.add_parser("test", help=_("audible or visible self-test"), parents=[common])
    test.add_argument("what", choices=("speaker", "display"))
    test.add_argument("-c", "--config", type=Path, required=True)
    # The board's own on-site check (display/cli.py): used when the agent is not running,
    # or when a screenshot is asked for (the agent's test.run does not return pixels).
    test.add_argument(
        "--screenshot", type=Path, help=_("display: save the current slide as PNG first")
    )
    test.add_argument(
        "--seconds", type=float, default=5.0, help=_("display: test pattern duration")
    )
    test.set_defaults(func=cmd_test)


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.doctor import main

    return main(args.config, as_json=args.json)


def _storage_dir(config: Path) -> Path | None:
    from agent.doctor.model import LooseConfig

    return LooseConfig(config).file("storage", "dir")


def _ask(config: Path, doc: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
    from agent.status_server import SOCKET_NAME, request

    storage = _storage_dir(config)
    if storage is None:
        return None
    try:
        return request(storage / SOCKET_NAME, doc, timeout_s=timeout_s)
    except (OSError, ValueError):
        return None


def cmd_status(args: argparse.Namespace) -> int:
    if not args.config.exists():
        print(_("{file}: does not exist").format(file=args.config), file=sys.stderr)
        return 2
    answer = _ask(args.config, {"op": "status"}, 10.0)
    status = answer.get("status") if answer else None
    if not isinstance(status, dict):
        print(
            _("the agent is not running (no answer on its status socket); try `tcs-agent doctor`"),
            file=sys.stderr,
        )
        return EXIT_NOT_RUNNING
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
    else:
        print(render_status(status))
    return 0


def render_status(s: dict[str, Any]) -> str:
    link = s.get("link") or {}
    clock = s.get("clock") or {}
    lines = [
        _("device {device} · agent {version} · {at}").format(
            device=s.get("device"), version=s.get("agent_version"), at=s.get("at")
        ),
        _("link: connected to {broker}").format(broker=link.get("broker"))
        if link.get("connected")
        else _("link: not connected (broker {broker})").format(broker=link.get("broker")),
        _("clock: synchronised ({source})").format(source=clock.get("source"))
        if clock.get("synced")
        else _("clock: not trusted ({source})").format(source=clock.get("source")),
    ]
    playing = s.get("playing")
    if isinstance(playing, dict):
        lines.append(
            _("playing: {item} ({kind}, priority {priority}) since {since}").format(
                item=playing.get("item_id"),
                kind=playing.get("kind"),
                priority=playing.get("priority"),
                since=playing.get("since"),
            )
        )
    else:
        lines.append(_("playing: nothing"))
    if s.get("alert_id"):
        lines.append(_("alert: {alert}").format(alert=s["alert_id"]))
    showing = s.get("showing")
    lines.append(_("showing: {what}").format(what=showing) if showing else _("showing: nothing"))
    version = s.get("schedule_version")
    lines.append(
        _("schedule: version {version}").format(version=version)
        if version is not None
        else _("schedule: none received")
    )
    upcoming = s.get("next") or []
    if upcoming:
        lines.append(_("next:"))
        for occ in upcoming:
            lines.append(
                "  "
                + _("{at}  {item}  {kind}  priority {priority}").format(
                    at=occ.get("at"),
                    item=occ.get("item_id"),
                    kind=occ.get("kind"),
                    priority=occ.get("priority"),
                )
            )
    else:
        lines.append(_("next: nothing scheduled"))
    cache = s.get("cache")
    if isinstance(cache, dict):
        lines.append(
            _("cache: {items} items, {mb} MB, {missing} missing for the next 24 h").format(
                items=cache.get("items"),
                mb=round((cache.get("bytes") or 0) / 1e6, 1),
                missing=cache.get("missing"),
            )
        )
    lines.append(_("outbox: {n} waiting").format(n=s.get("outbox")))
    parts = s.get("parts")
    if isinstance(parts, dict):
        down = parts.get("down") or {}
        lines.append(
            _("parts: down: {parts}").format(
                parts=", ".join(f"{k} ({v})" for k, v in sorted(down.items()))
            )
            if down
            else _("parts: all up")
        )
        findings = {k: v for k, v in (parts.get("probes") or {}).items() if v}
        for name, why in sorted(findings.items()):
            lines.append(_("  {name}: {why}").format(name=name, why=why))
    err = s.get("last_error")
    lines.append(
        _("last error: {at} {message}").format(at=err.get("at"), message=err.get("message"))
        if isinstance(err, dict)
        else _("last error: none")
    )
    return "\n".join(lines)


def cmd_test(args: argparse.Namespace) -> int:
    if not args.config.exists():
        print(_("{file}: does not exist").format(file=args.config), file=sys.stderr)
        return 2
    if args.what == "display" and args.screenshot is not None:
        return _display_direct(args)
    answer = _ask(args.config, {"op": "test", "what": args.what}, 60.0)
    if answer is not None and isinstance(answer.get("test"), dict):
        result: dict[str, Any] = answer["test"]
        via = _("through the running agent")
    elif answer is not None and "error" in answer:
        print(_("the running agent refused the test: {error}").format(error=answer["error"]),
              file=sys.stderr)
        return 1
    elif args.what == "display":
        return _display_direct(args)
    else:
        result = _speaker_direct(args.config)
        via = _("directly (the agent is not running)")
    print(render_test(args.what, via, result))
    return 0 if result.get("ok") else 1


def _test_outcome(what: str, result: dict[str, Any]) -> str:
    """The result's meaning in the reader's language, from its code (the detail, from the
    agent's `test.run` ack, is wire text and stays English)."""
    if result.get("ok"):
        return _("passed")
    outcomes = {
        "not_supported": _("no {what} on this device"),
        "no_output": _('no audio output configured ([audio] output = "none")'),
        "output_unavailable": _("the output is not available"),
        "quiet_hours": _("inside quiet hours: test not played"),
        "busy": _("the output stayed busy: test not played"),
        "not_heard": _(
            "the tone was sent but the monitor did not hear it: check the amplifier, "
            "the cable and the horn"
        ),
        "speaker_failed": _("the speaker did not play the tone"),
        "display_failed": _("the board did not show the test pattern"),
        "config": _("the configuration has problems: run `tcs-agent config check`"),
    }
    return outcomes.get(str(result.get("code")), _("failed")).format(what=_thing(what))


def _thing(what: str) -> str:
    return {"speaker": _("speaker"), "display": _("display")}.get(what, what)


def render_test(what: str, via: str, result: dict[str, Any]) -> str:
    mark = "✓" if result.get("ok") else "✗"
    return _("{mark} {what} {via}: {outcome} — {detail}").format(
        mark=mark, what=_thing(what), via=via, outcome=_test_outcome(what, result),
        detail=result.get("detail"))  # fmt: skip


def _display_direct(args: argparse.Namespace) -> int:
    from display.cli import cmd_test_display

    return cmd_test_display(args)


def _speaker_direct(config: Path) -> dict[str, Any]:
    from agent.config import ConfigError, load_config
    from agent.local_tests import speaker_direct

    try:
        cfg = load_config(config, require_device_key=False)
    except ConfigError as e:
        return {"ok": False, "code": "config", "detail": "; ".join(e.problems[:3])}
    return asyncio.run(speaker_direct(cfg))

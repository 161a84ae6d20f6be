"""`tcs-central`: the reference provincial console (argument parsing and wiring only)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from agent import jws
from agent.central.acl import DeviceEntry, load_devices, render_acl
from agent.central.args import build_args, parse_args_json
from agent.central.keygen import DEFAULT_COMMANDS, keygen, render_trust_block
from agent.central.proofs import enrolled_keys
from agent.central.send import SendRequest, prepare, publish
from agent.central.settings import CentralSettings, SettingsError, load_settings
from agent.central.sign import TAMPERS
from agent.central.table import Board
from agent.central.watch import Printer, run_watch

EXIT_USAGE = 2

# flag dest -> settings key it overrides
_OVERRIDES = {
    "broker": "broker.url",
    "username": "broker.username",
    "password_file": "broker.password_file",
    "ca_file": "broker.ca_file",
    "cert_file": "broker.cert_file",
    "tls_key_file": "broker.key_file",
    "keepalive": "broker.keepalive_s",
    "connect_timeout": "broker.connect_timeout_s",
    "kid": "signing.kid",
    "signing_key": "signing.key_file",
    "issuer": "signing.issuer",
    "devices": "devices.file",
}


def _add_common(p: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before and after the subcommand; SUPPRESS on the subparser keeps it
    # from overwriting a value given before the subcommand with its default.
    d: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    g = p.add_argument_group("console settings (override central.toml)")
    g.add_argument("-c", "--config", type=Path, metavar="FILE", **d,
                   help="console config TOML (relative paths resolve against its folder)")
    g.add_argument("--broker", metavar="URL", **d, help="mqtt://host:port or mqtts://host:port")
    g.add_argument("--username", **d)
    g.add_argument("--password-file", metavar="FILE", **d)
    g.add_argument("--ca-file", metavar="FILE", **d)
    g.add_argument("--cert-file", metavar="FILE", **d, help="client certificate (mTLS)")
    g.add_argument("--tls-key-file", metavar="FILE", **d, help="client key (mTLS)")
    g.add_argument("--keepalive", type=int, metavar="S", **d)
    g.add_argument("--connect-timeout", type=float, metavar="S", **d)
    g.add_argument("--kid", **d, help="signing key id")
    g.add_argument("--signing-key", metavar="FILE", **d, help="signing key PEM")
    g.add_argument("--issuer", **d, help="iss claim, e.g. vn-48")
    g.add_argument("--devices", metavar="FILE", **d, help="enrolled devices TOML")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tcs-central", description=__doc__)
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    kg = sub.add_parser("keygen", help="create a trust key pair, print its [[trust]] block")
    kg.add_argument("--kid", required=True)
    kg.add_argument("--out", required=True, type=Path, help="private key file (PEM, 0600)")
    kg.add_argument("--commands", default=DEFAULT_COMMANDS,
                    help=f"comma-separated glob patterns (default {DEFAULT_COMMANDS})")
    kg.add_argument("--max-priority", type=int, default=100)

    sd = sub.add_parser("send", help="sign and publish a command")
    _add_common(sd, top=False)
    target = sd.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", metavar="ID")
    target.add_argument("--group", metavar="GID")
    sd.add_argument("cmd", metavar="CMD", help="e.g. alert.start, volume.set")
    source = sd.add_mutually_exclusive_group()
    source.add_argument("--args", dest="args_json", metavar="JSON")
    source.add_argument("--args-file", type=Path, metavar="FILE")
    sd.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="set an argument (a.b=value; JSON if it parses, else a string)")
    sd.add_argument("--ttl", type=int, default=300, metavar="SECONDS")
    sd.add_argument("--jti")
    sd.add_argument("--retain", action="store_true")
    sd.add_argument("--qos", type=int, choices=(0, 1), default=1)
    sd.add_argument("--wait-ack", type=float, metavar="SECONDS")
    sd.add_argument("--tamper", choices=TAMPERS)
    sd.add_argument("--json", action="store_true", help="JSON lines output")

    wt = sub.add_parser("watch", help="live view of every device")
    _add_common(wt, top=False)
    wt.add_argument("--duration", type=float, metavar="SECONDS")
    wt.add_argument("--json", action="store_true", help="JSON lines output")

    acl = sub.add_parser("acl", help="print the mosquitto ACL for enrolled devices")
    acl.add_argument("devices_file", type=Path, metavar="DEVICES.toml")
    acl.add_argument("--console-user", action="append", metavar="USER",
                     help="console user names (default: central)")
    return parser


def _settings(ns: argparse.Namespace, *, need_signing: bool) -> CentralSettings:
    overrides = {key: getattr(ns, dest, None) for dest, key in _OVERRIDES.items()}
    return load_settings(getattr(ns, "config", None), overrides, need_signing=need_signing)


def _devices(settings: CentralSettings) -> list[DeviceEntry] | None:
    if settings.devices_file is None:
        return None
    return load_devices(settings.devices_file)


def _cmd_keygen(ns: argparse.Namespace) -> int:
    block = keygen(ns.kid, ns.out, ns.commands, ns.max_priority)
    sys.stdout.write(render_trust_block(block, ns.out.resolve()))
    sys.stderr.write(f"fingerprint {block.fingerprint}\n")
    return 0


def _request_args(ns: argparse.Namespace) -> dict[str, Any]:
    base = None
    if ns.args_json is not None:
        base = parse_args_json(ns.args_json, "--args")
    elif ns.args_file is not None:
        try:
            text = ns.args_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"--args-file {ns.args_file}: {exc.strerror}") from None
        base = parse_args_json(text, str(ns.args_file))
    return build_args(base, ns.set)


def _cmd_send(ns: argparse.Namespace) -> int:
    settings = _settings(ns, need_signing=True)
    assert settings.broker is not None and settings.signing is not None
    for warning in settings.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    request = SendRequest(
        target_kind="device" if ns.device else "group",
        target=ns.device or ns.group, cmd=ns.cmd, args=_request_args(ns), ttl_s=ns.ttl,
        jti=ns.jti, retain=ns.retain, qos=ns.qos, wait_ack_s=ns.wait_ack, tamper=ns.tamper,
        json_out=ns.json,
    )
    if request.wait_ack_s is not None and request.wait_ack_s <= 0:
        raise ValueError("--wait-ack must be positive")
    try:
        key = jws.load_private_key(settings.signing.key_file)
    except (OSError, ValueError) as exc:
        raise ValueError(f"signing key {settings.signing.key_file}: {exc}") from None
    prepared = prepare(request, settings.signing, key, _devices(settings), int(time.time()))
    return asyncio.run(publish(settings.broker, request, prepared))


def _cmd_watch(ns: argparse.Namespace) -> int:
    settings = _settings(ns, need_signing=False)
    assert settings.broker is not None
    for warning in settings.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    devices = _devices(settings) or []
    keys, problems = enrolled_keys(devices)
    for problem in problems:
        sys.stderr.write(f"warning: {problem}\n")
    if not devices:
        sys.stderr.write("warning: no devices file; every proof will show as UNKNOWN DEVICE\n")
    board = Board(devices, keys)
    printer = Printer(board, sys.stdout, sys.stderr, tty=sys.stdout.isatty(), json_out=ns.json)
    try:
        return asyncio.run(run_watch(settings.broker, board, printer, duration_s=ns.duration))
    except KeyboardInterrupt:
        return 0


def _cmd_acl(ns: argparse.Namespace) -> int:
    try:
        devices = load_devices(ns.devices_file)
    except OSError as exc:
        raise ValueError(f"{ns.devices_file}: {exc.strerror}") from None
    sys.stdout.write(render_acl(devices, tuple(ns.console_user or ("central",))))
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    handlers = {"keygen": _cmd_keygen, "send": _cmd_send, "watch": _cmd_watch,
                "acl": _cmd_acl}
    try:
        return handlers[ns.command](ns)
    except SettingsError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        return EXIT_USAGE
    except FileExistsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

"""`tcs-agent`: the device-side command line.

Technicians reach devices over SSH with a laptop; every subcommand prints plain
text that reads well in a terminal (in Vietnamese when the locale is Vietnamese,
agent/i18n.py) and exits non-zero on any problem.

Each subcommand group is added by one `register(sub, common)` function, here or in
the module that implements it; a new group is one more line in REGISTRARS.
`common` carries the options every subcommand accepts (`--log-level`), so they work
before and after the subcommand name.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent import __version__
from agent.i18n import _

LOG_LEVELS = ("debug", "info", "warning", "error")
SubParsers = Any  # argparse._SubParsersAction, which typeshed marks private


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _load(path: Path, *, require_device_key: bool = True):  # type: ignore[no-untyped-def]
    from agent.config import ConfigError, load_config

    try:
        return load_config(path, require_device_key=require_device_key)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


# ---- run ---------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        print(_("{file}: refusing to start; fix the problems above").format(file=args.config),
              file=sys.stderr)
        return 2
    from agent import service

    code = asyncio.run(service.run(cfg))
    if code == service.EXIT_RESTART and os.environ.get("INVOCATION_ID"):
        # Under systemd: exit, and systemd starts us again (Restart=always), so the
        # unit's ExecStartPre config check runs on the way back up.
        logging.getLogger(__name__).info("exiting for systemd to restart the agent")
        return code
    if code == service.EXIT_RESTART:
        logging.getLogger(__name__).info("restarting as requested")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "agent", *sys.argv[1:]])
    return code


def register_run(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help=_("run the agent (what systemd starts)"))
    run.add_argument("-c", "--config", type=Path, required=True, metavar="FILE")
    run.set_defaults(func=cmd_run)


# ---- config ------------------------------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    from agent.configcheck import check

    return check(args.file, startup=args.startup)


def register_config(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    from agent import configedit

    config = sub.add_parser("config", parents=[common], help=_("configuration tools"))
    csub = config.add_subparsers(dest="config_command", required=True)
    check = csub.add_parser(
        "check", parents=[common],
        help=_("validate a configuration file; every problem as FILE:section.key: what"),
    )
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument(
        "--startup", action="store_true",
        help=_("only what stops the agent from starting (the unit's ExecStartPre); leaves out "
               "example trust keys, file modes and the sound card"),
    )
    check.set_defaults(func=cmd_config_check)
    configedit.register(csub, common)


# ---- cache (agent/cache/cli.py) ----------------------------------------------------


def register_cache(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    from agent.cache.cli import add_subparsers as add_cache_subparsers

    cache = sub.add_parser("cache", parents=[common],
                           help=_("media cache tools (ls, verify, fetch)"))
    add_cache_subparsers(cache.add_subparsers(dest="cache_command", required=True), common)


def register_clock(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    from agent.floorcli import add_subparsers as add_clock_subparsers

    clock = sub.add_parser("clock", help=_("time floor tools (lower-floor)"), parents=[common])
    add_clock_subparsers(clock.add_subparsers(dest="clock_command", required=True), common)


def _registrars() -> list[Callable[[SubParsers, argparse.ArgumentParser], None]]:
    from agent import audiodevices, identity, logs, tech_cli, update

    return [
        register_run,
        register_config,
        identity.register,  # enroll, id
        register_cache,
        audiodevices.register,  # audio devices
        logs.register,
        update.register,  # update install | confirm | rollback
        tech_cli.register,  # doctor, status, test speaker|display
        register_clock,  # clock lower-floor
    ]


def build_parser() -> argparse.ArgumentParser:
    # In the parent given to every subparser, --log-level defaults to SUPPRESS so a
    # value given before the subcommand is not overwritten by the default after it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS,
        help=_("log detail on stderr (default: info, or $TCS_LOG_LEVEL)"),
    )
    p = argparse.ArgumentParser(
        prog="tcs-agent",
        description=_("tcs-agent: the device agent of a commune's loudspeakers and boards. "
                      "Run `tcs-agent COMMAND --help` for a command's options."),
    )
    p.add_argument("--version", action="version", version=f"tcs-agent {__version__}")
    p.add_argument("--log-level", choices=LOG_LEVELS, default=None,
                   help=_("log detail on stderr (default: info, or $TCS_LOG_LEVEL)"))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _registrars():
        register(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = args.log_level or os.environ.get("TCS_LOG_LEVEL", "info")
    if level not in LOG_LEVELS:
        parser.error(_("$TCS_LOG_LEVEL must be one of {choices}").format(
            choices=", ".join(LOG_LEVELS)))
    _configure_logging(level)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

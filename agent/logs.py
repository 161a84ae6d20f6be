"""`tcs-agent logs`: the agent's journal, without remembering journalctl's flags.

Runs `journalctl -u tcs-agent` with the flags a technician wants: the last lines
(`-n`), following (`-f`), since a time (`--since "1 hour ago"`), without the pager
(output goes to a terminal over SSH or into a file), and only warnings and worse
with `--errors`. journalctl replaces this process (exec), so Ctrl-C and exit codes
are its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Any

from agent.i18n import _

UNIT = "tcs-agent.service"


def journal_argv(args: argparse.Namespace, journalctl: str) -> list[str]:
    argv = [journalctl, "-u", UNIT, "--no-pager", "-o", "short-iso", "-n", str(args.lines)]
    if args.follow:
        argv.append("-f")
    if args.since:
        argv += ["--since", args.since]
    if args.errors:
        argv += ["-p", "warning"]
    return argv


def cmd_logs(args: argparse.Namespace) -> int:
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        print(_("error: journalctl is not installed here, so the agent's journal cannot be "
                "read; on a device with systemd it is part of the system (package systemd)"),
              file=sys.stderr)
        return 1
    argv = journal_argv(args, journalctl)
    sys.stdout.flush()
    os.execv(journalctl, argv)
    return 1  # not reached


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    logs = sub.add_parser("logs", parents=[common], help=_("show the agent's journal"))
    logs.add_argument("-n", "--lines", type=int, default=200, metavar="N",
                      help=_("how many recent lines (default 200)"))
    logs.add_argument("-f", "--follow", action="store_true", help=_("keep printing new lines"))
    logs.add_argument("--since", metavar="TIME", help=_('e.g. "1 hour ago", "today"'))
    logs.add_argument("--errors", action="store_true", help=_("warnings and errors only"))
    logs.set_defaults(func=cmd_logs)

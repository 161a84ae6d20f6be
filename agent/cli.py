"""`tcs-agent`: the device-side command line (run, config check, enroll, cache …).

Technicians reach devices over SSH with a laptop; every subcommand prints plain
text that reads well in a terminal and exits non-zero on any problem.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from agent import __version__


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


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        print(f"{args.config}: refusing to start; fix the problems above", file=sys.stderr)
        return 2
    from agent import service

    code = asyncio.run(service.run(cfg))
    if code == service.EXIT_RESTART:
        logging.getLogger(__name__).info("restarting as requested")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "agent", *sys.argv[1:]])
    return code


def cmd_config_check(args: argparse.Namespace) -> int:
    from agent.config import check_main

    return check_main(args.file)


def cmd_enroll(args: argparse.Namespace) -> int:
    from agent import jws

    cfg = _load(args.config, require_device_key=False)
    if cfg is None:
        return 2
    path = cfg.device.key_file
    if path.exists():
        key = jws.load_private_key(path)
        created = False
    else:
        key = jws.create_private_key(path)
        created = True
    raw = jws.public_raw(key)
    print(f"device: {cfg.device.id}")
    print(f"key_file: {path} ({'created' if created else 'existing'})")
    print(f"public_key: {jws.b64url_encode(raw)}")
    print(f"fingerprint: {jws.fingerprint(raw)}")
    print()
    print("# for the province's devices.toml:")
    print("[[device]]")
    print(f'id = "{cfg.device.id}"')
    print("groups = [" + ", ".join(f'"{g}"' for g in cfg.device.groups) + "]")
    print(f'public_key = "{jws.b64url_encode(raw)}"')
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tcs-agent", description=__doc__)
    p.add_argument("--version", action="version", version=f"tcs-agent {__version__}")
    p.add_argument("--log-level", default=os.environ.get("TCS_LOG_LEVEL", "info"))
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent")
    run.add_argument("-c", "--config", type=Path, required=True)
    run.set_defaults(func=cmd_run)

    config = sub.add_parser("config", help="configuration tools")
    csub = config.add_subparsers(dest="config_command", required=True)
    check = csub.add_parser("check", help="validate a configuration file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_config_check)

    enroll = sub.add_parser("enroll", help="create the device key if missing; print its public key")
    enroll.add_argument("-c", "--config", type=Path, required=True)
    enroll.set_defaults(func=cmd_enroll)

    from agent.cache.cli import add_subparsers as add_cache_subparsers

    cache = sub.add_parser("cache", help="media cache tools (ls, verify, fetch)")
    add_cache_subparsers(cache.add_subparsers(dest="cache_command", required=True))

    from agent.floorcli import add_subparsers as add_clock_subparsers

    clock = sub.add_parser("clock", help="time floor tools (lower-floor)")
    add_clock_subparsers(clock.add_subparsers(dest="clock_command", required=True))
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.log_level)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

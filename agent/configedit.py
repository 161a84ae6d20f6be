"""`tcs-agent config get|set KEY [VALUE]`: read or change one setting safely.

A technician on a pole edits one value, often over a bad link: the file is edited
with tomlkit (comments, order and layout kept), the result is validated by the
same loader the agent uses before anything is written, and it replaces the old
file atomically with the old file's mode, owner and group kept (agent.fsutil).
KEY is `section.key` (`audio.output`), `section.table.key` for a nested table
(`display.relay.port`), or `trust[N].key` for one trust key.
VALUE is read as TOML when it is a TOML value (`60`, `true`, `["vn-48", "vn-48-490"]`,
`"text"`), else taken as a plain string (`Asia/Ho_Chi_Minh`).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError

from agent.config import ConfigError, known_keys, parse_config
from agent.fsutil import atomic_write
from agent.i18n import _

DEFAULT_CONFIG = Path("/etc/tcs-agent/agent.toml")
_KEY = re.compile(r"^([a-z_]+(?:\.[a-z_]+)?)(?:\[(\d{1,3})\])?\.([a-z_]+)$")


class EditError(Exception):
    pass


def _split(key: str) -> tuple[str, int | None, str]:
    m = _KEY.match(key)
    if m is None or (m.group(2) is not None and "." in m.group(1)):  # no display.relay[0]
        raise EditError(_("{key!r} is not section.key (e.g. audio.output) or trust[N].key").format(
            key=key))
    index = int(m.group(2)) if m.group(2) is not None else None
    return m.group(1), index, m.group(3)


def _read(path: Path) -> tomlkit.TOMLDocument:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise EditError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise EditError(_("{path}: not UTF-8 text").format(path=path)) from None
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        raise EditError(_("{path}: invalid TOML: {reason}").format(path=path, reason=exc)) from None


def _table(doc: tomlkit.TOMLDocument, section: str, index: int | None, *, create: bool) -> Any:
    where = section if index is None else f"{section}[{index}]"
    table: Any = doc
    for name in section.split("."):  # "display.relay": [display], then its [display.relay]
        if name not in table:
            if not create or index is not None:
                raise EditError(_("no [{where}] in the file").format(where=where))
            table.add(name, tomlkit.table())
        table = table[name]
        if index is None and not isinstance(table, dict):
            raise EditError(_("[{where}] is not a table").format(where=where))
    if index is not None:
        if not isinstance(table, list) or not 0 <= index < len(table):
            raise EditError(_("no [{where}] in the file").format(where=where))
        table = table[index]
    if not isinstance(table, dict):
        raise EditError(_("[{where}] is not a table").format(where=where))
    return table


def _check_known(section: str, name: str) -> None:
    keys = known_keys()
    if section not in keys:
        close = difflib.get_close_matches(section, list(keys), n=1, cutoff=0.6)
        hint = _(" (did you mean {name!r}?)").format(name=close[0]) if close else ""
        raise EditError(_("unknown section [{section}]{hint}").format(section=section, hint=hint))
    if name not in keys[section]:
        close = difflib.get_close_matches(name, keys[section], n=1, cutoff=0.6)
        hint = _(" (did you mean {name!r}?)").format(name=close[0]) if close else ""
        raise EditError(_("unknown key {section}.{name}{hint}").format(
            section=section, name=name, hint=hint))


def get_value(path: Path, key: str) -> str:
    section, index, name = _split(key)
    _check_known(section, name)
    table = _table(_read(path), section, index, create=False)
    if name not in table:
        raise EditError(_("{key} is not set in {path} (the default applies)").format(
            key=key, path=path))
    value = table[name]
    return value if isinstance(value, str) else tomlkit.dumps({"v": value})[4:].strip()


def _parse_value(text: str) -> Any:
    try:
        return tomlkit.parse(f"v = {text}")["v"]
    except (ParseError, TOMLKitError):
        return text


def set_value(path: Path, key: str, text: str) -> None:
    """Set `key` to `text` in the file at `path`, if the result is a valid configuration."""
    section, index, name = _split(key)
    doc = _read(path)
    table = _table(doc, section, index, create=True)
    table[name] = _parse_value(text)
    new = tomlkit.dumps(doc)
    # The real loader, as `run` would read the file: nothing invalid is ever written.
    parse_config(new, path)
    st = path.stat()
    atomic_write(path, new.encode("utf-8"), mode=0o600)
    os.chmod(path, st.st_mode & 0o7777)
    if os.geteuid() == 0:
        os.chown(path, st.st_uid, st.st_gid)


def cmd_get(args: argparse.Namespace) -> int:
    try:
        print(get_value(args.config, args.key))
    except EditError as exc:
        print(_("error: {reason}").format(reason=exc), file=sys.stderr)
        return 1
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    try:
        set_value(args.config, args.key, args.value)
    except EditError as exc:
        print(_("error: {reason}").format(reason=exc), file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(_("not changed: the result would not be a valid configuration:"), file=sys.stderr)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except OSError as exc:
        print(_("error: cannot write {path}: {reason}").format(
            path=args.config, reason=exc.strerror or exc), file=sys.stderr)
        return 1
    print(_("{key} = {value} (saved in {path})").format(
        key=args.key, value=get_value(args.config, args.key), path=args.config))
    return 0


def register(csub: Any, common: argparse.ArgumentParser) -> None:
    """Add `get` and `set` to the `tcs-agent config` subcommands."""
    get = csub.add_parser("get", parents=[common], help=_("print one setting"))
    get.add_argument("key", metavar="KEY", help=_("section.key, e.g. audio.output"))
    set_ = csub.add_parser("set", parents=[common],
                           help=_("change one setting (validated, comments kept)"))
    set_.add_argument("key", metavar="KEY", help=_("section.key, e.g. audio.output"))
    set_.add_argument("value", metavar="VALUE", help=_("a TOML value, or plain text"))
    for p, func in ((get, cmd_get), (set_, cmd_set)):
        p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                       help=_("the agent's configuration (default {path})").format(
                           path=DEFAULT_CONFIG))
        p.set_defaults(func=func)

"""Releases side by side, as scripts/install.sh lays them out: install, switch, confirm,
roll back (groundwork for PROTOCOL §4 `agent.update`).

    /opt/tcs-agent/releases/VERSION/venv    one venv per release; `.complete` marks a finished one
    /opt/tcs-agent/current -> releases/VERSION
    /opt/tcs-agent/update-pending.json      {"version", "previous", "jti"} until confirmed
    /opt/tcs-agent/update-rolled-back.json  that record, after update-guard switched back

A release bundle is a tar of wheels (scripts/build-bundle.sh --tar), one of them
`tcs_agent-VERSION-*.whl`. Installing never touches the running release; switching is
one rename of a symlink; the switch stays *pending* until the new release confirms it
is healthy (`confirm`), and `rollback` puts the previous release back. The version
rule is the protocol's: never the running version again, never lower unless
`allow_downgrade`.

The command `agent.update` drives these steps from agent/updater.py (waiting for
emergencies, the bundle through the media cache, the health check that calls
`confirm`); `tcs-agent update` exposes the same steps to a technician.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from agent.fsutil import atomic_write
from agent.i18n import M, Msg, _

DEFAULT_PREFIX = Path("/opt/tcs-agent")
_WHEEL = re.compile(r"^tcs_agent-([^-]+)-.+\.whl$")
MAX_BUNDLE_MEMBERS = 500

Runner = Callable[..., subprocess.CompletedProcess[str]]


class UpdateRefused(Exception):
    """The update cannot be done; the message says why: `str()` in English for an ack's
    detail, `msg.local()` translated for a person at a terminal."""

    def __init__(self, msg: Msg) -> None:
        super().__init__(msg.en())
        self.msg = msg


@dataclass(frozen=True)
class Layout:
    prefix: Path = DEFAULT_PREFIX

    @property
    def releases(self) -> Path:
        return self.prefix / "releases"

    @property
    def current(self) -> Path:
        return self.prefix / "current"

    @property
    def pending(self) -> Path:
        return self.prefix / "update-pending.json"

    @property
    def rolled_back(self) -> Path:
        """The pending record, moved here by scripts/update-guard.sh when it switched
        back from a release that did not start."""
        return self.prefix / "update-rolled-back.json"

    def release(self, version: str) -> Path:
        return self.releases / version

    def current_version(self) -> str | None:
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        return Path(target).name

    def installed(self) -> list[str]:
        if not self.releases.is_dir():
            return []
        return sorted(
            (p.name for p in self.releases.iterdir() if (p / ".complete").exists()), key=Version
        )


def parse_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise UpdateRefused(M("{text!r} is not a PEP 440 version", text=text)) from None


def check_version(new: str, running: str | None, *, allow_downgrade: bool = False) -> None:
    """PROTOCOL §4: never the running version again, never below it unless allowed."""
    wanted = parse_version(new)
    if running is None:
        return
    have = parse_version(running)
    if wanted == have:
        raise UpdateRefused(M("version {new} is already running", new=new))
    if wanted < have and not allow_downgrade:
        raise UpdateRefused(M("version {new} is below the running {running} "
                              "(allow_downgrade is false)", new=new, running=running))


def unpack_bundle(archive: Path, dest: Path) -> str:
    """Extract the wheels of `archive` into `dest`; return the tcs-agent version it holds.

    Only regular `*.whl` files at the top level are taken (no links, no paths), so a
    bundle cannot write outside `dest`.
    """
    try:
        with tarfile.open(archive) as tar:
            return _unpack(tar, archive, dest)
    except tarfile.TarError as exc:
        why = M("{archive}: not a readable tar bundle: {error}", archive=archive, error=exc)
        raise UpdateRefused(why) from None


def _unpack(tar: tarfile.TarFile, archive: Path, dest: Path) -> str:
    versions: list[str] = []
    members = tar.getmembers()
    if len(members) > MAX_BUNDLE_MEMBERS:
        raise UpdateRefused(M("{archive}: more than {n} files", archive=archive,
                              n=MAX_BUNDLE_MEMBERS))
    for m in members:
        name = m.name.removeprefix("./")
        if m.isdir() and name in ("", "."):
            continue
        if not m.isfile() or "/" in name or not name.endswith(".whl") or name.startswith("."):
            raise UpdateRefused(M("{archive}: unexpected member {name!r} (only wheels)",
                                  archive=archive, name=m.name))
        match = _WHEEL.match(name)
        if match:
            versions.append(match.group(1))
        src = tar.extractfile(m)
        assert src is not None  # a regular file
        with src, (dest / name).open("wb") as out:
            shutil.copyfileobj(src, out)
    if len(versions) != 1:
        raise UpdateRefused(M("{archive}: holds {n} tcs_agent wheels, not one",
                              archive=archive, n=len(versions)))
    return versions[0]


def install_release(layout: Layout, version: str, wheels: Path, *, python: str = "python3",
                    run: Runner = subprocess.run) -> Path:
    """releases/VERSION with its own venv from the wheels in `wheels` (offline). Idempotent."""
    release = layout.release(version)
    if (release / ".complete").exists():
        return release
    if release.exists():
        shutil.rmtree(release)  # an install that died half-way: never used, redone
    layout.releases.mkdir(parents=True, exist_ok=True)
    steps = [
        [python, "-m", "venv", str(release / "venv")],
        [str(release / "venv" / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", "--no-index", "--find-links", str(wheels),
         f"tcs-agent=={version}"],
    ]
    for argv in steps:
        out = run(argv, capture_output=True, text=True, check=False,
                  env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
        if out.returncode != 0:
            shutil.rmtree(release, ignore_errors=True)
            raise UpdateRefused(M("installing {version} failed: {error}", version=version,
                                  error=out.stderr.strip()[-500:]))
    (release / ".complete").touch()
    return release


def _point_current(layout: Layout, version: str) -> None:
    tmp = layout.prefix / "current.new"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("releases") / version)
    os.replace(tmp, layout.current)


def switch(layout: Layout, version: str, note: dict[str, str] | None = None) -> str | None:
    """Point `current` at an installed release, pending confirmation; returns the previous.

    `note` is kept in the pending record (the `jti` of the `agent.update` that asked, so
    the new release can send its `done`). The record is written before the symlink
    moves: a power cut between the two leaves a pending record naming a release that
    is not current, which the next start clears (agent/updater.py)."""
    if not (layout.release(version) / ".complete").exists():
        raise UpdateRefused(M("release {version} is not installed", version=version))
    previous = layout.current_version()
    record = {**(note or {}), "version": version, "previous": previous}
    atomic_write(layout.pending, json.dumps(record).encode(), mode=0o644)
    _point_current(layout, version)
    return previous


def pending(layout: Layout, path: Path | None = None) -> dict[str, Any] | None:
    try:
        data = json.loads((path or layout.pending).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def confirm(layout: Layout) -> str | None:
    """The running release proved healthy: keep it. Returns the version confirmed."""
    record = pending(layout)
    layout.pending.unlink(missing_ok=True)
    return str(record["version"]) if record else None


def rollback(layout: Layout) -> str:
    """Put back the release that ran before the pending switch; returns its version."""
    record = pending(layout)
    if record is None or not record.get("previous"):
        raise UpdateRefused(M("no pending update to roll back"))
    previous = str(record["previous"])
    if not (layout.release(previous) / ".complete").exists():
        raise UpdateRefused(M("the previous release {previous} is no longer installed",
                                previous=previous))
    _point_current(layout, previous)
    layout.pending.unlink(missing_ok=True)
    return previous


def update_from_bundle(layout: Layout, archive: Path, *, expected: str | None = None,
                       allow_downgrade: bool = False, python: str = "python3",
                       run: Runner = subprocess.run, note: dict[str, str] | None = None) -> str:
    """Unpack, check the version rule, install beside the running one, switch (pending)."""
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=_staging_parent(layout)) as tmp:
        version = unpack_bundle(archive, Path(tmp))
        if expected is not None and parse_version(expected) != parse_version(version):
            raise UpdateRefused(M("the bundle holds {version}, not {expected}",
                                  version=version, expected=expected))
        check_version(version, layout.current_version(), allow_downgrade=allow_downgrade)
        install_release(layout, version, Path(tmp), python=python, run=run)
    switch(layout, version, note)
    return version


def running_release(layout: Layout, prefix: Path) -> str | None:
    """The release whose venv is `prefix` (sys.prefix), or None when the agent does not
    run from `layout` (a development checkout, a Debian package)."""
    try:
        rel = prefix.resolve().relative_to(layout.releases.resolve())
    except (OSError, ValueError):
        return None
    parts = rel.parts
    return parts[0] if len(parts) == 2 and parts[1] == "venv" else None


def _staging_parent(layout: Layout) -> Path:
    layout.releases.mkdir(parents=True, exist_ok=True)
    return layout.releases


# ---- tcs-agent update --------------------------------------------------------------


def _cmd(func: Callable[[argparse.Namespace, Layout], str]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            print(func(args, Layout(args.prefix)))
        except UpdateRefused as exc:
            print(_("update refused: {reason}").format(reason=exc.msg.local()), file=sys.stderr)
            return 1
        except OSError as exc:
            print(_("error: {reason}").format(reason=f"{exc.filename or ''} {exc.strerror}"),
                  file=sys.stderr)
            return 1
        return 0

    return run


def _install(args: argparse.Namespace, layout: Layout) -> str:
    version = update_from_bundle(layout, args.bundle, allow_downgrade=args.allow_downgrade)
    return _("switched to {version} (pending: restart the agent, then "
             "`tcs-agent update confirm` or `rollback`)").format(version=version)


def _confirm(args: argparse.Namespace, layout: Layout) -> str:
    version = confirm(layout)
    return (_("kept {version}").format(version=version) if version
            else _("nothing pending; running {version}").format(version=layout.current_version()))


def _rollback(args: argparse.Namespace, layout: Layout) -> str:
    return _("back on {version}; restart the agent").format(version=rollback(layout))


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    update = sub.add_parser("update", parents=[common],
                            help=_("install a release bundle beside the running one"))
    usub = update.add_subparsers(dest="update_command", required=True)
    for name, func, text in (
        ("install", _install, _("install a bundle (tar of wheels) and switch to it")),
        ("confirm", _confirm, _("keep the release switched to")),
        ("rollback", _rollback, _("go back to the previous release")),
    ):
        p = usub.add_parser(name, parents=[common], help=text)
        p.add_argument("--prefix", type=Path, default=DEFAULT_PREFIX, help=argparse.SUPPRESS)
        if name == "install":
            p.add_argument("bundle", type=Path, metavar="BUNDLE.tar")
            p.add_argument("--allow-downgrade", action="store_true")
        p.set_defaults(func=_cmd(func))

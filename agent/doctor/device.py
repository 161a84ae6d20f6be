"""Checks of the device itself: config, device key, trust keys, clock, disk, storage."""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from agent import jws
from agent.config import ConfigError, load_config
from agent.doctor.model import Check, Environment, LooseConfig, M

DISK_MIN_MB = 50
_OWNED = {
    "device.key_file": "device_key",
    "storage.dir": "storage",
    "broker.ca_file": "broker_tls",
    "broker.cert_file": "broker_tls",
    "broker.key_file": "broker_tls",
    "broker.password_file": "broker_auth",
    "display.path": "display",
}
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "agent.example.toml"


def check_config(path: Path) -> tuple[Check, Any]:
    try:
        cfg = load_config(path, require_device_key=False)
    except ConfigError as e:
        mine = [p for p in e.problems if not _owned(p, path)]
        if not mine:
            detail = M("{file}: valid apart from what the checks below report", file=path)
            return Check("config", True, detail), None
        shown = "; ".join(p.removeprefix(f"{path}:") for p in mine[:3])
        more = len(mine) - 3
        return (
            Check(
                "config",
                False,
                M("{count} problem(s): {shown}", count=len(mine), shown=shown)
                if more <= 0
                else M("{count} problem(s): {shown} …", count=len(mine), shown=shown),
                M("run `tcs-agent config check {file}` and fix each line it prints", file=path),
            ),
            None,
        )
    return Check("config", True, M("{file} is valid", file=path)), cfg


def _owned(problem: str, path: Path) -> bool:
    rest = problem.removeprefix(f"{path}:")
    key = rest.split(":", 1)[0].strip()
    return key in _OWNED or key.startswith("trust")


def check_device_key(loose: LooseConfig) -> Check:
    path = loose.file("device", "key_file")
    enroll = M("run `tcs-agent enroll -c {cfg}` to create it", cfg=loose.path)
    if path is None:
        return Check("device_key", False, M("[device] key_file is not set"), enroll)
    if not path.exists():
        return Check("device_key", False, M("device key {path} does not exist", path=path), enroll)
    try:
        key = jws.load_private_key(path)
    except PermissionError:
        return Check(
            "device_key",
            False,
            M("device key {path} cannot be read by this user", path=path),
            M("run as the agent's user (sudo -u tcs-agent …) or as root"),
        )
    except (OSError, ValueError, TypeError) as e:
        return Check(
            "device_key",
            False,
            M("device key {path} is not an Ed25519 private key ({error})", path=path, error=e),
            M(
                "move the file away and run `tcs-agent enroll -c {cfg}`; "
                "the province must then register the new public key",
                cfg=loose.path,
            ),
        )
    mode = path.stat().st_mode
    fp = jws.fingerprint(jws.public_raw(key))
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check(
            "device_key",
            False,
            M(
                "device key {path} is readable by others (mode {mode:o})",
                path=path,
                mode=stat.S_IMODE(mode),
            ),
            M("chmod 600 {path}", path=path),
        )
    return Check("device_key", True, M("device key {path} (fingerprint {fp})", path=path, fp=fp))


def _example_keys() -> set[str]:
    try:
        doc = tomllib.loads(EXAMPLE_CONFIG.read_text())
    except (OSError, ValueError):
        return set()
    trust = doc.get("trust")
    return (
        {str(e.get("public_key")) for e in trust if isinstance(e, dict)}
        if isinstance(trust, list)
        else set()
    )


def check_trust_keys(loose: LooseConfig) -> Check:
    entries = loose.trust()
    fix = M("put the province's trust keys ([[trust]] kid, public_key) in the config")
    if not entries:
        return Check("trust_keys", False, M("no [[trust]] keys: no command can be accepted"), fix)
    examples = _example_keys()
    for i, e in enumerate(entries):
        kid = e.get("kid", f"trust[{i}]")
        key = e.get("public_key")
        if not isinstance(key, str):
            return Check("trust_keys", False, M("{kid}: public_key missing", kid=kid), fix)
        if key in examples:
            return Check(
                "trust_keys",
                False,
                M("{kid} is the example's throw-away key", kid=kid),
                M("replace it with the province's real public key for {kid}", kid=kid),
            )
        try:
            jws.decode_public_key(key)
        except ValueError as err:
            return Check(
                "trust_keys", False, M("{kid}: public_key {error}", kid=kid, error=err), fix
            )
    return Check(
        "trust_keys",
        True,
        M(
            "{n} trust key(s): {kids}",
            n=len(entries),
            kids=", ".join(str(e.get("kid")) for e in entries),
        ),
    )


def check_clock(
    env: Environment, loose: LooseConfig, agent: dict[str, Any] | None
) -> tuple[Check, bool]:
    modem_time = bool(loose.get("modem", "usb_id", "")) and loose.get(
        "modem", "network_time", True, bool
    )
    rtc_fitted = (env.sys_root / "class/rtc/rtc0").exists()
    backup = M(
        "without NTP the clock has no other source: fit an RTC module or set [modem] usb_id "
        "so a power cut without data link does not hold the schedule"
    )
    source = None
    if agent is not None and isinstance(agent.get("clock"), dict):
        if agent["clock"].get("synced") is True:
            source = str(agent["clock"].get("source"))
    elif env.kernel_synced():
        source = "ntp"
    elif env.rtc_set_clock():
        source = "rtc"
    if source is None:
        return (
            Check(
                "clock",
                False,
                M(
                    "the clock is not synchronised (no NTP, RTC or network time): scheduled "
                    "programmes are held"
                ),
                M(
                    "check NTP (`timedatectl timesync-status`) and the network; fit an RTC "
                    "module or a modem for time without NTP"
                ),
            ),
            False,
        )
    warn = backup if source == "ntp" and not (rtc_fitted or modem_time) else None
    return Check("clock", True, M("synchronised ({source})", source=source), warn), True


def check_disk(folder: Path) -> Check:
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError as e:
        return Check(
            "disk",
            False,
            M("cannot read free space of {path}: {error}", path=probe, error=e.strerror),
            M("check the storage folder in [storage] dir"),
        )
    free = st.f_bavail * st.f_frsize // (1024 * 1024)
    total = st.f_blocks * st.f_frsize // (1024 * 1024)
    if free < DISK_MIN_MB:
        return Check(
            "disk",
            False,
            M("only {free} MB free of {total} MB on {path}", free=free, total=total, path=probe),
            M(
                "free space: lower [storage] cache_quota_mb, remove old files or logs "
                "(`journalctl --vacuum-size=50M`)"
            ),
        )
    return Check("disk", True, M("{free} MB free of {total} MB", free=free, total=total))


def check_storage(folder: Path | None) -> Check:
    if folder is None:
        return Check(
            "storage",
            False,
            M("[storage] dir is not set"),
            M('set [storage] dir = "/var/lib/tcs-agent"'),
        )
    # The agent creates a missing folder at start: then its nearest parent must be writable.
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return Check(
            "storage",
            False,
            M(
                "storage folder {path} cannot be created: {probe} is not a folder",
                path=folder,
                probe=probe,
            ),
            M("correct [storage] dir"),
        )
    try:
        fd, name = tempfile.mkstemp(prefix=".doctor-", dir=probe)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as e:
        if e.errno == 30:  # EROFS
            return Check(
                "storage",
                False,
                M("storage folder {path} is on a read-only filesystem", path=folder),
                M(
                    "the SD card is probably failing (the kernel remounted it read-only): "
                    "check `dmesg`, back up and replace the card"
                ),
            )
        return Check(
            "storage",
            False,
            M("cannot write in {path}: {error}", path=folder, error=e.strerror or e),
            M("give the agent's user the folder: chown -R tcs-agent: {path}", path=folder),
        )
    if probe != folder:
        return Check("storage", True, M("{path} will be created at start", path=folder))
    return Check("storage", True, M("{path} is writable", path=folder))

"""`tcs-agent enroll` and `tcs-agent id`: the device's own Ed25519 key, for technicians.

Both read only the `[device]` section (agent.config.load_device): the key comes
before the broker credentials (with mTLS the province issues the certificate for
it afterwards), so nothing else in the file needs to be ready. Every failure is a
sentence naming the file, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.config import ConfigError, DeviceConfig, load_config, load_device
from agent.i18n import _


def _device(config: Path) -> DeviceConfig | None:
    try:
        return load_device(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _read_key(path: Path) -> Ed25519PrivateKey | str:
    """The key at `path`, or the reason it cannot be used."""
    try:
        return jws.load_private_key(path)
    except FileNotFoundError:
        return _("{path} does not exist").format(path=path)
    except PermissionError:
        return _("{path} is not readable (permission denied)").format(path=path)
    except IsADirectoryError:
        return _("{path} is a directory, not a key file").format(path=path)
    except (ValueError, TypeError):
        return _("{path} is not an Ed25519 private key (PEM PKCS#8)").format(path=path)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"


def _print_identity(device: DeviceConfig, key: Ed25519PrivateKey, status: str) -> None:
    raw = jws.public_raw(key)
    print(_("device: {id}").format(id=device.id))
    print(_("key_file: {path} ({status})").format(path=device.key_file, status=status))
    print(f"public_key: {jws.b64url_encode(raw)}")
    print(_("fingerprint: {fp}").format(fp=jws.fingerprint(raw)))


def cmd_enroll(args: argparse.Namespace) -> int:
    device = _device(args.config)
    if device is None:
        return 2
    path = device.key_file
    if path.exists():
        found = _read_key(path)
        if isinstance(found, str):
            print(_("error: {reason}; move it away to make a new key").format(reason=found),
                  file=sys.stderr)
            return 1
        key, status = found, _("existing")
    else:
        try:
            key = jws.create_private_key(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            where = exc.filename or path
            print(_("error: cannot create the device key {path}: {where}: {reason}").format(
                path=path, where=where, reason=reason), file=sys.stderr)
            return 1
        status = _("created")
    _print_identity(device, key, status)
    raw = jws.public_raw(key)
    print()
    print(_("# for the province's devices.toml:"))
    print("[[device]]")
    print(f'id = "{device.id}"')
    print("groups = [" + ", ".join(f'"{g}"' for g in device.groups) + "]")
    print(f'public_key = "{jws.b64url_encode(raw)}"')
    # The key is made; say (without failing) what still stands between it and a run.
    try:
        load_config(args.config)
    except ConfigError as exc:
        print(_("note: {n} problem(s) remain before the agent can run; see "
                "`tcs-agent config check {file}`").format(n=len(exc.problems), file=args.config),
              file=sys.stderr)
    return 0


def cmd_id(args: argparse.Namespace) -> int:
    device = _device(args.config)
    if device is None:
        return 2
    found = _read_key(device.key_file)
    if isinstance(found, str):
        print(_("error: {reason}; run `tcs-agent enroll -c {file}` to create it").format(
            reason=found, file=args.config), file=sys.stderr)
        return 1
    _print_identity(device, found, _("existing"))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    enroll = sub.add_parser("enroll", parents=[common],
                            help=_("create the device key if missing; print its public key"))
    enroll.add_argument("-c", "--config", type=Path, required=True, metavar="FILE")
    enroll.set_defaults(func=cmd_enroll)
    ident = sub.add_parser("id", parents=[common],
                           help=_("print the device's public key and fingerprint"))
    ident.add_argument("-c", "--config", type=Path, required=True, metavar="FILE")
    ident.set_defaults(func=cmd_id)

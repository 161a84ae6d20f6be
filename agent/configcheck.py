"""`tcs-agent config check FILE`: the technician's check of a configuration.

It prints every problem `run` would refuse (agent.config), and also what only a
person can fix and what must not stop a running agent:

- the example's throw-away trust keys still in place (the device would obey no one
  real, and whoever kept the example's private half would be trusted);
- a device key, broker client key or broker password file that group or others may
  read: keys are for the agent's user alone (mode 0600, owned by tcs-agent);
- an audio output name that no current device has (the nearest is named).

`run` (and `config check --startup`, the unit's ExecStartPre) leaves these out on
purpose: a sound card unplugged at boot or a loose file mode must not keep the
agent, its heartbeat and its emergencies from starting. On `ok` the local time is
printed with its UTC offset, so a wrong zone shows at a glance.
"""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from agent import tzhint
from agent.config import Config, ConfigError, format_problems, load_config
from agent.i18n import _

# The public keys in config/agent.example.toml, whose private halves were thrown
# away (tests/cli pins this list against the file, so the two cannot drift).
EXAMPLE_TRUST_KEYS: Final = frozenset(
    {
        "1ap0N1X2bd8IisHOURxwXoSCMpfCHFZqiSYwwguOYMw",
        "aCn05t4OyEGvpMwjFsVMz4zaQyn3yjaq9ZOpAC0efAc",
    }
)


def example_key_problems(config: Config) -> list[str]:
    from agent.jws import b64url_encode

    out = []
    for i, key in enumerate(config.trust):
        if b64url_encode(key.public_key) in EXAMPLE_TRUST_KEYS:
            out.append(_("{file}:trust[{i}].public_key: is the example's throw-away key "
                         "({kid}); put your province's key here").format(
                file=config.source, i=i, kid=key.kid))
    return out


def mode_problems(config: Config) -> list[str]:
    """Secret files readable by group or others (st_mode & 0o077)."""
    secrets = [
        ("device.key_file", config.device.key_file),
        ("broker.key_file", config.broker.key_file),
        ("broker.password_file", config.broker.password_file),
    ]
    out = []
    for where, path in secrets:
        if path is None:
            continue
        try:
            mode = path.stat().st_mode
        except OSError:
            continue  # load_config already said why it cannot be read
        if mode & 0o077:
            out.append(_("{file}:{where}: {path} is readable by group or others (mode {mode:04o});"
                         " run: chmod 600 {path}; chown tcs-agent {path}").format(
                file=config.source, where=where, path=path, mode=stat.S_IMODE(mode)))
    return out


def audio_problems(config: Config) -> list[str]:
    from agent import audiodevices

    problem = audiodevices.output_problem(config.audio.output)
    return [f"{config.source}:audio.output: {problem}"] if problem else []


def summary(config: Config) -> list[str]:
    n = len(config.trust)
    zone = config.device.timezone_name
    now = datetime.now(UTC).astimezone(config.device.timezone)
    offset = now.utcoffset()
    return [
        _("{file}: ok").format(file=config.source),
        _("device {id}, broker {url}, {n} trust key(s)").format(
            id=config.device.id, url=config.broker.url, n=n),
        _("time zone {zone} ({offset}), local time now {now}").format(
            zone=zone, offset=tzhint.offset_text(offset) if offset is not None else "?",
            now=now.strftime("%Y-%m-%d %H:%M")),
    ]


def check(path: Path, *, startup: bool = False) -> int:
    """Print every problem (exit 1) or `ok` with a summary (exit 0)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(format_problems(exc.problems))
        return 1
    problems = [] if startup else [
        *example_key_problems(config), *mode_problems(config), *audio_problems(config)
    ]
    if problems:
        print(format_problems(problems))
        return 1
    print("\n".join(summary(config)))
    return 0


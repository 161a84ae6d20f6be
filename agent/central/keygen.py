"""`tcs-central keygen`: a new trust key pair and the `[[trust]]` block for devices."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

from agent import jws
from agent.central.sign import KNOWN_COMMANDS

DEFAULT_COMMANDS = "alert.*,live.*,schedule.set,volume.set,status.request"


@dataclass(frozen=True)
class TrustBlock:
    kid: str
    public_key: str  # base64url of the raw 32 bytes
    commands: tuple[str, ...]
    max_priority: int
    fingerprint: str


def parse_commands(text: str) -> tuple[str, ...]:
    """Comma-separated glob patterns; each must match at least one known command.

    A pattern matching nothing is almost always a typo (`alerts.*`), and would give
    a key that silently can do less than its owner believes.
    """
    patterns = tuple(p.strip() for p in text.split(",") if p.strip())
    if not patterns:
        raise ValueError("--commands lists no command pattern")
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(cmd, pattern) for cmd in KNOWN_COMMANDS):
            raise ValueError(
                f"--commands: {pattern!r} matches no command ({', '.join(KNOWN_COMMANDS)})"
            )
    return patterns


def render_trust_block(block: TrustBlock, key_file: Path) -> str:
    """TOML to paste into device configs; comments carry what a human checks."""
    lines = [
        f"# trust key {block.kid}  fingerprint {block.fingerprint}",
        f"# private key: {key_file} (keep it offline; it signs commands for every device)",
        "[[trust]]",
        # JSON string escapes are valid TOML basic-string escapes.
        f"kid = {json.dumps(block.kid, ensure_ascii=False)}",
        f"public_key = {json.dumps(block.public_key)}",
        "commands = [" + ", ".join(json.dumps(c) for c in block.commands) + "]",
        f"max_priority = {block.max_priority}",
    ]
    return "\n".join(lines) + "\n"


def keygen(kid: str, out: Path, commands: str = DEFAULT_COMMANDS,
           max_priority: int = 100) -> TrustBlock:
    """Create the private key at `out` (0600, never overwriting) and describe it.

    Raises ValueError for bad input, FileExistsError if `out` exists.
    """
    if not kid.strip() or any(ch.isspace() for ch in kid):
        raise ValueError(f"--kid {kid!r}: must be non-empty without spaces")
    patterns = parse_commands(commands)
    if not 0 <= max_priority <= 100:
        raise ValueError(f"--max-priority {max_priority}: must be between 0 and 100")
    if out.exists() or out.is_symlink():
        raise FileExistsError(f"{out} already exists; refusing to overwrite a signing key")
    key = jws.create_private_key(out)
    raw = jws.public_raw(key)
    return TrustBlock(kid=kid, public_key=jws.b64url_encode(raw), commands=patterns,
                      max_priority=max_priority, fingerprint=jws.fingerprint(raw))

"""Checking a device's proof record (PROTOCOL §6.4) against its enrolled key. Pure.

A proof is the province's evidence that a bulletin really sounded; one that does
not verify is either forged or from a device nobody enrolled, and the operator
must see that at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent import jws
from agent.central.acl import DeviceEntry
from agent.central.sign import decode_unverified

Verdict = Literal["VERIFIED", "FORGED", "UNKNOWN DEVICE"]


@dataclass(frozen=True)
class ProofCheck:
    verdict: Verdict
    reason: str
    claims: dict[str, Any] | None  # unverified unless verdict is VERIFIED


def enrolled_keys(devices: Sequence[DeviceEntry]) -> tuple[dict[str, bytes], list[str]]:
    """Raw proof keys by device id, and a problem line for each key that is unusable."""
    keys: dict[str, bytes] = {}
    problems: list[str] = []
    for dev in devices:
        if dev.public_key is None:
            continue
        try:
            keys[dev.id] = jws.decode_public_key(dev.public_key)
        except ValueError as exc:
            problems.append(f"device {dev.id}: public_key {exc}; its proofs cannot be verified")
    return keys, problems


def check_proof(token: str, device: str, keys: Mapping[str, bytes]) -> ProofCheck:
    """Verify `token` received on `device`'s proof topic."""
    try:
        header, claims, signature = decode_unverified(token)
    except (ValueError, UnicodeDecodeError):
        return ProofCheck("FORGED", "not a compact JWS with JSON header and claims", None)
    if header.get("alg") != "EdDSA":
        return ProofCheck("FORGED", f"alg {header.get('alg')!r}, proofs are EdDSA", claims)
    if header.get("kid") != device:
        # A device's key must not vouch for another device's playout.
        return ProofCheck("FORGED", f"kid {header.get('kid')!r} on {device}'s topic", claims)
    public = keys.get(device)
    if public is None:
        return ProofCheck("UNKNOWN DEVICE", f"{device} has no enrolled public key", claims)
    signing_input = token.rpartition(".")[0].encode("ascii")
    if not jws.verify_ed25519(public, signing_input, signature):
        return ProofCheck("FORGED", f"signature does not verify with {device}'s enrolled key",
                          claims)
    return ProofCheck("VERIFIED", "", claims)

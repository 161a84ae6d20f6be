"""A tcs-central console set up against the real test broker: keys, devices.toml, central.toml.

    console = make_console(broker, tmp_path / "central")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.central.keygen import keygen
from agent.central.settings import CentralSettings, load_settings


@dataclass
class Console:
    config: Path
    settings: CentralSettings
    trust_public: bytes
    device_keys: dict[str, Ed25519PrivateKey]


def make_console(broker: Any, folder: Path) -> Console:
    """Signing key (kid vn-48-emergency), both test devices enrolled with fresh proof
    keys and their broker groups, and a central.toml logging in as `central`."""
    block = keygen("vn-48-emergency", folder / "keys" / "vn-48-emergency.pem")
    device_keys = {d: Ed25519PrivateKey.generate() for d in ("dev-0001", "dev-0002")}
    groups = {"dev-0001": ["vn-48", "vn-48-490", "vn-48-490-20194"],
              "dev-0002": ["vn-48", "vn-48-491"]}
    (folder / "devices.toml").write_text("".join(
        f'[[device]]\nid = "{d}"\ngroups = {groups[d]!r}\n'
        f'public_key = "{jws.b64url_encode(jws.public_raw(k))}"\n\n'
        for d, k in device_keys.items()
    ).replace("'", '"'))
    config = folder / "central.toml"
    config.write_text(f"""
[broker]
url = "{broker.url}"
username = "central"
password_file = "{broker.password_file('central')}"
ca_file = "{broker.ca_file}"
keepalive_s = 30
connect_timeout_s = 5
[signing]
kid = "vn-48-emergency"
key_file = "keys/vn-48-emergency.pem"
issuer = "vn-48"
[devices]
file = "devices.toml"
""")
    settings = load_settings(config, need_signing=True)
    return Console(config, settings, jws.decode_public_key(block.public_key), device_keys)

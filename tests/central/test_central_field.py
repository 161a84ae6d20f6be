"""The console as a new operator tried it (issue 10): `acl` validating the devices file
like the agent's config, keygen to a path it cannot write, the help texts, the
example central.toml, and `send` checking args with the device's own validator
before signing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

from support.agentproc import REPO
from support.config import make_tls_files, public_b64

from agent.central.keygen import keygen
from agent.central.settings import load_settings


def central(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.central.cli", *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO, check=False)


def test_acl_lists_every_problem_of_the_devices_file(tmp_path: Path) -> None:
    devices = tmp_path / "devices.toml"
    devices.write_text(
        '[[device]]\nid = "dev-0001"\ngroup = ["vn-48"]\n\n'
        '[[device]]\nid = "dev-0002"\ngroups = ["vn-48"]\npublic_key = "x"\n\n'
        '[[devices]]\nid = "dev-0003"\n'
    )
    out = central("acl", str(devices))
    assert out.returncode == 2
    assert out.stdout == "", "no ACL is printed from a broken devices file"
    lines = out.stderr.splitlines()
    assert f"{devices}:device[0].group: unknown key (did you mean 'groups'?)" in lines
    assert any(line.startswith(f"{devices}:device[0].groups: missing") for line in lines)
    assert any(line.startswith(f"{devices}:device[1].public_key: not a base64url Ed25519")
               for line in lines)
    assert f"{devices}:devices: unknown key (did you mean [[device]]?)" in lines
    assert "Traceback" not in out.stderr


def test_acl_refuses_a_file_with_no_devices(tmp_path: Path) -> None:
    devices = tmp_path / "devices.toml"
    devices.write_text("# nobody enrolled yet\n")
    out = central("acl", str(devices))
    assert out.returncode == 2 and "no [[device]] entries" in out.stderr


def test_acl_accepts_what_enroll_prints(tmp_path: Path) -> None:
    devices = tmp_path / "devices.toml"
    devices.write_text(f'[[device]]\nid = "dev-0001"\ngroups = ["vn-48", "vn-48-490"]\n'
                       f'public_key = "{public_b64()}"\n')
    out = central("acl", str(devices))
    assert out.returncode == 0, out.stderr
    assert "topic read tcs/v1/grp/vn-48-490/cmd" in out.stdout


def test_keygen_to_an_unwritable_path_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    out = central("keygen", "--kid", "k1", "--out", str(tmp_path / "file" / "k.pem"))
    assert out.returncode == 2
    assert "error: cannot write the key" in out.stderr and "Traceback" not in out.stderr


def test_help_texts() -> None:
    top = central("--help")
    assert "reference province console" in top.stdout
    assert "wiring only" not in top.stdout  # the old leftover code comment
    send = central("send", "--help")
    options = " ".join(send.stdout[send.stdout.index("options:"):].split())
    tamper = options[options.index("--tamper {"):]
    assert "TESTING AID" in tamper[:120], tamper


def test_example_central_toml_loads(tmp_path: Path) -> None:
    example = tmp_path / "central.toml"
    shutil.copy(REPO / "config" / "central.example.toml", example)
    (tmp_path / "central.pass").write_text("secret\n")
    shutil.copy(make_tls_files(tmp_path / "tls").ca, tmp_path / "ca.pem")
    keygen("vn-48-emergency", tmp_path / "keys" / "vn-48-emergency.pem")
    (tmp_path / "devices.toml").write_text('[[device]]\nid = "dev-0001"\ngroups = ["vn-48"]\n')
    settings = load_settings(example, need_signing=True)
    assert settings.broker is not None and settings.broker.url == "mqtts://broker.example.vn:8883"
    assert settings.signing is not None and settings.signing.kid == "vn-48-emergency"
    assert settings.devices_file == tmp_path / "devices.toml"


def test_send_checks_args_before_signing_or_connecting(tmp_path: Path) -> None:
    keygen("k1", tmp_path / "k1.pem")
    with socket.socket() as s:  # a port nobody listens on: connecting would fail
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--broker", f"mqtt://127.0.0.1:{port}", "--username", "central", "--kid", "k1",
              "--signing-key", str(tmp_path / "k1.pem"), "--issuer", "vn-48",
              "--connect-timeout", "2"]
    bad = central(*common, "send", "--device", "dev-0001", "volume.set", "--set", "level=170")
    assert bad.returncode == 2, bad.stderr
    assert "volume.set args: level" in bad.stderr and "bad_args" in bad.stderr
    assert "broker" not in bad.stderr, "refused before any connection"
    # --no-check sends it anyway (then fails here only because no broker listens).
    forced = central(*common, "send", "--no-check", "--device", "dev-0001", "volume.set",
                     "--set", "level=170")
    assert forced.returncode == 1 and "broker" in forced.stderr

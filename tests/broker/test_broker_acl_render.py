"""render_acl / load_devices: the pure half, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.central.acl import DeviceEntry, load_devices, parse_devices, render_acl


def _user_block(acl: str, user: str) -> list[str]:
    lines = acl.splitlines()
    start = lines.index(f"user {user}") + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("topic "):
            break
        block.append(line)
    return block


def test_device_block_grants_exactly_its_cmds_and_own_reports() -> None:
    acl = render_acl([DeviceEntry("dev-0001", ("vn-48", "all"))], console_users=())
    assert _user_block(acl, "dev-0001") == [
        "topic read tcs/v1/dev/dev-0001/cmd",
        "topic read tcs/v1/grp/vn-48/cmd",
        "topic read tcs/v1/grp/all/cmd",
        "topic write tcs/v1/dev/dev-0001/state",
        "topic write tcs/v1/dev/dev-0001/hb",
        "topic write tcs/v1/dev/dev-0001/ack",
        "topic write tcs/v1/dev/dev-0001/proof",
        "topic write tcs/v1/dev/dev-0001/event",
    ]
    # No `pattern` lines: they would trust the client-chosen id (%c) and cannot list groups.
    assert not any(line.startswith("pattern") for line in acl.splitlines())


def test_every_console_user_gets_a_block() -> None:
    acl = render_acl([], console_users=("central", "vn-48-ops"))
    for user in ("central", "vn-48-ops"):
        assert "topic write tcs/v1/grp/+/cmd" in _user_block(acl, user)
        assert "topic read tcs/v1/dev/+/proof" in _user_block(acl, user)


@pytest.mark.parametrize(
    ("devices", "console", "named"),
    [
        ([DeviceEntry("dev/0001")], ("central",), "dev/0001"),
        ([DeviceEntry("dev-0001", ("vn-48", "#"))], ("central",), "'#'"),
        ([DeviceEntry("dev-0001", ("VN-48",))], ("central",), "VN-48"),
        ([DeviceEntry("ab")], ("central",), "'ab'"),
        ([DeviceEntry("dev-0001\ntopic write #")], ("central",), "topic write #"),
        ([], ("cen+tral",), "cen+tral"),
        ([DeviceEntry("dev-0001"), DeviceEntry("dev-0001")], (), "twice"),
        ([DeviceEntry("central")], ("central",), "also a device"),
    ],
)
def test_bad_ids_are_refused_by_name(
    devices: list[DeviceEntry], console: tuple[str, ...], named: str
) -> None:
    with pytest.raises(ValueError, match=named.replace("+", r"\+")):
        render_acl(devices, console)


def test_load_devices_reads_the_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    # A public key must be a real Ed25519 key and every device needs its groups
    # (issue 10: "AAAA" and a device without groups used to pass).
    key = "A" * 43
    path.write_text(
        f'[[device]]\nid = "dev-0001"\ngroups = ["vn-48", "vn-48-490"]\npublic_key = "{key}"\n\n'
        '[[device]]\nid = "dev-0002"\ngroups = ["vn-48"]\n'
    )
    assert load_devices(path) == [
        DeviceEntry("dev-0001", ("vn-48", "vn-48-490"), key),
        DeviceEntry("dev-0002", ("vn-48",), None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[device]]\nid = "Dev 1"\n', r"devices\.toml:device\[0\]\.id"),
        ('[[device]]\nid = "dev-0001"\ngroups = "vn-48"\n', r"device\[0\]\.groups"),
        ('[[device]]\nid = "dev-0001"\npublic_key = 5\n', r"device\[0\]\.public_key"),
        ("[[device]\n", "not valid TOML"),
        ('device = "x"\n', "array of tables"),
    ],
)
def test_bad_devices_file_names_file_and_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_devices(text, "devices.toml")

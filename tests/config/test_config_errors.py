"""Each kind of mistake a technician makes in agent.toml gets one exact, useful line.

Every case starts from a valid file (tests/support/config.py), breaks exactly one
thing, and checks that exactly one problem is reported, with the `FILE:section.key`
prefix a technician would search for and a message that says what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from support.config import good_config_text, make_tls_files, public_b64, write_pem_key

from agent.config import ConfigError, load_config, parse_config


def problems_of(text: str, source: Path, **kw: bool) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source, **kw)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def only_problem(text: str, source: Path) -> str:
    problems = problems_of(text, source)
    assert len(problems) == 1, problems
    return problems[0]


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"fixture changed: {old!r} not found exactly once"
    return text.replace(old, new)


@pytest.fixture
def good(tmp_path: Path) -> str:
    return good_config_text(tmp_path)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return tmp_path / "agent.toml"


# (what to replace, with what, expected "section.key", expected words in the message)
CASES = [
    pytest.param(
        "keepalive_s = 60",
        'keepalive_s = "60"',
        "broker.keepalive_s",
        "must be an integer, not a string ('60')",
        id="wrong-type-string-for-int",
    ),
    pytest.param(
        "max_priority = 49",
        "max_priority = true",
        "trust[1].max_priority",
        "must be an integer, not a boolean (true)",
        id="toml-bool-is-not-int",
    ),
    pytest.param(
        'groups = ["vn-48", "vn-48-490"]',
        'groups = "vn-48"',
        "device.groups",
        "must be an array of strings, not a string ('vn-48')",
        id="wrong-type-string-for-array",
    ),
    pytest.param(
        "keepalive_s = 60",
        "keepalive = 60",
        "broker.keepalive",
        "unknown key (did you mean 'keepalive_s'?)",
        id="unknown-key-with-hint",
    ),
    pytest.param(
        "[report]",
        "[reports]",
        "reports",
        "unknown section (did you mean 'report'?)",
        id="unknown-section-with-hint",
    ),
    pytest.param(
        'id = "dev-0001"\n',
        "",
        "device.id",
        "missing required key",
        id="missing-key",
    ),
    pytest.param(
        'url = "mqtt://127.0.0.1:1883"',
        'url = "tcp://127.0.0.1:1883"',
        "broker.url",
        "scheme tcp:// is not supported; use mqtts://",
        id="bad-url-scheme",
    ),
    pytest.param(
        'url = "mqtt://127.0.0.1:1883"',
        'url = "mqtt://broker.example.vn"',
        "broker.url",
        "plain mqtt:// is only allowed to a loopback host, not 'broker.example.vn': "
        "use mqtts://broker.example.vn:8883",
        id="plain-mqtt-to-remote-host",
    ),
    pytest.param(
        'url = "mqtt://127.0.0.1:1883"',
        'url = "mqtts://user:secret@broker.example.vn"',
        "broker.url",
        "must not hold credentials; use broker.username and broker.password_file",
        id="credentials-in-url",
    ),
    pytest.param(
        'url = "mqtt://127.0.0.1:1883"',
        'url = "mqtts://broker.example.vn:99999"',
        "broker.url",
        "has an invalid port",
        id="bad-port",
    ),
    pytest.param(
        'timezone = "Asia/Ho_Chi_Minh"',
        'timezone = "Asia/Ho_Chi_Min"',
        "device.timezone",
        "unknown time zone 'Asia/Ho_Chi_Min' (did you mean 'Asia/Ho_Chi_Minh' (UTC+07:00)?)",
        id="bad-time-zone",
    ),
    pytest.param(
        'quiet_hours = "22:00-05:00"',
        'quiet_hours = "22:00-5:00"',
        "audio.quiet_hours",
        "'22:00-5:00' is not HH:MM-HH:MM",
        id="bad-quiet-hours-format",
    ),
    pytest.param(
        'quiet_hours = "22:00-05:00"',
        'quiet_hours = "24:00-05:00"',
        "audio.quiet_hours",
        "is not HH:MM-HH:MM",
        id="bad-quiet-hours-hour",
    ),
    pytest.param(
        'quiet_hours = "22:00-05:00"',
        'quiet_hours = "22:00-22:00"',
        "audio.quiet_hours",
        "start equals end",
        id="quiet-hours-start-equals-end",
    ),
    pytest.param(
        'id = "dev-0001"',
        'id = "Dev_0001"',
        "device.id",
        "'Dev_0001' is not a valid id: use 3-64 characters a-z, 0-9 and '-'",
        id="bad-id-pattern",
    ),
    pytest.param(
        'groups = ["vn-48", "vn-48-490"]',
        'groups = ["vn-48", "vn/48/490"]',
        "device.groups[1]",
        "'vn/48/490' is not a valid id",
        id="bad-group-pattern",
    ),
    pytest.param(
        'groups = ["vn-48", "vn-48-490"]',
        "groups = []",
        "device.groups",
        "must list at least one group",
        id="no-groups",
    ),
    pytest.param(
        'kid = "commune-operator"',
        'kid = "vn-48-emergency"',
        "trust[1].kid",
        "duplicate kid 'vn-48-emergency' (also trust[0].kid)",
        id="duplicate-kid",
    ),
    pytest.param(
        "max_priority = 49",
        "max_priority = 101",
        "trust[1].max_priority",
        "must be between 0 and 100, not 101",
        id="max-priority-out-of-range",
    ),
    pytest.param(
        'commands = ["schedule.set"]',
        'commands = ["alerts.*"]',
        "trust[1].commands[0]",
        "'alerts.*' matches no known command (did you mean 'alert.*'?)",
        id="command-glob-typo",
    ),
    pytest.param(
        'commands = ["schedule.set"]',
        'commands = [""]',
        "trust[1].commands[0]",
        "must not be empty",
        id="empty-command-glob",
    ),
    pytest.param(
        'commands = ["schedule.set"]',
        'commands = ["schedule set"]',
        "trust[1].commands[0]",
        "is not a command pattern",
        id="invalid-command-glob",
    ),
    pytest.param(
        'commands = ["schedule.set"]',
        "commands = []",
        "trust[1].commands",
        "must list at least one command pattern",
        id="no-commands",
    ),
    pytest.param(
        "keepalive_s = 60",
        "keepalive_s = 3",
        "broker.keepalive_s",
        "must be between 5 and 1200, not 3",
        id="keepalive-too-short",
    ),
    pytest.param(
        "heartbeat_s = 60",
        "heartbeat_s = 2",
        "report.heartbeat_s",
        "must be between 5 and 86400, not 2",
        id="heartbeat-too-short",
    ),
    pytest.param(
        "[report]",
        '[display]\nkind = "led"\n\n[report]',
        "display.kind",
        "must be one of none, max7219, framebuffer, image-dir, not 'led'",
        id="bad-display-kind",
    ),
    pytest.param(
        "[report]",
        '[display]\nkind = "max7219"\nwidth = 12\nheight = 8\n\n[report]',
        "display.width",
        "must be a multiple of 8 for max7219 (8x8 modules), not 12",
        id="max7219-width-not-multiple-of-8",
    ),
    pytest.param(
        "[report]",
        '[display]\nkind = "framebuffer"\nwidth = 64\nheight = 32\n\n[report]',
        "display.path",
        "must name a framebuffer device such as /dev/fb0 for kind 'framebuffer'",
        id="framebuffer-without-path",
    ),
    pytest.param(
        "[report]",
        '[display]\nkind = "image-dir"\npath = "frames"\nheight = 32\n\n[report]',
        "display.width",
        "must be more than 0 pixels for kind 'image-dir'",
        id="image-dir-without-width",
    ),
    pytest.param(
        "[report]",
        '[clock]\ntrust = "alway"\n\n[report]',
        "clock.trust",
        "must be one of auto, always, never, not 'alway' (did you mean 'always'?)",
        id="bad-clock-trust",
    ),
    pytest.param(
        "[report]",
        "[storage2]\n\n[report]",
        "storage2",
        "unknown section (did you mean 'storage'?)",
        id="unknown-section-2",
    ),
    pytest.param(
        "[report]",
        "[cache]\nmax_parallel = 0\n\n[report]",
        "cache.max_parallel",
        "must be between 1 and 16, not 0",
        id="cache-parallel-zero",
    ),
    pytest.param(
        'dir = "state"',
        'dir = "state"\ncache_quota_mb = 0',
        "storage.cache_quota_mb",
        "must be at least 1, not 0",
        id="quota-not-positive",
    ),
    pytest.param(
        "[report]",
        "[audio2]\n\n[report]",
        "audio2",
        "unknown section (did you mean 'audio'?)",
        id="unknown-section-3",
    ),
]


@pytest.mark.parametrize(("old", "new", "where", "message"), CASES)
def test_one_mistake_gives_one_exact_problem(
    good: str, src: Path, old: str, new: str, where: str, message: str
) -> None:
    problem = only_problem(replace_once(good, old, new), src)
    prefix = f"{src}:{where}: "
    assert problem.startswith(prefix), problem
    assert message in problem[len(prefix) :], problem


def test_missing_section_is_named_once(good: str, src: Path) -> None:
    text = replace_once(good, '[broker]\nurl = "mqtt://127.0.0.1:1883"\nkeepalive_s = 60\n', "")
    # One line for the section, not one per required key in it.
    assert problems_of(text, src) == [f"{src}:broker: missing section"]


def test_missing_trust_keys_are_reported(good: str, src: Path) -> None:
    text = re.sub(r"\[\[trust\]\]\n(?:.+\n)+\n", "", good)
    assert "[[trust]]" not in text
    [problem] = problems_of(text, src)
    assert problem.startswith(f"{src}:trust: missing section")
    assert "[[trust]]" in problem


def test_trust_written_as_single_table_is_explained(good: str, src: Path) -> None:
    text = re.sub(r"\[\[trust\]\]\n(?:.+\n)+\n", "", good) + '[trust]\nkid = "x"\n'
    assert problems_of(text, src) == [
        f"{src}:trust: must be an array of tables ([[trust]]), not a table"
    ]


def test_key_outside_any_section_says_where_it_belongs(good: str, src: Path) -> None:
    # The commonest layout slip: a key typed above the first header.
    problem = only_problem("heartbeat_s = 30\n\n" + good, src)
    assert problem == (
        f"{src}:heartbeat_s: is outside any section; did you mean to put it under [report]?"
    )


def test_array_key_outside_any_section(good: str, src: Path) -> None:
    text = 'groups = ["vn-48"]\nkey_file = "x"\n\n' + good
    assert problems_of(text, src) == [
        f"{src}:groups: is outside any section; did you mean to put it under [device]?",
        f"{src}:key_file: is outside any section; "
        "did you mean to put it under [device] or [broker]?",
    ]


def test_bad_public_key_is_reported_with_its_index(good: str, src: Path) -> None:
    short = public_b64()[:22]  # 16 bytes, not 32
    text = re.sub(r'(kid = "commune-operator"\npublic_key = )"[^"]+"', rf'\1"{short}"', good)
    problem = only_problem(text, src)
    assert problem.startswith(f"{src}:trust[1].public_key: not a base64url Ed25519 public key")
    assert "16 bytes" in problem and "32" in problem


def test_public_key_with_bad_characters(good: str, src: Path) -> None:
    text = re.sub(r'(kid = "commune-operator"\npublic_key = )"[^"]+"', r'\1"not base64!"', good)
    problem = only_problem(text, src)
    assert (
        problem == f"{src}:trust[1].public_key: not a base64url Ed25519 public key: not base64url"
    )


def test_invalid_toml_names_the_line(good: str, src: Path) -> None:
    lines = good.splitlines()
    n = lines.index("keepalive_s = 60")
    lines[n] = "keepalive_s = = 60"
    problem = only_problem("\n".join(lines), src)
    assert problem.startswith(f"{src}:{n + 1}: invalid TOML: ")
    assert "column" in problem


def test_invalid_toml_duplicate_section(good: str, src: Path) -> None:
    text = good + "\n[broker]\nurl = 'mqtt://localhost'\n"
    problem = only_problem(text, src)
    line = text.splitlines().index("[broker]", text.splitlines().index("[storage]")) + 1
    assert problem.startswith(f"{src}:{line}: invalid TOML: ")


def test_invalid_toml_at_end_of_document(good: str, src: Path) -> None:
    text = good + 'x = "unterminated'
    problem = only_problem(text, src)
    last = len(text.splitlines())
    assert problem == f"{src}:{last}: invalid TOML: Unterminated string (at end of file)"


def test_unreadable_files_are_named(good: str, src: Path, tmp_path: Path) -> None:
    (tmp_path / "pw-is-a-folder").mkdir()
    text = replace_once(
        good,
        "keepalive_s = 60",
        'username = "dev-0001"\npassword_file = "pw-is-a-folder"\nkeepalive_s = 60',
    )
    text = replace_once(text, "mqtt://127.0.0.1:1883", "mqtts://127.0.0.1")
    text = replace_once(text, "keepalive_s = 60", 'keepalive_s = 60\nca_file = "nowhere/ca.pem"')
    assert problems_of(text, src) == [
        f"{src}:broker.password_file: {tmp_path / 'pw-is-a-folder'} is a directory, not a file",
        f"{src}:broker.ca_file: {tmp_path / 'nowhere' / 'ca.pem'} does not exist",
    ]


def test_ca_file_that_is_not_a_certificate(good: str, src: Path, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("hello\n")
    text = replace_once(good, "mqtt://127.0.0.1:1883", "mqtts://127.0.0.1")
    text = replace_once(text, "keepalive_s = 60", 'keepalive_s = 60\nca_file = "ca.pem"')
    assert problems_of(text, src) == [
        f"{src}:broker.ca_file: {tmp_path / 'ca.pem'} holds no PEM certificate "
        "('-----BEGIN CERTIFICATE-----')"
    ]


def test_client_cert_without_key(good: str, src: Path, tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    text = replace_once(good, "mqtt://127.0.0.1:1883", "mqtts://127.0.0.1")
    text = replace_once(text, "keepalive_s = 60", f'keepalive_s = 60\ncert_file = "{tls.cert}"')
    assert problems_of(text, src) == [
        f"{src}:broker.key_file: must be set too: broker.cert_file is set and mTLS needs both"
    ]


def test_client_key_that_does_not_match_cert(good: str, src: Path, tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    other = write_pem_key(tmp_path / "other.pem", ec.generate_private_key(ec.SECP256R1()))
    text = replace_once(good, "mqtt://127.0.0.1:1883", "mqtts://127.0.0.1")
    text = replace_once(
        text,
        "keepalive_s = 60",
        f'keepalive_s = 60\ncert_file = "{tls.cert}"\nkey_file = "{other}"',
    )
    assert problems_of(text, src) == [
        f"{src}:broker.key_file: {other} does not match the certificate in {tls.cert}"
    ]


def test_tls_files_with_plain_mqtt(good: str, src: Path, tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    text = replace_once(good, "keepalive_s = 60", f'keepalive_s = 60\nca_file = "{tls.ca}"')
    assert problems_of(text, src) == [
        f"{src}:broker.url: is plain mqtt:// but TLS files are set; use mqtts://"
    ]


def test_username_must_be_the_device_id(good: str, src: Path) -> None:
    text = replace_once(good, "keepalive_s = 60", 'keepalive_s = 60\nusername = "dev-0002"')
    assert problems_of(text, src) == [
        f"{src}:broker.username: 'dev-0002' must equal device.id 'dev-0001' (PROTOCOL §1)"
    ]


def test_empty_password_file(good: str, src: Path, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    text = replace_once(
        good, "keepalive_s = 60", 'keepalive_s = 60\nusername = "dev-0001"\npassword_file = "pw"'
    )
    assert problems_of(text, src) == [f"{src}:broker.password_file: {tmp_path / 'pw'} is empty"]


def test_missing_device_key_hints_enroll(good: str, src: Path, tmp_path: Path) -> None:
    (tmp_path / "device.key").unlink()
    assert problems_of(good, src) == [
        f"{src}:device.key_file: {tmp_path / 'device.key'} does not exist; "
        f"run `tcs-agent enroll -c {src}` to create it"
    ]
    # `tcs-agent enroll` itself loads the config before the key exists.
    cfg = parse_config(good, src, require_device_key=False)
    assert cfg.device.key_file == tmp_path / "device.key"


def test_enroll_still_rejects_a_broken_existing_key(good: str, src: Path, tmp_path: Path) -> None:
    # Enrolment would otherwise reuse (and crash on) whatever is at key_file.
    (tmp_path / "device.key").write_text("garbage\n")
    problems = problems_of(good, src, require_device_key=False)
    assert problems == [
        f"{src}:device.key_file: {tmp_path / 'device.key'} is not a PEM PKCS#8 private key "
        "('-----BEGIN PRIVATE KEY-----')"
    ]


def test_device_key_must_be_ed25519_pkcs8(good: str, src: Path, tmp_path: Path) -> None:
    key_path = tmp_path / "device.key"
    write_pem_key(key_path, ec.generate_private_key(ec.SECP256R1()))
    assert problems_of(good, src) == [
        f"{src}:device.key_file: {key_path} holds a key that is not Ed25519"
    ]
    key_path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n")
    assert problems_of(good, src) == [
        f"{src}:device.key_file: {key_path} is not a PEM PKCS#8 private key "
        "('-----BEGIN PRIVATE KEY-----')"
    ]
    key_path.write_text("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    assert problems_of(good, src) == [
        f"{src}:device.key_file: {key_path} holds no valid PEM private key"
    ]


def test_storage_dir_that_cannot_be_created(good: str, src: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    text = replace_once(good, 'dir = "state"', 'dir = "afile/state"')
    assert problems_of(text, src) == [
        f"{src}:storage.dir: {tmp_path / 'afile' / 'state'} cannot be created: "
        f"{tmp_path / 'afile'} is not a folder"
    ]
    # The pure core never creates it.
    assert not (tmp_path / "state").exists()


def test_every_problem_is_listed_at_once(good: str, src: Path) -> None:
    text = good
    for old, new in [
        ('id = "dev-0001"', 'id = "X"'),
        ('timezone = "Asia/Ho_Chi_Minh"', 'timezone = "Mars/Olympus"'),
        ("mqtt://127.0.0.1:1883", "mqtt://broker.example.vn"),
        ("keepalive_s = 60", "keepalive_s = 60.0\nkeepalive = 1"),
        ("max_priority = 49", "max_priority = 200"),
        ('quiet_hours = "22:00-05:00"', 'quiet_hours = "late"'),
        ("heartbeat_s = 60", "heartbeat_s = true"),
    ]:
        text = replace_once(text, old, new)
    text += "\n[displey]\n"
    problems = problems_of(text, src)
    wheres = [p[len(str(src)) + 1 :].split(": ", 1)[0] for p in problems]
    assert sorted(wheres) == sorted(
        [
            "displey",
            "device.id",
            "device.timezone",
            "broker.keepalive",
            "broker.url",
            "broker.keepalive_s",
            "trust[1].max_priority",
            "audio.quiet_hours",
            "report.heartbeat_s",
        ]
    ), problems


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [f"{path}: does not exist"]


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(b"[device]\nid = 'd\xe9v'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [f"{path}:2: not UTF-8 text (column 8)"]

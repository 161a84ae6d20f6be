"""The technician CLI in Vietnamese under a Vietnamese locale, English otherwise.

gettext reads LANGUAGE / LC_ALL / LC_MESSAGES / LANG itself, so no generated
system locale is needed (this machine has none for vi_VN). The committed .mo must
be the compiled form of its .po, and no translation may drop or rename a
`{placeholder}` (that would be a KeyError in front of a technician).
"""

from __future__ import annotations

import gettext
import io
import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
from support.agentproc import run_cli
from support.config import good_config_text

from agent.configcheck import EXAMPLE_TRUST_KEYS
from agent.doctor import CHECK_IDS
from agent.i18n import DOMAIN, LOCALE_DIR

PO = LOCALE_DIR / "vi" / "LC_MESSAGES" / f"{DOMAIN}.po"
MO = PO.with_suffix(".mo")


def cli(lang: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, lang=lang, timeout=60)


@pytest.fixture
def example_keyed_config(tmp_path: Path) -> Path:
    text = good_config_text(tmp_path).replace(
        'quiet_hours = "22:00-05:00"', 'quiet_hours = "22:00-05:00"\noutput = "none"')
    first = re.search(r'public_key = "(.+)"', text)
    assert first is not None
    cfg = tmp_path / "agent.toml"
    cfg.write_text(text.replace(first.group(1), sorted(EXAMPLE_TRUST_KEYS)[0]))
    return cfg


def test_vietnamese_locale_gives_vietnamese_output(example_keyed_config: Path) -> None:
    vi = cli("vi_VN.UTF-8", "config", "check", str(example_keyed_config))
    assert vi.returncode == 1
    assert "là khóa mẫu dùng một lần" in vi.stdout and "hãy thay bằng khóa của tỉnh" in vi.stdout
    en = cli("C.UTF-8", "config", "check", str(example_keyed_config))
    assert "is the example's throw-away key" in en.stdout
    helped = cli("vi_VN.UTF-8", "--help")
    assert "in khóa công khai và dấu vân tay của thiết bị" in helped.stdout
    ident = cli("vi_VN.UTF-8", "id", "-c", str(example_keyed_config))
    assert ident.returncode == 0 and "dấu vân tay: SHA256:" in ident.stdout


def test_ok_summary_in_vietnamese(tmp_path: Path, example_keyed_config: Path) -> None:
    text = example_keyed_config.read_text().replace(sorted(EXAMPLE_TRUST_KEYS)[0],
                                                    "A" * 43)
    example_keyed_config.write_text(text)
    out = cli("vi_VN.UTF-8", "config", "check", str(example_keyed_config))
    assert out.returncode == 0, out.stdout
    assert ": hợp lệ" in out.stdout and "giờ địa phương hiện tại" in out.stdout


def test_committed_mo_is_the_compiled_po() -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with PO.open("rb") as f:
        catalog = read_po(f)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    fresh = gettext.GNUTranslations(io.BytesIO(buf.getvalue()))
    with MO.open("rb") as f:
        committed = gettext.GNUTranslations(f)
    assert committed._catalog == fresh._catalog, "run scripts/i18n.sh and commit the .mo"  # type: ignore[attr-defined]


def test_translations_keep_every_placeholder() -> None:
    from babel.messages.pofile import read_po

    with PO.open("rb") as f:
        catalog = read_po(f)
    fields = re.compile(r"\{[^{}]*\}")
    for message in catalog:
        if message.id and message.string:
            assert sorted(fields.findall(str(message.id))) == sorted(
                fields.findall(str(message.string))), message.id


def test_no_fuzzy_entries() -> None:
    """A fuzzy entry is a guess waiting for review; compiling skips it (English shows)."""
    from babel.messages.pofile import read_po

    with PO.open("rb") as f:
        catalog = read_po(f)
    assert [m.id for m in catalog if m.id and m.fuzzy] == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_doctor_in_vietnamese_and_its_json_in_english(tmp_path: Path) -> None:
    port = _closed_port()
    text = good_config_text(tmp_path).replace(
        'quiet_hours = "22:00-05:00"', 'quiet_hours = "22:00-05:00"\noutput = "none"'
    ).replace("mqtt://127.0.0.1:1883", f"mqtt://127.0.0.1:{port}")
    cfg = tmp_path / "agent.toml"
    cfg.write_text(text)
    key = tmp_path / "device.key"
    key.unlink()  # the device was never enrolled

    vi = cli("vi_VN.UTF-8", "doctor", "-c", str(cfg))
    assert vi.returncode == 1, vi.stdout + vi.stderr
    lines = vi.stdout.splitlines()
    # Check ids stay as they are (they are what the JSON and the docs name).
    at = lines.index(f"✗ device_key: khóa thiết bị {key} không tồn tại")
    assert lines[at + 1] == f"    → chạy `tcs-agent enroll -c {cfg}` để tạo khóa"
    reach = next(ln for ln in lines if ln.startswith("✗ broker_reach:"))
    assert reach == f"✗ broker_reach: không có dịch vụ nào ở 127.0.0.1:{port} (kết nối bị từ chối)"
    assert f"✓ config: {cfg} hợp lệ" in lines
    assert lines[-1].startswith("có mục kiểm tra không đạt (")
    assert "does not exist" not in vi.stdout and "connection refused" not in vi.stdout

    machine = cli("vi_VN.UTF-8", "doctor", "-c", str(cfg), "--json")
    assert machine.returncode == 1
    checks = {c["id"]: c for c in json.loads(machine.stdout)["checks"]}
    assert set(checks) <= set(CHECK_IDS)
    assert checks["device_key"]["detail"] == f"device key {key} does not exist"
    assert checks["device_key"]["fix"] == f"run `tcs-agent enroll -c {cfg}` to create it"
    assert "connection refused" in checks["broker_reach"]["detail"]
    assert machine.stdout.isascii(), machine.stdout


def test_status_and_self_tests_in_vietnamese(tmp_path: Path, example_keyed_config: Path) -> None:
    cfg = example_keyed_config
    status = cli("vi_VN.UTF-8", "status", "-c", str(cfg))
    assert status.returncode == 3
    assert "agent không chạy (socket trạng thái không trả lời)" in status.stderr

    speaker = cli("vi_VN.UTF-8", "test", "speaker", "-c", str(cfg))
    assert speaker.returncode == 1
    assert speaker.stdout.startswith(
        "✗ loa trực tiếp (agent không chạy): chưa cấu hình đầu ra âm thanh"), speaker.stdout

    fb = tmp_path / "fb0"
    fb.write_bytes(b"")
    cfg.write_text(cfg.read_text().replace(
        "[report]", f'[display]\nkind = "framebuffer"\npath = "{fb}"\nwidth = 160\n'
        'height = 90\nbpp = 16\n\n[report]'))  # fmt: skip
    board = cli("vi_VN.UTF-8", "test", "display", "-c", str(cfg), "--seconds", "0")
    assert board.returncode == 0, board.stdout + board.stderr
    assert f"bảng điện tử framebuffer {fb} 160x90: đã mở" in board.stdout
    assert "đã hiện hình kiểm tra: frame_sha256 " in board.stdout
    assert "đã hiện lại trang đang chiếu: frame_sha256 " in board.stdout


def test_update_and_lower_floor_refusals_in_vietnamese(
    tmp_path: Path, example_keyed_config: Path
) -> None:
    back = cli("vi_VN.UTF-8", "update", "rollback", "--prefix", str(tmp_path / "opt"))
    assert back.returncode == 1
    assert "từ chối cập nhật: không có bản cập nhật đang chờ để quay lại" in back.stderr
    floor = cli("vi_VN.UTF-8", "clock", "lower-floor", "-c", str(example_keyed_config),
                "not.a.token")  # fmt: skip
    assert floor.returncode == 1 and floor.stderr.startswith("mã bị từ chối ("), floor.stderr


def test_a_message_inside_a_doctor_message_is_translated_with_it(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(good_config_text(tmp_path).replace(
        "mqtt://127.0.0.1:1883", f"mqtt://127.0.0.1:{_closed_port()}").replace(
        "[report]", '[amplifier]\nkind = "serial-relay"\n\n[report]'))  # fmt: skip
    vi = cli("vi_VN.UTF-8", "doctor", "-c", str(cfg))
    assert "✗ amplifier: cổng rơ-le (chưa đặt) không tồn tại" in vi.stdout.splitlines()
    en = cli("vi_VN.UTF-8", "doctor", "-c", str(cfg), "--json")
    amp = next(c for c in json.loads(en.stdout)["checks"] if c["id"] == "amplifier")
    assert amp["detail"] == "relay port (not set) does not exist"

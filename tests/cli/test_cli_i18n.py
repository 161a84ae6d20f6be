"""The technician CLI in Vietnamese under a Vietnamese locale, English otherwise.

gettext reads LANGUAGE / LC_ALL / LC_MESSAGES / LANG itself, so no generated
system locale is needed (this machine has none for vi_VN). The committed .mo must
be the compiled form of its .po, and no translation may drop or rename a
`{placeholder}` (that would be a KeyError in front of a technician).
"""

from __future__ import annotations

import gettext
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.agentproc import REPO
from support.config import good_config_text

from agent.configcheck import EXAMPLE_TRUST_KEYS
from agent.i18n import DOMAIN, LOCALE_DIR

PO = LOCALE_DIR / "vi" / "LC_MESSAGES" / f"{DOMAIN}.po"
MO = PO.with_suffix(".mo")


def cli(lang: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")}
    env["LANG"] = lang
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, encoding="utf-8", env=env, cwd=REPO, timeout=60,
                          check=False)


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

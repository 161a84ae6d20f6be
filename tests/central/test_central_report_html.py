"""The HTML report: one self-contained file, in Vietnamese under a Vietnamese locale,
that opens in headless Chromium without console errors and shows its charts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from support import month
from support.chromium import open_page
from support.records import REPO

from agent.central.store import open_db

PLAYED_GREEN = (0x2A, 0x8A, 0x3A)
ONLINE_BLUE = (0x20, 0x60, 0xC0)


def _month_console(tmp_path: Path) -> Path:
    engine = open_db(f"sqlite:///{tmp_path / 'central.db'}")
    devices, keys = month.devices_and_keys()
    month.generate(engine, devices, keys)
    engine.dispose()
    (tmp_path / "devices.toml").write_text("".join(
        f'[[device]]\nid = "{d.id}"\ngroups = ["{d.groups[0]}", "{d.groups[1]}"]\n'
        f'public_key = "{d.public_key}"\n\n' for d in devices), encoding="utf-8")
    config = tmp_path / "central.toml"
    config.write_text('[devices]\nfile = "devices.toml"\n[collector]\ndb = "sqlite:///central.db"'
                      f'\nheartbeat_s = {month.HEARTBEAT_S}\n', encoding="utf-8")
    return config


def _pixels(path: Path, colour: tuple[int, int, int]) -> int:
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    return int(np.all(rgb == np.array(colour, dtype=np.uint8), axis=-1).sum())


def test_html_report_in_vietnamese_opens_in_chromium_with_its_charts(tmp_path: Path) -> None:
    config = _month_console(tmp_path)
    out = tmp_path / "report.html"
    env = dict(os.environ, LANGUAGE="vi", LANG="vi_VN.UTF-8")
    run = subprocess.run(
        [sys.executable, "-m", "agent.central.cli", "-c", str(config), "report",
         "--from", "2026-11-01", "--to", "2026-11-30", "--by", "device", "--format", "html",
         "--out", str(out)], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    html = out.read_text(encoding="utf-8")
    assert "Báo cáo hiệu quả phát thanh cơ sở" in html
    assert "Những gì chưa được phát" in html
    # dev-0005's offline days, in the list with its commune.
    assert "<td>dev-0005</td><td>vn-48-490-20194</td><td>morning</td><td>2026-11-10 05:30</td>" \
        "<td>thiết bị mất kết nối</td>" in html
    # Self-contained: nothing to fetch, no script.
    for needle in ("http://", "https://", "<script", "<link", "src="):
        assert needle not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")

    # The console-error check itself catches an error (so its silence below means something).
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>undefinedFunction()</script></body></html>")
    assert open_page(broken, tmp_path / "broken.png").errors()

    opened = open_page(out, tmp_path / "report.png")
    assert opened.errors() == []
    assert _pixels(opened.screenshot, PLAYED_GREEN) > 2000, "no played bars in the screenshot"
    assert _pixels(opened.screenshot, ONLINE_BLUE) > 2000, "no online-share bars"

"""`tcs-agent cache ls | verify | fetch` as a technician uses them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.config import good_config_text
from support.media_cache import Events, make_ref, payload

from agent.cache import cli
from agent.cache.progress import render_bar
from agent.cache.store import MediaCache


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    folder = tmp_path / "etc"
    text = good_config_text(folder)  # creates the folder and the device key
    path = folder / "agent.toml"
    path.write_text(text)
    return path


def test_fetch_ls_verify_with_the_agent_config(
    conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    news, spot = payload(150_000, seed=1), payload(1000, seed=2)
    (usb / "news.mp3").write_bytes(news)
    news_ref = make_ref((usb / "news.mp3").as_uri(), news)
    spot_ref = make_ref("http://127.0.0.1:9/spot.mp3", spot)
    root = conf.parent / "state" / "cache"  # [storage] dir = "state", relative to the file

    rc = cli.main(["fetch", news_ref.url, news_ref.sha256, "-c", str(conf)])
    out = capsys.readouterr().out
    assert rc == 0 and f"stored {root / news_ref.sha256[:2] / news_ref.sha256}" in out
    assert "100%" in out  # plain progress lines when not on a terminal

    # The agent pinned both for its schedule; one is not here yet.
    agent_side = MediaCache(root, 1 << 30, emit_event=Events())
    agent_side.set_pins("schedule", [news_ref, spot_ref])
    assert cli.main(["ls", "-c", str(conf)]) == 0
    out = capsys.readouterr().out
    assert "1 files" in out
    assert f"{news_ref.sha256}" in out and "schedule" in out
    assert "missing (referenced, not stored): 1" in out and spot_ref.url in out

    obj = root / news_ref.sha256[:2] / news_ref.sha256
    os.chmod(obj, 0o644)
    with obj.open("r+b") as f:
        f.write(b"X")
    assert cli.main(["verify", "--dir", str(conf.parent / "state")]) == 1
    out = capsys.readouterr().out
    assert f"CORRUPT {news_ref.sha256}" in out and "1 corrupt" in out
    assert cli.main(["ls", "--dir", str(conf.parent / "state")]) == 0
    assert "missing (referenced, not stored): 2" in capsys.readouterr().out


def test_fetch_refuses_wrong_bytes_and_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "a.mp3"
    src.write_bytes(payload(5000))
    wrong = make_ref(src.as_uri(), payload(5000, seed=9))
    store = tmp_path / "state"
    assert cli.main(["fetch", src.as_uri(), wrong.sha256, "--dir", str(store)]) == 1
    assert "FAILED: wrong content" in capsys.readouterr().err
    assert not list((store / "cache").glob("??/*"))
    assert cli.main(["fetch", src.as_uri(), "../../etc/passwd", "--dir", str(store)]) == 2
    assert "not a SHA-256" in capsys.readouterr().err
    assert cli.main(["ls"]) == 2
    assert "-c CONFIG" in capsys.readouterr().err


def test_progress_bar_text() -> None:
    assert render_bar(0, 100, 0.0, width=10).startswith("[..........]   0%")
    assert render_bar(50, 100, 0.0, width=10).startswith("[#####.....]  50%")
    assert render_bar(100, 100, 2 * 1048576, width=10).endswith("2.00 MiB/s")

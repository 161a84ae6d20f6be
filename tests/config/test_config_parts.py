"""`config check` asks the parts what they accept: whatever it passes, `run` can build;
whatever `run` would refuse at start, the check refuses first (no restart loop)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support.config import good_config_text

from agent.config import Config, ConfigError, load_config, parse_config
from agent.hardware import build_relay
from agent.playout.wiring import speaker_output

sys.path.insert(0, str(Path(__file__).parent))
from test_config_errors import CASES, replace_once
from test_config_valid import example_with_temp_paths


def builds(cfg: Config) -> None:
    """Construct every configured output the way `run` does (without opening devices)."""
    if cfg.audio.output.strip().lower() != "none":
        speaker_output(cfg, lambda *_: None, None)
    if cfg.display.relay is not None and cfg.display.relay.kind == "serial-relay":
        build_relay(cfg.display.relay)  # the driver's own checks (GPIO would open a chip)


def accepted_configs(tmp_path: Path) -> list[tuple[str, Config]]:
    good = good_config_text(tmp_path)
    src = tmp_path / "agent.toml"
    out = [
        ("example", load_config(example_with_temp_paths(tmp_path))),
        ("good", parse_config(good, src)),
    ]
    relay = (
        '\n[display]\npower_control = "relay"\n[display.relay]\nkind = "serial-relay"\n'
        'port = "/dev/ttyUSB1"\non_bytes = "A0 02 01 A3"\noff_bytes = "A0 02 00 A2"\n'
        'query_bytes = "FF"\non_reply = "01"\noff_reply = "00"\n'
    )
    out.append(("screen-relay", parse_config(good + relay, src)))
    for rate in (8000, 16000, 22050, 32000, 44100, 48000):
        text = good.replace("[audio]\n", f"[audio]\nsample_rate = {rate}\n", 1)
        out.append((f"rate-{rate}", parse_config(text, src)))
    return out


def test_config_parts_everything_check_accepts_run_builds(tmp_path: Path) -> None:
    for name, cfg in accepted_configs(tmp_path):
        try:
            builds(cfg)
        except ValueError as e:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{name}: config check passed but the engine refuses it: {e}")


@pytest.mark.parametrize("rate", [96000, 11025, 192000])
def test_config_parts_rate_the_engine_refuses_is_refused_by_check(
    tmp_path: Path, rate: int
) -> None:
    text = good_config_text(tmp_path).replace("[audio]\n", f"[audio]\nsample_rate = {rate}\n", 1)
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "agent.toml")
    (problem,) = info.value.problems
    assert problem.startswith(
        f"{tmp_path / 'agent.toml'}:audio.sample_rate: {rate} is not supported"
    )


def test_config_parts_rate_is_free_without_speaker(tmp_path: Path) -> None:
    """A board-only device (`output = "none"`) never opens the engine."""
    text = good_config_text(tmp_path).replace(
        "[audio]\n", '[audio]\noutput = "none"\nsample_rate = 96000\n', 1
    )
    assert parse_config(text, tmp_path / "agent.toml").audio.sample_rate == 96000


@pytest.mark.parametrize(("old", "new", "where", "message"), CASES)
def test_config_parts_every_invalid_config_is_refused(
    tmp_path: Path, old: str, new: str, where: str, message: str
) -> None:
    with pytest.raises(ConfigError):
        parse_config(replace_once(good_config_text(tmp_path), old, new), tmp_path / "agent.toml")

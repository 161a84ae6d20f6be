"""[update] (agent.update): defaults are the installer's layout; each mistake gets one
clear line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config import good_config_text

from agent.config import ConfigError, parse_config


def _parse(tmp_path: Path, extra: str):  # type: ignore[no-untyped-def]
    return parse_config(good_config_text(tmp_path) + extra, tmp_path / "agent.toml")


def test_defaults_and_a_site_root(tmp_path: Path) -> None:
    cfg = _parse(tmp_path, "")
    assert (cfg.update.root, cfg.update.healthy_s, cfg.update.confirm_timeout_s) == (
        Path("/opt/tcs-agent"), 60, 900)
    cfg = _parse(tmp_path, '[update]\nroot = "/srv/tcs"\nhealthy_s = 30\n')
    assert cfg.update.root == Path("/srv/tcs") and cfg.update.healthy_s == 30


@pytest.mark.parametrize("extra, says", [
    ('[update]\nroot = "opt/tcs-agent"\n', "update.root: must be an absolute path"),
    ("[update]\nhealthy_s = 1\n", "update.healthy_s: must be between 5"),
    ("[update]\nhealthy_s = 600\nconfirm_timeout_s = 300\n",
     "update.confirm_timeout_s: must be longer than healthy_s (600)"),
    ("[update]\nhealthy = 60\n", "did you mean 'healthy_s'"),
])
def test_each_mistake_one_clear_line(tmp_path: Path, extra: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(tmp_path, extra)
    assert len(info.value.problems) == 1, info.value.problems
    assert says in info.value.problems[0], info.value.problems

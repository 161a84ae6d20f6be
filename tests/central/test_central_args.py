"""--args / --set argument building."""

from __future__ import annotations

import pytest

from agent.central.args import build_args, parse_args_json


def test_set_builds_nested_args_with_json_values_and_plain_strings() -> None:
    args = build_args({"alert_id": "a1"}, ["priority=95", "text=Bão số 3 đổ bộ",
                                           "media.0=x", "chime=false", "until=\"2026\""])
    assert args == {"alert_id": "a1", "priority": 95, "text": "Bão số 3 đổ bộ",
                    "media": {"0": "x"}, "chime": False, "until": "2026"}


def test_set_does_not_mutate_the_base() -> None:
    base = {"a": {"b": 1}}
    assert build_args(base, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}
    assert base == {"a": {"b": 1}}


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1"])
def test_bad_assignment_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match="--set"):
        build_args(None, [bad])


def test_set_through_a_scalar_is_refused() -> None:
    with pytest.raises(ValueError, match="level is already 5"):
        build_args({"level": 5}, ["level.x=1"])


def test_args_must_be_a_json_object() -> None:
    with pytest.raises(ValueError, match="--args: must be a JSON object"):
        parse_args_json("[1]", "--args")
    with pytest.raises(ValueError, match="--args: not JSON"):
        parse_args_json("{level: 1}", "--args")

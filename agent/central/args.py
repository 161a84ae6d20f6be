"""Command arguments from `--args`, `--args-file` and `--set a.b=value` flags. Pure."""

from __future__ import annotations

import json
from typing import Any


def parse_args_json(text: str, where: str) -> dict[str, Any]:
    """A JSON object, or ValueError naming `where` it came from."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be a JSON object, not {type(value).__name__}")
    return value


def _parse_value(text: str) -> Any:
    # JSON when it parses (numbers, true, lists, objects, "quoted"), else the raw
    # string, so `--set text=Bão số 3` needs no quoting gymnastics in the shell.
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_set(args: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Return a copy of `args` with `a.b.c=value` applied (creating nested objects)."""
    path, sep, raw = assignment.partition("=")
    keys = path.split(".")
    if not sep or not all(keys):
        raise ValueError(f"--set {assignment!r}: expected key=value or a.b=value")
    result: dict[str, Any] = json.loads(json.dumps(args))  # deep copy of JSON data
    node = result
    for i, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = ".".join(keys[: i + 1])
            raise ValueError(f"--set {assignment!r}: {where} is already {child!r}, not an object")
        node = child
    node[keys[-1]] = _parse_value(raw)
    return result


def build_args(base: dict[str, Any] | None, assignments: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = dict(base or {})
    for assignment in assignments:
        args = apply_set(args, assignment)
    return args

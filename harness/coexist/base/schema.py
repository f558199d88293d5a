"""Validation helpers of the scenario schema, and the one error it raises: file, field, what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file, the field and what is allowed."""

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        self.path, self.where, self.problem = str(path), where, problem
        super().__init__(f"{path}: {where}: {problem}")


def check_types(path: Path | str, table: str, values: dict[str, Any],
                 allowed: dict[str, type | tuple[type, ...]]) -> None:
    for key, item in values.items():
        if key not in allowed:
            raise ScenarioError(path, f"{table}.{key}", f"unknown key; allowed: {', '.join(allowed)}")
        expected = allowed[key]
        if isinstance(item, bool) and expected in (int, (int, float)) or not isinstance(item, expected):
            kinds = (expected,) if isinstance(expected, type) else expected
            kind = ("a number" if kinds == (int, float)
                    else " or ".join(_KIND_NAMES.get(t, t.__name__) for t in kinds))
            raise ScenarioError(path, f"{table}.{key}", f"must be {kind}, got {shown(item)}")


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "an array", dict: "a table"}


def shown(value: Any, limit: int = 40) -> str:
    """A value as the error shows it: repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def choice(path: Path | str, where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ScenarioError(path, where, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")
    return str(value)


def strings(path: Path | str, where: str, values: list[Any]) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise ScenarioError(path, where, f"must be a list of strings, got {value!r}")
    return values

"""Validation helpers of the scenario schema, and the one error it raises: a field and its problem.

Every validator (a scenario's tables, a fix, a network, an `expect` table) raises FieldError with
the field as the data it was handed names it. Whoever hands a part of a file to a validator says
once where that part sits (`within("step[2].expect")`), and the loader that read the file anchors
the error to it once (`anchored(path)`): the user reads `file: field: problem`, and nobody
re-raises by hand.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class FieldError(ValueError):
    """A field of some data is malformed: `field` (dotted, from the data's root; "" for the data
    itself) and `problem`, what is wrong and what is allowed."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}" if field else problem)

    def under(self, prefix: str) -> FieldError:
        """The same error, its field named from one level up (`prefix` is where the data sits)."""
        return FieldError(f"{prefix}.{self.field}" if self.field else prefix, self.problem)


class ScenarioError(FieldError):
    """A FieldError anchored to its file; the message names the file, the field and what is allowed."""

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.path, self.where = str(path), where
        self.args = (f"{path}: {where}: {problem}",)


@contextmanager
def within(prefix: str) -> Iterator[None]:
    """Field errors raised inside name their field under `prefix` (where the validated part sits)."""
    try:
        yield
    except ScenarioError:
        raise
    except FieldError as error:
        raise error.under(prefix) from None


@contextmanager
def anchored(path: Path | str) -> Iterator[None]:
    """Field errors raised inside are errors of the file `path` (ScenarioError)."""
    try:
        yield
    except ScenarioError:
        raise
    except FieldError as error:
        raise ScenarioError(path, error.field, error.problem) from None


def suggest(given: Any, allowed: Iterable[str]) -> str:
    """` did you mean 'x'?` when `given` is a likely misspelling of one of `allowed`, else ''."""
    if not isinstance(given, str):
        return ""
    near = difflib.get_close_matches(given, list(allowed), n=1, cutoff=0.7)
    return f" did you mean {near[0]!r}?" if near else ""


def unknown(what: str, given: Any, allowed: Iterable[str]) -> str:
    """The problem of an unknown key (table, axis, ...): a suggestion, then what is allowed."""
    names = list(allowed)
    return f"unknown {what};{suggest(given, names)} allowed: {', '.join(names)}"


def not_allowed(value: Any, allowed: Iterable[str]) -> str:
    """The problem of a value that is not one of `allowed`: a suggestion, then what is allowed."""
    names = list(allowed)
    return f"{value!r} is not allowed;{suggest(value, names)} allowed: {', '.join(names)}"


def check_types(table: str, values: dict[str, Any], allowed: dict[str, type | tuple[type, ...]]) -> None:
    for key, item in values.items():
        if key not in allowed:
            raise FieldError(f"{table}.{key}", unknown("key", key, allowed))
        expected = allowed[key]
        if isinstance(item, bool) and expected in (int, (int, float)) or not isinstance(item, expected):
            kinds = (expected,) if isinstance(expected, type) else expected
            kind = ("a number" if kinds == (int, float)
                    else " or ".join(_KIND_NAMES.get(t, t.__name__) for t in kinds))
            raise FieldError(f"{table}.{key}", f"must be {kind}, got {shown(item)}")


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "an array", dict: "a table"}


def shown(value: Any, limit: int = 40) -> str:
    """A value as the error shows it: repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def choice(where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise FieldError(where, not_allowed(value, allowed))
    return str(value)


def strings(where: str, values: list[Any]) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise FieldError(where, f"must be a list of strings, got {value!r}")
    return values

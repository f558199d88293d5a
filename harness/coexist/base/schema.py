"""Validation helpers of the scenario schema, and the one error it raises: a field and its problem.

Every validator (a scenario's tables, a fix, a network, an `expect` table) raises FieldError with
the field as the data it was handed names it. Whoever hands a part of a file to a validator says
once where that part sits (`within("step[2].expect")`), and the loader that read the file anchors
the error to it once (`anchored(path, text)`): the user reads `file:line: field: problem`, and
nobody re-raises by hand. Independent parts are validated each in a `Collected.part`, so that a
file's every mistake is said at once (FieldErrors), as a linter says them.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class FieldError(ValueError):
    """A field of some data is malformed: `field` (dotted, from the data's root; "" for the data
    itself) and `problem`, what is wrong and what is allowed."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}" if field else problem)

    def under(self, prefix: str) -> FieldError:
        """The same error, its field named from one level up (`prefix` is where the data sits)."""
        return FieldError(f"{prefix}.{self.field}" if self.field else prefix, self.problem)

    def each(self) -> list[FieldError]:
        """The single errors this one says (itself; FieldErrors: all of its own)."""
        return [self]


class FieldErrors(FieldError):
    """Several field errors of one piece of data, in the order they were found."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = [single for error in errors for single in error.each()]
        super().__init__(self.errors[0].field, self.errors[0].problem)
        self.args = ("\n".join(str(error) for error in self.errors),)

    def under(self, prefix: str) -> FieldError:
        return FieldErrors([error.under(prefix) for error in self.errors])

    def each(self) -> list[FieldError]:
        return list(self.errors)


class Said(Exception):
    """A part that cannot be validated because of an error already said (in another part):
    nothing to add; `Collected.part` lets it pass silently."""


class Collected:
    """The errors of a piece of data's independent parts, each validated in `part()`; `check()`
    raises them all at once. A part that failed leaves its result unset: what depends on it is
    validated once it is mended (a linter's rule: no error that is only the echo of another)."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    @contextmanager
    def part(self, prefix: str = "") -> Iterator[None]:
        try:
            yield
        except Said:
            pass
        except FieldError as error:
            self.errors += (error.under(prefix) if prefix else error).each()

    def typed(self, table: str, values: dict[str, Any],
              allowed: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
        """The keys of `values` that are among `allowed` and of their type; each other key is
        an error of this collection (`table.key`: unknown, or of the wrong type)."""
        fine = {}
        for key, item in values.items():
            with self.part():
                _check_type(f"{table}.{key}", key, item, allowed)
                fine[key] = item
        return fine

    def check(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise FieldErrors(self.errors)


class ScenarioError(FieldError):
    """A FieldError anchored to its file (and the line of its field, where the text is known);
    the message names the file, the line, the field and what is allowed. `errors`: every single
    error it says (one, or all of a file's)."""

    def __init__(self, path: Path | str, where: str, problem: str, line: int | None = None) -> None:
        super().__init__(where, problem)
        self.path, self.where, self.line = str(path), where, line
        self.errors: list[ScenarioError] = [self]
        self.args = (f"{path}{f':{line}' if line else ''}: {where}: {problem}",)

    def each(self) -> list[FieldError]:
        return list(self.errors)

    def headed(self, head: str) -> str:
        """`head: <the error>`; for several, `head:` and then a line for each."""
        return f"{head}: {self}" if len(self.errors) == 1 else f"{head}:\n{self}"


class ScenarioErrors(ScenarioError):
    """Several errors of one file, in the order of their lines."""

    def __init__(self, errors: list[ScenarioError]) -> None:
        first = errors[0]
        super().__init__(first.path, first.where, first.problem, first.line)
        self.errors = errors
        self.args = ("\n".join(str(error) for error in errors),)


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
def anchored(path: Path | str, text: str | None = None) -> Iterator[None]:
    """Field errors raised inside are errors of the file `path` (ScenarioError), each with the
    line of its field in `text` (the file's TOML) where it can be found."""
    try:
        yield
    except ScenarioError:
        raise
    except FieldError as error:
        lines = fields_lines(text) if text is not None else {}
        anchored_errors = [ScenarioError(path, single.field, single.problem, line_of(lines, single.field))
                           for single in error.each()]
        anchored_errors.sort(key=lambda e: (e.line is None, e.line or 0))   # the file's own last
        raise (anchored_errors[0] if len(anchored_errors) == 1
               else ScenarioErrors(anchored_errors)) from None


_BARE = r"[A-Za-z0-9_-]+"
_KEY = rf"(?:{_BARE}|\"[^\"\n]*\"|'[^'\n]*')"
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_INLINE = re.compile(rf"[{{,]\s*({_DOTTED})\s*=")


def _parts(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(rf"{_KEY}", dotted)]


def fields_lines(text: str) -> dict[str, int]:
    """Where each field of a TOML text is first written: its dotted name as the validators name
    fields (arrays of tables indexed: `step[2].expect.ping`) -> line number (1-based). Keys of
    inline tables are found on their line; multi-line strings are skipped."""
    lines: dict[str, int] = {}
    table: list[str] = []
    counts: dict[str, int] = {}
    in_string = False
    for number, line in enumerate(text.splitlines(), 1):
        if in_string:
            in_string = (line.count('"""') + line.count("'''")) % 2 == 0
            continue
        header = _HEADER.match(line)
        if header:
            parts = _parts(header[2])
            if header[1] == "[[":
                name = ".".join(parts)
                counts[name] = counts.get(name, -1) + 1
                parts = [*parts[:-1], f"{parts[-1]}[{counts[name]}]"]
            table = parts
            _record(lines, table, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            path = [*table, *_parts(assign[1])]
            _record(lines, path, number)
            rest = line[assign.end():]
            for inner in _INLINE.finditer(rest):
                _record(lines, [*path, *_parts(inner[1])], number)
            if (rest.count('"""') + rest.count("'''")) % 2 == 1:
                in_string = True
    return lines


def _record(lines: dict[str, int], path: list[str], number: int) -> None:
    for end in range(1, len(path) + 1):
        lines.setdefault(".".join(path[:end]), number)


def line_of(lines: dict[str, int], field: str) -> int | None:
    """The line of `field` (or of the nearest enclosing field that is written) in `lines`."""
    name = field[1:-1] if field.startswith("[") and field.endswith("]") else field   # "[table]"
    while name:
        if name in lines:
            return lines[name]
        name = name.rpartition(".")[0]
    return None


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
    """Every key of `values` is one of `allowed` and of its type; all the keys that are not are
    said at once."""
    found = Collected()
    found.typed(table, values, allowed)
    found.check()


def _check_type(where: str, key: str, item: Any, allowed: dict[str, type | tuple[type, ...]]) -> None:
    if key not in allowed:
        raise FieldError(where, unknown("key", key, allowed))
    expected = allowed[key]
    if isinstance(item, bool) and expected in (int, (int, float)) or not isinstance(item, expected):
        kinds = (expected,) if isinstance(expected, type) else expected
        kind = ("a number" if kinds == (int, float)
                else " or ".join(_KIND_NAMES.get(t, t.__name__) for t in kinds))
        raise FieldError(where, f"must be {kind}, got {shown(item)}")


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "an array", dict: "a table"}


def shown(value: Any, limit: int = 40) -> str:
    """A value as the error shows it, as a TOML file writes it (a string quoted, true, [1, 2],
    { a = 1 }), cut short."""
    text = toml_value(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def toml_value(value: Any, *, exact: bool = False) -> str:
    """`value` as a TOML file writes it. `exact`: TOML that tomllib reads back equal (strings as
    basic strings, keys quoted where not bare; TypeError for what TOML cannot hold); otherwise as
    an error shows it (strings as Python writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item, exact=exact) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(key) if exact else key} = {toml_value(item, exact=exact)}"
                                for key, item in value.items()) + " }"
    if exact and isinstance(value, str):
        return json.dumps(value)   # a JSON string is a TOML basic string
    if exact and not isinstance(value, int | float):
        raise TypeError(f"no TOML for {type(value).__name__}")
    return repr(value)


def toml_key(name: str) -> str:
    return name if re.fullmatch(_BARE, name) else json.dumps(name)


def toml_document(data: dict[str, Any]) -> str:
    """`data` (tables of strings, numbers, booleans, lists and inline tables; lists of tables as
    [[arrays]]) as TOML text that tomllib reads back equal (tomllib reads TOML, never writes it)."""
    lines: list[str] = []

    def pairs(table: dict[str, Any]) -> list[str]:
        return [f"{toml_key(k)} = {toml_value(v, exact=True)}" for k, v in table.items()]

    for name, value in data.items():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for item in value:
                lines += ["", f"[[{toml_key(name)}]]", *pairs(item)]
        elif isinstance(value, dict):
            lines += ["", f"[{toml_key(name)}]", *pairs(value)]
        else:
            lines.insert(0, f"{toml_key(name)} = {toml_value(value, exact=True)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def choice(where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise FieldError(where, not_allowed(value, allowed))
    return str(value)


def strings(where: str, values: list[Any]) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise FieldError(where, f"must be a list of strings, got {value!r}")
    return values


def part_of(text: str) -> tuple[int, int]:
    """`K/N` (a shard: part K of N) as (K, N); ValueError unless 1 <= K <= N."""
    k, sep, n = text.partition("/")
    if not sep or not k.isdigit() or not n.isdigit() or not 1 <= int(k) <= int(n):
        raise ValueError(f"{text!r}: K/N, part K of N (1 <= K <= N), e.g. 2/3")
    return int(k), int(n)


def dealt(items: Iterable[T], part: tuple[int, int]) -> list[T]:
    """Part K of N of `items`, dealt round-robin: each item in exactly one part, the parts' sizes
    within one of each other."""
    k, n = part
    return [item for index, item in enumerate(items) if index % n == k - 1]

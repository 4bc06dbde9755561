"""Typed, problem-collecting access to parsed TOML tables, for :mod:`envman.matrix.load`.

A :class:`Reader` reads one table; a wrong type, a bad version or an unknown key is recorded
in :class:`Problems` with its key path (and so its line), instead of stopping at the first.
"""

from __future__ import annotations

import enum
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envman.errors import ConfigError
from envman.matrix.lines import LineIndex
from envman.matrix.lines import Path as KeyPath

E = TypeVar("E", bound=enum.Enum)
MISSING = object()
# An integer field with no range of its own stays below this: no 64-bit count is meaningful.
MAX_INTEGER = 2**31 - 1
# A name that becomes a folder or file name (models/<model>, envs/<engine>-…-<variant>-…).
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# A hub repo id: owner/name (or name), each part as the hub allows, no '..' or '--', ≤ 96 characters.
_REPO_PART = _NAME


def decode(path: Path, raw: bytes) -> str:
    """``raw`` as UTF-8, or a ConfigError naming ``file:line`` of the first byte that is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} is not UTF-8 text",
            problems=[f"{path.name}:{line}: byte 0x{raw[error.start]:02x} is not UTF-8 (the file must be UTF-8)"],
            hint="save the file as UTF-8",
        ) from None


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """``text`` (the content of ``path``) as TOML, or a ConfigError naming ``file:line``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        # "at end of document" carries no line: that is the last one
        line = match.group(1) if match else str(max(1, len(text.splitlines())))
        raise ConfigError(
            f"{path} is not valid TOML",
            problems=[f"{path.name}:{line} {error}"],
            hint="check quoting and brackets on that line",
        ) from None


def read_toml(path: Path) -> dict[str, Any]:
    """Read and parse a TOML file; unreadable, not UTF-8 or not TOML is a ConfigError (exit 2)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    return parse_toml(decode(path, raw), path)


def is_name(text: str) -> bool:
    """A name that is safe as one folder name: letters, digits, '.', '_', '-', no '..'."""
    return bool(_NAME.fullmatch(text)) and ".." not in text


def is_repo_id(text: str) -> bool:
    parts = text.split("/")
    return (
        len(text) <= 96
        and 1 <= len(parts) <= 2
        and all(_REPO_PART.fullmatch(part) for part in parts)
        and ".." not in text
        and "--" not in text
    )


def is_relative_file(text: str) -> bool:
    """A path inside a repository or folder: relative, POSIX, no '..', '.', '~' or empty parts."""
    if not text or "\\" in text or "\0" in text or text.startswith(("/", "~")):
        return False
    return all(part not in ("", ".", "..") for part in text.split("/"))


class Problems:
    """Collects problems with their key path; turns them into file:line messages."""

    def __init__(self, path: Path, index: LineIndex) -> None:
        self.path = path
        self.index = index
        self.items: list[tuple[int, str]] = []

    def add(self, where: KeyPath, message: str) -> None:
        line = self.index.line(where) or 0
        dotted = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in where).replace(".[", "[")
        place = f"{self.path.name}:{line}" if line else self.path.name
        self.items.append((line, f"{place} {dotted}: {message}"))

    def raise_if_any(self) -> None:
        if self.items:
            ordered = [text for _, text in sorted(self.items, key=lambda item: item[0])]
            count = len(ordered)
            raise ConfigError(
                f"{self.path} has {count} problem{'s' if count > 1 else ''}",
                problems=ordered,
                hint="fix the keys above; `envman matrix --check` re-validates",
            )


class Reader:
    """Typed access to one TOML table, recording problems instead of raising."""

    def __init__(self, problems: Problems, data: Mapping[str, Any], where: KeyPath) -> None:
        self.p = problems
        self.data = data
        self.where = where
        self._known: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self._known.add(key)
        value = self.data.get(key, MISSING)
        if value is MISSING:
            if default is MISSING:
                self.p.add(self.where + (key,), "is required")
            return MISSING
        return value

    def _type(self, key: str, value: Any, kind: type | tuple[type, ...], name: str) -> bool:
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.p.add(self.where + (key,), f"expected {name}, got {value!r}")
            return False
        if not isinstance(value, kind):
            self.p.add(self.where + (key,), f"expected {name}, got {value!r}")
            return False
        return True

    def text(self, key: str, default: Any = MISSING) -> Any:
        value = self._get(key, default)
        if value is MISSING:
            return default if default is not MISSING else ""
        return value if self._type(key, value, str, "a string") else (default if default is not MISSING else "")

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, default)
        if value is MISSING:
            return default
        return value if self._type(key, value, bool, "true or false") else default

    def integer(self, key: str, default: Any = MISSING, minimum: int = 0, maximum: int = MAX_INTEGER) -> int:
        value = self._get(key, default)
        if value is MISSING:
            return int(default) if default is not MISSING else 0
        if not self._type(key, value, int, "an integer"):
            return 0
        if not minimum <= value <= maximum:
            self.p.add(self.where + (key,), f"must be between {minimum} and {maximum}, got {value}")
            return minimum
        return int(value)

    def number(self, key: str, default: Any = MISSING, low: float = 0.0, high: float = 1e9) -> float:
        value = self._get(key, default)
        if value is MISSING:
            return float(default) if default is not MISSING else 0.0
        if not self._type(key, value, (int, float), "a number"):
            return 0.0
        if not math.isfinite(value):  # TOML has nan and inf; a plan computed from them is nonsense
            self.p.add(self.where + (key,), f"must be a finite number, got {value}")
            return low
        if not low <= value <= high:
            self.p.add(self.where + (key,), f"must be between {low} and {float(high)}, got {value}")
            return low
        return float(value)

    def name(self, name: str) -> str:
        """A table key that becomes part of a path (a model, an engine, a variant)."""
        if not is_name(name):
            self.p.add(self.where, f"{name!r} is not a name (letters, digits, '.', '_', '-'; no '/' or '..')")
        return name

    def repo(self, key: str) -> str:
        value = self.text(key)
        if value and not is_repo_id(value):
            self.p.add(self.where + (key,), f"{value!r} is not a hub repo id (owner/name)")
        return str(value)

    def relative_file(self, key: str) -> str | None:
        value = self.text(key, None)
        if value is not None and not is_relative_file(value):
            self.p.add(self.where + (key,), f"{value!r} is not a relative path inside the repository")
        return None if value is None else str(value)

    def strs(self, key: str, default: tuple[str, ...] | None = ()) -> tuple[str, ...]:
        value = self._get(key, MISSING if default is None else default)
        if value is MISSING:
            return ()
        if isinstance(value, tuple):
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.p.add(self.where + (key,), f"expected a list of strings, got {value!r}")
            return ()
        return tuple(value)

    def table(self, key: str, required: bool = False) -> Mapping[str, Any]:
        value = self._get(key, MISSING if required else {})
        if value is MISSING:
            return {}
        if not isinstance(value, dict):
            self.p.add(self.where + (key,), f"expected a table, got {value!r}")
            return {}
        return value

    def tables(self, key: str) -> list[Mapping[str, Any]]:
        value = self._get(key, [])
        if value is MISSING:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.p.add(self.where + (key,), f"expected a list of tables, got {value!r}")
            return []
        return value

    def env(self, key: str) -> dict[str, str]:
        table = self.table(key)
        result: dict[str, str] = {}
        for name, value in table.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                self.p.add(self.where + (key, name), "is not a valid environment variable name")
            elif not isinstance(value, str):
                self.p.add(self.where + (key, name), f"expected a string value, got {value!r}")
            else:
                result[name] = value
        return result

    def version(self, key: str, required: bool = False) -> Version | None:
        text = self.text(key, MISSING if required else None)
        return parse_version(self.p, self.where + (key,), text)

    def versions(self, key: str) -> tuple[Version, ...]:
        out = []
        for i, text in enumerate(self.strs(key)):
            parsed = parse_version(self.p, self.where + (key, i), text)
            if parsed is not None:
                out.append(parsed)
        return tuple(sorted(out))

    def spec(self, key: str, default: Any = MISSING) -> SpecifierSet:
        text = self.text(key, default)
        try:
            return SpecifierSet(text or "")
        except InvalidSpecifier:
            self.p.add(self.where + (key,), f"{text!r} is not a version range (PEP 440, e.g. '>=0.8.0,<0.8.3')")
            return SpecifierSet()

    def enum(self, key: str, kind: type[E], default: Any = MISSING) -> E:
        text = self.text(key, default)
        return parse_enum(self.p, self.where + (key,), kind, text) or next(iter(kind))

    def enums(self, key: str, kind: type[E]) -> frozenset[E]:
        out: set[E] = set()
        for i, text in enumerate(self.strs(key)):
            value = parse_enum(self.p, self.where + (key, i), kind, text)
            if value is not None:
                out.add(value)
        return frozenset(out)

    def done(self) -> None:
        """Unknown keys are problems too: a typo must not be silently ignored."""
        for key in self.data:
            if key not in self._known:
                import difflib

                close = difflib.get_close_matches(key, sorted(self._known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.p.add(self.where + (key,), f"unknown key{hint}")


def parse_version(problems: Problems, where: KeyPath, text: Any) -> Version | None:
    if text is None or text == "":
        return None
    try:
        return Version(text)
    except InvalidVersion:
        problems.add(where, f"{text!r} is not a version")
        return None


def parse_enum(problems: Problems, where: KeyPath, kind: type[E], text: Any) -> E | None:
    try:
        return kind(text)
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)
        problems.add(where, f"{text!r} is not one of: {choices}")
        return None

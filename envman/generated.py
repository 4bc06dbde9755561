"""Files envman generates and commits (lockfiles, Dockerfiles, the CI workflow), and the one check
that says which are missing, stale or orphaned.

Each generator says what it expects: the path, how to tell whether the file there is current,
and the command that regenerates it. :func:`check` does the rest the same way for all of them,
so `envman lock --check`, `envman dockerfile --check` and `envman ci workflow --check` report
alike and CI can trust each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Expected:
    """A file a generator would write: ``stale(text)`` says why the committed text is not current."""

    path: Path
    fix: str  # the command that regenerates it
    stale: Callable[[str], str | None]


def same_text(wanted: str, why: str) -> Callable[[str], str | None]:
    """The usual verdict: current when byte-identical to a fresh rendering."""
    return lambda text: None if text == wanted else why


def check(
    expected: Iterable[Expected], *, orphans_in: Path | None = None, pattern: str = "*", orphan_hint: str = ""
) -> list[Problem]:
    """Missing, stale and (when ``orphans_in`` is given: a check of everything) orphaned files."""
    problems: list[Problem] = []
    names: set[Path] = set()
    for item in expected:
        names.add(item.path.resolve())
        try:
            text = item.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(Problem(item.path, f"missing: run `{item.fix}`"))
            continue
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(item.path, f"unreadable ({error}): run `{item.fix}`"))
            continue
        why = item.stale(text)
        if why:
            problems.append(Problem(item.path, f"{why}; run `{item.fix}`" if "run `" not in why else why))
    if orphans_in is not None and orphans_in.is_dir():
        for path in sorted(orphans_in.glob(pattern)):
            if path.resolve() not in names:
                problems.append(Problem(path, f"orphaned: {orphan_hint}"))
    return problems

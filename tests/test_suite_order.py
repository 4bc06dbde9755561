"""The suite's own scheduling data names files that exist (a renamed long file would silently
fall back to the end of the run)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LONG_FILES

REPO = Path(__file__).resolve().parents[1]


def test_the_long_files_exist_and_are_listed_once() -> None:
    assert [f for f in LONG_FILES if not (REPO / f).is_file()] == []
    assert len(set(LONG_FILES)) == len(LONG_FILES)

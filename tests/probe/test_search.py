from __future__ import annotations

from collections.abc import Callable

import pytest

from envman.probe.search import support_window

RELEASES = [f"0.{minor}.0" for minor in range(20)]


def answers(supported: set[str]) -> tuple[list[str], Callable[[str], bool]]:
    asked: list[str] = []

    def supports(version: str) -> bool:
        asked.append(version)
        return version in supported

    return asked, supports


@pytest.mark.parametrize("floor", range(1, 20))
def test_floor_is_supported_and_the_release_before_is_not(floor: int) -> None:
    asked, supports = answers(set(RELEASES[floor:]))
    window = support_window(RELEASES, supports)
    assert window.first == floor
    assert window.last == len(RELEASES) - 1
    assert window.checked[floor] is True
    assert window.checked[floor - 1] is False
    assert len(asked) == len(set(asked)) <= 7  # bisection, each release read once


def test_supported_since_the_first_release() -> None:
    _, supports = answers(set(RELEASES))
    window = support_window(RELEASES, supports)
    assert (window.first, window.last) == (0, 19)
    assert window.checked == {19: True, 0: True}


def test_never_supported() -> None:
    _, supports = answers(set())
    window = support_window(RELEASES, supports)
    assert window.first is None
    assert window.last is None
    assert 0 in window.checked
    assert 19 in window.checked


@pytest.mark.parametrize(("first", "last"), [(3, 9), (0, 4), (12, 18), (7, 7)])
def test_support_that_was_removed_later(first: int, last: int) -> None:
    _, supports = answers(set(RELEASES[first : last + 1]))
    window = support_window(RELEASES, supports)
    assert (window.first, window.last) == (first, last)
    assert window.checked[last + 1] is False
    if first:
        assert window.checked[first - 1] is False


def test_empty_release_list() -> None:
    window = support_window([], lambda _: True)
    assert window.first is None
    assert window.checked == {}

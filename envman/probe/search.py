"""Where support starts (and, if it was dropped, ends) in an ordered list of releases.

Support is assumed to be one unbroken run of releases. Bisection finds each edge and
always leaves both sides of it examined: the floor F is a release that supports the
family, and the release just before F (when there is one) does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

_SAMPLES = 8  # how many releases are tried when the newest one lacks support


@dataclass
class Window(Generic[T]):
    """The run of releases that support it: ``first``..``last`` (indexes), or none."""

    first: int | None = None
    last: int | None = None
    checked: dict[int, bool] = field(default_factory=dict)


def support_window(items: Sequence[T], supports: Callable[[T], bool]) -> Window[T]:
    window: Window[T] = Window()

    def check(index: int) -> bool:
        if index not in window.checked:
            window.checked[index] = supports(items[index])
        return window.checked[index]

    newest = len(items) - 1
    if newest < 0:
        return window
    if check(newest):
        window.last = newest
    else:
        # Support may have been dropped: look for any release that has it, newest first.
        step = max(1, len(items) // _SAMPLES)
        samples = sorted(set(range(newest, -1, -step)) | {0}, reverse=True)
        found = next((i for i in samples if check(i)), None)
        if found is None:
            return window
        after = min(i for i, ok in window.checked.items() if i > found and not ok)
        window.last = _edge(found, after, check) - 1
    top = window.last
    unsupported_below = [i for i, ok in window.checked.items() if i < top and not ok]
    if unsupported_below:
        window.first = _edge(max(unsupported_below), top, check)
    elif check(0):
        window.first = 0
    else:
        window.first = _edge(0, top, check)
    return window


def _edge(low: int, high: int, check: Callable[[int], bool]) -> int:
    """The first index after ``low`` whose answer differs from ``low``'s, up to ``high``.

    ``check(low) != check(high)`` on entry; both neighbours of the edge end up checked.
    """
    low_answer = check(low)
    while high - low > 1:
        middle = (low + high) // 2
        if check(middle) == low_answer:
            low = middle
        else:
            high = middle
    return high

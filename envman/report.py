"""How the library tells the user what it is doing. The library never prints.

The CLI plugs in a rich reporter (spinners on stderr); tests and ``--json`` runs use
:class:`NullReporter` or :class:`RecordingReporter`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Reporter(Protocol):
    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def detail(self, message: str) -> None:
        """Shown only with -v."""

    def status(self, message: str) -> AbstractContextManager[None]:
        """A long step (a spinner while it runs)."""


class NullReporter:
    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def detail(self, message: str) -> None:
        pass

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        yield


class RecordingReporter(NullReporter):
    """Keeps every message, for tests."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.messages.append(("info", message))

    def warn(self, message: str) -> None:
        self.messages.append(("warn", message))

    def detail(self, message: str) -> None:
        self.messages.append(("detail", message))

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        self.messages.append(("status", message))
        yield

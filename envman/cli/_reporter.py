"""The rich reporter: spinners and messages on stderr, details only with -v."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.markup import escape

from envman.cli._console import err


class RichReporter:
    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose

    def info(self, message: str) -> None:
        err.print(escape(message), highlight=False)

    def warn(self, message: str) -> None:
        err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)

    def detail(self, message: str) -> None:
        if self.verbose:
            err.print(f"[dim]{escape(message)}[/]", highlight=False)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        if self.verbose or not err.is_terminal:
            err.print(f"{escape(message)} …", highlight=False)
            yield
            return
        with err.status(escape(message)):
            yield

"""The command line: thin typer commands over the library.

Only this package imports typer and rich. Each verb lives in its own module and is
registered here; errors are mapped to output and exit status in ``_app.run``.
"""

from __future__ import annotations

from envman.cli._app import app, main

__all__ = ["app", "main"]

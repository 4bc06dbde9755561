"""Consoles: results on stdout, progress and messages on stderr."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Stable JSON on stdout: sorted keys are not used, field order is the contract."""
    print(json.dumps(data, indent=2, default=str))

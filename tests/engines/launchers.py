"""envman's launchers as modules: they run in an engine's environment (``python -m NAME``), so
tests import them as files, by the name python -m finds them under there."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FOLDER = Path(__file__).resolve().parents[2] / "envman" / "engines" / "launchers"


def load(name: str) -> ModuleType:
    """``envman/engines/launchers/NAME.py``, imported once as ``NAME``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FOLDER / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

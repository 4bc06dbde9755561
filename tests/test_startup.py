"""`envman --help` and `envman plan` must not import docker, pynvml or engine code at start."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("docker", "pynvml", "vllm", "xllamacpp", "torch", "transformers", "tomlkit")


def imported_after(argv: list[str]) -> set[str]:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['envman', *{argv!r}]\n"
        "try:\n    runpy.run_module('envman', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return set(result.stderr.split())


@pytest.mark.parametrize("argv", [["--help"], ["plan", "smoke-gemma3", "--hardware", "A100-40GBx2", "--json"]])
def test_no_heavy_imports(argv: list[str]) -> None:
    modules = imported_after(argv)
    assert "envman.cli._app" in modules  # the probe really ran envman
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "envman", "--help"], capture_output=True, text=True, check=True)
    for command in ("plan", "doctor", "matrix", "models", "probe", "diagnose"):
        assert command in result.stdout

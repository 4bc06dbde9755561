"""`envman --help` and `envman plan` must not import docker, pynvml or engine code at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = (
    "docker", "pynvml", "vllm", "xllamacpp", "torch", "transformers", "tomlkit", "pydantic",
    "numpy", "gguf", "huggingface_hub", "yaml", "psutil",
)  # fmt: skip


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


def registered_commands() -> set[str]:
    """The top-level commands the typer app has once every verb module is registered."""
    import typer.main

    from envman.cli._app import _register, app

    _register()
    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_verb_module_is_registered() -> None:
    registered_commands()
    verbs = {p.stem for p in (REPO / "envman" / "cli").glob("*.py") if not p.stem.startswith("_")}
    assert verbs
    assert {v for v in verbs if f"envman.cli.{v}" not in sys.modules} == set()


def test_help_lists_every_command() -> None:
    commands = registered_commands()
    assert {"plan", "build", "up", "envs"} <= commands  # the app really was read
    result = subprocess.run([sys.executable, "-m", "envman", "--help"], capture_output=True, text=True, check=True)
    section = result.stdout.split("\nCommands:\n", 1)[1]
    listed = {line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()}
    assert listed == commands

"""Start-up latency of the commands people type most: `envman --help`, `envman plan`, and a
no-op `envman build` (the environment exists).

Usage: python bench/startup.py [--runs N] [--against PYTHON]

Each command runs N times in a fresh process; the script prints min / median / max wall
seconds and the modules a plan imported that it should not (docker, engines, torch).
``--against`` names a second interpreter with another envman installed (e.g. a venv of the
previous commit); the two alternate run by run, so a changing load slows both alike.

envman's bytecode is compiled first: with PYTHONDONTWRITEBYTECODE=1 (set on some machines)
every run would otherwise compile envman's modules from source, ~0.1 s that a user's
installed envman does not pay.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "envman --help": ["--help"],
    "envman plan smoke-gemma3": ["plan", "smoke-gemma3", "--json"],
    "envman plan gemma-3-27b-it --hardware A100-40GBx2": ["plan", "gemma-3-27b-it", "--hardware", "A100-40GBx2"],
    "envman build smoke-gemma3 --engine xllamacpp (no-op)": ["build", "smoke-gemma3", "--engine", "xllamacpp"],
}
FORBIDDEN = ("docker", "vllm", "xllamacpp", "torch", "transformers", "pydantic")


def run(python: str, args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-m", "envman", *args], check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def imported_by_plan(python: str, env: dict[str, str]) -> list[str]:
    probe = (
        "import sys, runpy; sys.argv = ['envman', 'plan', 'smoke-gemma3', '--json'];\n"
        "try:\n    runpy.run_module('envman', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print(' '.join(m for m in {FORBIDDEN!r} if m in sys.modules), file=sys.stderr)"
    )
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False, env=env)
    return result.stderr.split()


def prepare(python: str, env: dict[str, str]) -> None:
    """Compile envman's bytecode and build the xllamacpp environment (the no-op build's target)."""
    where = subprocess.run(
        [python, "-c", "import envman, pathlib; print(pathlib.Path(envman.__file__).parent)"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.strip()  # fmt: skip
    subprocess.run([python, "-m", "compileall", "-q", where], check=True, capture_output=True)
    subprocess.run([python, "-m", "envman", "build", "smoke-gemma3", "--engine", "xllamacpp"], check=True,
                   capture_output=True, env=env)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--against", help="another Python with another envman, timed alternately")
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="envman-bench-"))
    # Run from a folder without an envman package in it, so each interpreter imports its own.
    env = dict(os.environ, ENVMAN_HOME=str(home), ENVMAN_MATRIX=str(REPO / "matrix.toml"),
               ENVMAN_CONFIG=str(home / "no-config.toml"))  # fmt: skip
    pythons = {"this": sys.executable} | ({"against": options.against} if options.against else {})
    os.chdir(home)
    for python in pythons.values():
        prepare(python, env)
    for label, args in COMMANDS.items():
        times: dict[str, list[float]] = {name: [] for name in pythons}
        for python in pythons.values():
            run(python, args, env)  # warm the file cache
        for _ in range(options.runs):
            for name, python in pythons.items():
                times[name].append(run(python, args, env))
        for name, t in times.items():
            print(f"{label:55s} {name:8s} min {min(t):.3f}s  median {statistics.median(t):.3f}s  "
                  f"max {max(t):.3f}s  ({options.runs} runs)")  # fmt: skip
    for name, python in pythons.items():
        heavy = imported_by_plan(python, env)
        print(f"heavy modules imported by plan ({name}):", ", ".join(heavy) or "none")


if __name__ == "__main__":
    main()

"""Start-up latency of the commands people type most: `envman --help` and `envman plan`.

Usage: python bench/startup.py [--runs N]

Each command runs N times in a fresh process; the script prints min / median / max wall
seconds and the modules a plan imported that it should not (docker, engines, torch).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "envman --help": ["--help"],
    "envman plan smoke-gemma3": ["plan", "smoke-gemma3", "--json"],
    "envman plan gemma-3-27b-it --hardware A100-40GBx2": ["plan", "gemma-3-27b-it", "--hardware", "A100-40GBx2"],
}
FORBIDDEN = ("docker", "vllm", "xllamacpp", "torch", "transformers")


def measure(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "envman", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def imported_by_plan() -> list[str]:
    probe = (
        "import sys, runpy; sys.argv = ['envman', 'plan', 'smoke-gemma3', '--json'];\n"
        "try:\n    runpy.run_module('envman', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print(' '.join(m for m in {FORBIDDEN!r} if m in sys.modules), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    return result.stderr.split()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    measure(["--help"], 1)  # warm the bytecode cache
    for label, args in COMMANDS.items():
        t = measure(args, runs)
        print(f"{label:55s} min {min(t):.3f}s  median {statistics.median(t):.3f}s  max {max(t):.3f}s  ({runs} runs)")
    heavy = imported_by_plan()
    print("heavy modules imported by plan:", ", ".join(heavy) or "none")


if __name__ == "__main__":
    main()

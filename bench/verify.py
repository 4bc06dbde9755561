"""Sweep speed: what a verify cell costs once its environment exists, against the engine's own start.

Usage: python bench/verify.py [--runs N] [--home DIR] [--cells N]

- engine: the xllamacpp launcher started by hand with the environment's interpreter, until
  /health answers and one chat completion returns (the engine's own start and answer).
- cell: `envman verify --engine xllamacpp --family llama --versions V --fresh`, a whole
  process running one cell (plan, lock and environment reused, smoke, evidence, state).
- resumed: the same without --fresh: the cell is proven already (the state's lookup).
- sweep: `--versions` over the newest releases × 7 families with --jobs 2, --fresh, cells per
  minute and the time 100 cells would take at that rate.

Medians of whole processes; the environments are built once first, outside the timing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VERSION = "2026.10.11549"


def env_for(home: Path) -> dict[str, str]:
    return dict(os.environ, ENVMAN_HOME=str(home), ENVMAN_MATRIX=str(REPO / "matrix.toml"))


def envman(home: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "envman", *args], env=env_for(home), capture_output=True, text=True,
                         check=False)  # fmt: skip
    if out.returncode not in (0, 1):
        raise SystemExit(f"envman {' '.join(args)} exited {out.returncode}:\n{out.stderr[-2000:]}")
    return time.perf_counter() - start, out.stdout


def engine_alone(home: Path, python: Path, model: Path) -> float:
    """Start the launcher, wait for /health, ask one completion, stop: seconds."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launchers = REPO / "envman" / "engines" / "launchers"
    argv = [str(python), "-m", "envman_xllamacpp_server", "--model", str(model), "--served-model-name", "m",
            "--port", str(port), "--ctx-size", "4096"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=dict(os.environ, PYTHONPATH=str(launchers)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "temperature": 0}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            json.load(r)
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--home", type=Path, default=None, help="an ENVMAN_HOME with the environments built")
    parser.add_argument("--cells", type=int, default=28, help="cells of the sweep measurement (7 families each)")
    options = parser.parse_args()
    home = options.home or Path(tempfile.mkdtemp(prefix="envman-bench-"))
    cell = ["verify", "--engine", "xllamacpp", "--family", "llama", "--versions", VERSION]
    envman(home, *cell, "--fresh")  # builds the environment and the model once, outside the timing
    python = next((home / "envs").glob(f"xllamacpp-{VERSION}-cpu-*")) / "bin" / "python"
    model = next((home / "models" / "smoke-llama").glob("*/*.gguf"))

    alone = [engine_alone(home, python, model) for _ in range(options.runs)]
    cells = [envman(home, *cell, "--fresh")[0] for _ in range(options.runs)]
    resumed = [envman(home, *cell)[0] for _ in range(options.runs)]
    print(f"engine alone (start, /health, one answer): median {statistics.median(alone):.2f}s")
    print(f"one cell, whole envman process:           median {statistics.median(cells):.2f}s "
          f"(envman's share {statistics.median(cells) - statistics.median(alone):.2f}s)")  # fmt: skip
    print(f"one cell proven earlier (resumed):        median {statistics.median(resumed):.2f}s")

    versions = "2026.10.11549,2026.9.11063,2026.8.10566,2026.7.10068,2026.6.9713,2026.5.9294"
    chosen = ",".join(versions.split(",")[: max(1, options.cells // 7)])
    envman(home, "verify", "--engine", "xllamacpp", "--versions", chosen, "--jobs", "2")  # environments built
    wall, out = envman(home, "verify", "--engine", "xllamacpp", "--versions", chosen, "--jobs", "2", "--fresh")
    ran = sum(line.startswith(("PASS", "FAIL")) for line in out.splitlines())
    print(f"sweep of {ran} cells (--jobs 2, environments built): {wall:.1f}s, {ran / wall * 60:.1f} cells/min, "
          f"100 cells in {100 * wall / max(ran, 1) / 60:.1f} min")  # fmt: skip


if __name__ == "__main__":
    main()

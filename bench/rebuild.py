"""`envman build --rebuild` against raw uv on the same lock: the whole envman process vs
`uv venv` + `uv pip sync --require-hashes` (the same flags envman passes), warm uv cache.

Usage: python bench/rebuild.py [--runs N] [--engine xllamacpp]

The two alternate run by run, so a machine whose load changes (2 shared cores) slows both
alike; the script prints the medians and their ratio (the goal: at most 2x).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--engine", default="xllamacpp", help="not vllm: its 3 GB install swamps the overhead")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="envman-bench-"))
    env = dict(os.environ, ENVMAN_HOME=str(work / "home"), ENVMAN_MATRIX=str(REPO / "matrix.toml"),
               ENVMAN_CONFIG=str(work / "no-config.toml"))  # fmt: skip
    build = [sys.executable, "-m", "envman", "build", "smoke-gemma3", "--engine", options.engine, "--json"]
    try:
        first = json.loads(subprocess.run(build, env=env, capture_output=True, text=True, check=True).stdout)
        from envman.lock.uv import find_uv

        uv, lock, python = find_uv(), str(first["lockfile"]), str(first["python_version"])
        raw_env = dict(env, UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1")
        target = work / "raw"

        def raw() -> None:
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run([uv, "venv", "-q", str(target), "--python", python, "--python-preference", "only-system",
                            "--no-config"], env=raw_env, check=True)  # fmt: skip
            subprocess.run([uv, "pip", "sync", "-q", lock, "--python", str(target / "bin" / "python"),
                            "--require-hashes"], env=raw_env, check=True)  # fmt: skip

        def rebuild() -> None:
            subprocess.run([*build, "--rebuild"], env=env, capture_output=True, check=True)

        times: dict[str, list[float]] = {"raw uv": [], "envman build --rebuild": []}
        for _ in range(options.runs):
            for label, step in (("raw uv", raw), ("envman build --rebuild", rebuild)):
                start = time.perf_counter()
                step()
                times[label].append(time.perf_counter() - start)
        medians = {label: statistics.median(t) for label, t in times.items()}
        for label, t in times.items():
            print(f"{label:24s} median {medians[label]:.3f}s  min {min(t):.3f}s  ({options.runs} runs)")
        ratio = medians["envman build --rebuild"] / medians["raw uv"]
        print(f"ratio {ratio:.2f}x ({options.engine}, {Path(lock).name})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Environment build speed: no-op rebuild, envman+uv vs venv+pip, and a second environment.

Usage: python bench/build.py [--runs N]

1. No-op rebuild: `envman build smoke-gemma3 --engine xllamacpp` when the environment exists
   (whole command, and the build step alone as reported in --json "seconds").
2. The xllamacpp environment with a warm uv cache, against `python -m venv` + `pip install`
   of the same pinned package (pip's cache warm too): the ratio.
3. A second environment from the same packages (another ENVMAN_HOME, same lock): seconds and
   the extra disk it used (free space before/after; uv hard-links files from its cache).
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
PIN = "xllamacpp==2026.10.11549"


def envman(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ENVMAN_HOME=str(home), ENVMAN_MATRIX=str(REPO / "matrix.toml"))
    return subprocess.run([sys.executable, "-m", "envman", *args], env=env, capture_output=True, text=True, check=True)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="envman-bench-"))
    try:
        home = work / "home"
        build = ("build", "smoke-gemma3", "--engine", "xllamacpp", "--json")
        envman(home, *build)  # warm: uv cache and the environment exist
        whole = [timed(lambda: envman(home, *build)) for _ in range(runs)]
        step = [json.loads(envman(home, *build).stdout)["seconds"] for _ in range(runs)]
        print(f"no-op rebuild: command median {statistics.median(whole):.3f}s, build step median "
              f"{statistics.median(step) * 1000:.1f} ms ({runs} runs)")  # fmt: skip

        fresh = []
        for i in range(runs):
            h = work / f"fresh{i}"
            fresh.append(timed(lambda h=h: envman(h, *build)))
        pip_times = []
        for i in range(runs):
            venv = work / f"pipvenv{i}"

            def pip_build(venv: Path = venv) -> None:
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
                subprocess.run([str(venv / "bin" / "pip"), "install", "-q", PIN], check=True, capture_output=True)

            pip_times.append(timed(pip_build))
        e, p = statistics.median(fresh), statistics.median(pip_times)
        print(f"xllamacpp environment, warm caches: envman {e:.2f}s, venv+pip {p:.2f}s, ratio {p / e:.1f}x")

        second_home = work / "second"
        before = free_bytes(work)
        seconds = timed(lambda: envman(second_home, *build))
        used = before - free_bytes(work)
        env_dir = next((second_home / "envs").glob("xllamacpp-*"))
        apparent = sum(f.stat().st_size for f in env_dir.rglob("*") if f.is_file() and not f.is_symlink())
        print(f"second environment from the same packages: {seconds:.2f}s, {used / 2**20:.1f} MiB of new disk "
              f"({apparent / 2**20:.1f} MiB of files in it)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

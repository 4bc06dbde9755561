"""Serving speed with the environment built: `envman smoke` end to end, and `envman up`'s overhead.

Usage: python bench/serve.py [--runs N] [--vllm]

- smoke: wall time of `envman smoke smoke-gemma3 --engine xllamacpp` (and vllm with --vllm),
  with envman's own share: total minus the engine's start-to-ready and the request.
- up: wall time of `envman up smoke-gemma3 --detach` until it returns ready, minus the
  engine's own start (process start to /health answering): envman's overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def envman(home: Path, *args: str) -> tuple[float, dict[str, object]]:
    env = dict(os.environ, ENVMAN_HOME=str(home), ENVMAN_MATRIX=str(REPO / "matrix.toml"))
    if Path("/opt/wheels").is_dir():  # this machine's PyTorch CPU wheels (see tests/envs/conftest.py)
        env |= {"ENVMAN_VLLM_CPU_FIND_LINKS": "/opt/wheels", "ENVMAN_VLLM_CPU_EXTRA_INDEX_URLS": ""}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "envman", *args], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vllm", action="store_true", help="also time vLLM on the CPU (about 2 minutes a run)")
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="envman-bench-"))
    engines = ["xllamacpp"] + (["vllm"] if options.vllm else [])
    for engine in engines:
        envman(home, "build", "smoke-gemma3", "--engine", engine, "--json")  # built once, outside the timing
        runs = options.runs if engine == "xllamacpp" else 1
        walls, shares = [], []
        for _ in range(runs):
            wall, data = envman(home, "smoke", "smoke-gemma3", "--engine", engine, "--json")
            timings = data["timings"]
            assert isinstance(timings, dict)
            engine_time = (timings.get("start_to_ready_s") or 0) + (timings.get("request_s") or 0)
            walls.append(wall)
            shares.append(wall - engine_time)
        print(f"smoke {engine}: median {statistics.median(walls):.2f}s wall, envman's share "
              f"{statistics.median(shares):.2f}s ({runs} runs)")  # fmt: skip
    overheads, walls = [], []
    for i in range(options.runs):
        wall, data = envman(home, "up", "smoke-gemma3", "--engine", "xllamacpp", "--detach", "--port", "0",
                            "--name", f"bench{i}", "--json")  # fmt: skip
        envman_down = [sys.executable, "-m", "envman", "down", f"bench{i}"]
        subprocess.run(envman_down, env=dict(os.environ, ENVMAN_HOME=str(home)), check=True, capture_output=True)
        walls.append(wall)
        overheads.append(wall - float(str(data["ready_seconds"])))
    print(f"up (xllamacpp, detached, environment built): median {statistics.median(walls):.2f}s to ready, "
          f"envman's overhead {statistics.median(overheads):.2f}s ({options.runs} runs)")  # fmt: skip


if __name__ == "__main__":
    main()

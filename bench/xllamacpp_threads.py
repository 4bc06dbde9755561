"""llama.cpp threads on a busy host: one chat answer's latency, 1 thread against every core.

Usage: python bench/xllamacpp_threads.py [--home DIR] [--requests N] [--load N]

The xllamacpp launcher serves the smoke-gemma3 GGUF (a few MB) with ``--threads 1`` and with
``--threads <cpu count>``, each once on an idle host and once while ``--load`` other processes
spin (what a CI worker or a second engine does). Each answer is 64 tokens; printed: median,
min and max of ``--requests`` whole HTTP requests. llama.cpp's barriers spin, so threads that
the scheduler takes away stall every op of the graph.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VERSION = "2026.10.11549"
SPIN = "while True: pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(python: Path, model: Path, threads: int) -> Iterator[int]:
    port = free_port()
    argv = [str(python), "-m", "envman_xllamacpp_server", "--model", str(model), "--served-model-name", "m",
            "--port", str(port), "--ctx-size", "4096", "--threads", str(threads)]  # fmt: skip
    launchers = REPO / "envman" / "engines" / "launchers"
    proc = subprocess.Popen(argv, env=dict(os.environ, PYTHONPATH=str(launchers)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def answer(port: int) -> float:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64, "ignore_eos": True}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as r:
        json.load(r)
    return time.perf_counter() - start


@contextlib.contextmanager
def load(n: int) -> Iterator[None]:
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=None, help="an ENVMAN_HOME with the xllamacpp environment")
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 1, help="spinning processes beside it")
    options = parser.parse_args()
    home = options.home or Path(tempfile.mkdtemp(prefix="envman-bench-"))
    env = dict(os.environ, ENVMAN_HOME=str(home), ENVMAN_MATRIX=str(REPO / "matrix.toml"))
    # the smoke builds the environment and synthesizes the model, outside the timing
    subprocess.run([sys.executable, "-m", "envman", "smoke", "smoke-gemma3", "--engine", "xllamacpp", "--version",
                    VERSION], env=env, check=True, capture_output=True)  # fmt: skip
    python = next((home / "envs").glob(f"xllamacpp-{VERSION}-cpu-*")) / "bin" / "python"
    model = next((home / "models" / "smoke-gemma3").glob("*/*.gguf"))
    for threads in sorted({1, os.cpu_count() or 1}):
        for spinning in (0, options.load):
            with server(python, model, threads) as port, load(spinning):
                answer(port)  # warm
                times = [answer(port) for _ in range(options.requests)]
            print(f"threads {threads}, {spinning} spinning: median {statistics.median(times) * 1000:.0f} ms, "
                  f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()

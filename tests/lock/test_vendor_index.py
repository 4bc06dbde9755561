"""A vendor variant locked from its own index, pointed at a local one by the environment override:
a real PyPI wheel (xllamacpp 0.1.11, no dependencies) served from a folder by http.server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from envman import pypi
from envman.lock import lockfile
from tests.helpers import cli_env

pytestmark = pytest.mark.network

WHEEL = "xllamacpp-0.1.11-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


@pytest.fixture
def local_index(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(index URL, sha256)`` of a PEP 503 simple index on 127.0.0.1 holding the real wheel."""
    release = next(r for r in pypi.releases("xllamacpp") if str(r.version) == "0.1.11")
    file = next(f for f in release.files if f.filename == WHEEL)
    project = tmp_path / "index" / "simple" / "xllamacpp"
    project.mkdir(parents=True)
    path = pypi.download(file, project)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == file.sha256
    (project / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="{WHEEL}#sha256={digest}">{WHEEL}</a></body></html>\n'
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "index"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple", digest
    finally:
        server.shutdown()
        server.server_close()


def test_the_cuda_variant_locks_from_the_index_its_override_names(tmp_path: Path, local_index: tuple[str, str]) -> None:
    url, digest = local_index
    env = cli_env(tmp_path / "home") | {
        "ENVMAN_LOCKFILES": str(tmp_path / "locks"),
        "ENVMAN_XLLAMACPP_CUDA_INDEX_URL": url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "envman", "lock", "--engine", "xllamacpp", "--variant", "cuda", "--version", "0.1.11"]
        + ["--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [written] = json.loads(done.stdout)
    lock = lockfile.read(Path(written["path"]))
    lock.verify()
    assert Path(written["path"]).name == "xllamacpp-0.1.11-cuda-py3.11.txt"
    assert lock.header["index_url"] == url
    assert lock.header["requirement"] == "xllamacpp==0.1.11"
    assert f"xllamacpp==0.1.11 \\\n    --hash=sha256:{digest}" in lock.body


def test_without_an_override_the_default_index_is_the_projects_own(tmp_path: Path) -> None:
    """The matrix default (README cu128 index) is not reachable here: the lock fails with uv's reason."""
    env = cli_env(tmp_path / "home") | {"ENVMAN_LOCKFILES": str(tmp_path / "locks")}
    done = subprocess.run(
        [sys.executable, "-m", "envman", "lock", "--engine", "xllamacpp", "--variant", "cu132"]
        + ["--version", "2026.10.11549"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "xorbitsai.github.io/xllamacpp/whl/cu132" in done.stderr

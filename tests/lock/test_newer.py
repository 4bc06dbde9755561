"""A variant's ``newer`` packages: what a pinned requirement needs that postdates an old engine.

torch 2.13.0+cpu (the one CPU torch here) requires typing-extensions>=4.10.0, sympy>=1.13.3 and
setuptools>=77.0.3 (its METADATA); transformers 4.28.0 (2023-04-13) resolved as of its own day
cannot have them, and before ``newer`` its lock failed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envman.lock import lockfile, locks
from envman.lock.uv import Uv, find_uv
from envman.matrix.combinations import Combination
from envman.matrix.load import load_matrix
from envman.report import NullReporter

REPO = Path(__file__).resolve().parents[2]
# Where the CPU torch lies on these machines (FACTS.md); the variant's index elsewhere.
LOCAL_TORCH = {"ENVMAN_TRANSFORMERS_CPU_FIND_LINKS": "/opt/wheels", "ENVMAN_TRANSFORMERS_CPU_EXTRA_INDEX_URLS": ""}


def request(version: str, environ: dict[str, str] | None = None) -> lockfile.LockRequest:
    matrix = load_matrix(REPO / "matrix.toml", environ=environ or {})
    return locks.request_for(matrix, Combination("transformers", locks.Version(version), "cpu"), offline=True)


def test_an_old_engine_may_take_what_the_cpu_torch_needs_newer_than_its_day() -> None:
    old = request("4.50.0")  # 2025-03-21: typing-extensions and sympy were out, setuptools 77.0.3 the day before
    assert old.exclude_newer == "2025-03-22T00:00:00Z"
    assert old.exclude_newer_packages == ()  # its own day lets them in: its lock is as before
    assert old.newer_reason == ""
    floor = request("4.28.0")
    assert floor.exclude_newer == "2023-04-14T00:00:00Z"
    assert floor.exclude_newer_packages == (
        ("setuptools", "2025-03-21T00:00:00Z"),
        ("sympy", "2024-09-19T00:00:00Z"),
        ("typing-extensions", "2024-02-26T00:00:00Z"),
    )
    assert floor.newer_reason.startswith("torch 2.13.0+cpu requires typing-extensions>=4.10.0")


def test_the_reason_is_in_the_header_and_the_packages_in_the_inputs_digest() -> None:
    floor = request("4.28.0")
    text = lockfile.render(floor, "torch==2.13.0+cpu\n")
    header = dict(re.findall(r"^# ([a-z_]+): (.*)$", text, flags=re.MULTILINE))
    assert header["exclude_newer_packages_reason"] == floor.newer_reason
    assert '["setuptools", "2025-03-21T00:00:00Z"]' in header["exclude_newer_packages"]
    assert lockfile.header_inputs_digest(header) == floor.inputs_digest()
    without = lockfile.LockRequest(**{**floor.__dict__, "exclude_newer_packages": ()})
    assert without.inputs_digest() != floor.inputs_digest()
    assert "exclude_newer_packages_reason" not in lockfile.render(request("5.24.0"), "")


def test_a_bad_newer_date_is_refused_with_its_key(tmp_path: Path) -> None:
    text = (REPO / "matrix.toml").read_text()
    text = text.replace('newer = { typing-extensions = "2024-02-25"', 'newer = { typing-extensions = "soon"', 1)
    (tmp_path / "matrix.toml").write_text(text)
    from envman.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        load_matrix(tmp_path / "matrix.toml", environ={})
    [problem] = raised.value.problems
    key = "engines.transformers.variants.cpu.newer.typing-extensions"
    assert problem.endswith(f"{key}: expected a date (YYYY-MM-DD), got 'soon'")


@pytest.mark.network
def test_transformers_4_28_locks_beside_the_cpu_torch(tmp_path: Path) -> None:
    if not Path("/opt/wheels").is_dir():
        pytest.skip("the torch 2.13.0+cpu wheel folder of these machines is not here")
    path = locks.lock(request("4.28.0", LOCAL_TORCH), tmp_path, Uv(find_uv(), reporter=NullReporter()))
    pinned = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^ \\\n]+)", path.read_text(), flags=re.MULTILINE))
    assert pinned["transformers"] == "4.28.0"
    assert pinned["torch"] == "2.13.0+cpu"
    # the lowest the torch accepts; the rest as of 2023-04-13
    assert (pinned["typing-extensions"], pinned["setuptools"], pinned["sympy"]) == ("4.10.0", "77.0.3", "1.13.3")
    assert pinned["tokenizers"] == "0.13.3"
    lockfile.read(path).verify()

"""``envman doctor``: the real command on this machine, and a GPU host through a fake NVML."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import envman.cli.doctor  # noqa: F401  (registers the command on `app`)
from envman.cli._app import app
from envman.hardware import doctor
from envman.matrix.schema import GpuSpec

InstallNvml = Callable[..., types.ModuleType]
A100_40GB = {"name": "NVIDIA A100-SXM4-40GB", "cc": (8, 0), "total_gib": 40, "free_gib": 39.5}

TOP_KEYS = [
    "os", "arch", "glibc", "python", "cpu", "gpus", "driver_version", "cuda_driver_version", "uv", "docker", "notes",
    "builds",
]  # fmt: skip
GPU_KEYS = ["index", "name", "compute_capability", "memory_total_bytes", "memory_free_bytes", "uuid", "table_entry"]
REPO = Path(__file__).resolve().parents[2]


def _check_this_machine(data: dict[str, Any]) -> None:
    assert list(data) == TOP_KEYS
    assert list(data["cpu"]) == ["model", "cores", "memory_total_bytes", "flags"]
    assert list(data["cpu"]["flags"]) == ["avx2", "avx512", "avx512_bf16", "amx"]
    assert data["os"] == platform.system().lower()
    assert data["python"] == ".".join(map(str, sys.version_info[:3]))
    assert list(data["docker"]) == ["reachable", "detail"]
    assert isinstance(data["docker"]["reachable"], bool)
    assert data["docker"]["detail"]
    if data["uv"] is not None:
        assert Path(data["uv"]["path"]).exists()
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    assert data["cpu"]["flags"]["avx512_bf16"] == (" avx512_bf16" in cpuinfo)
    assert data["cpu"]["flags"]["amx"] == (" amx_bf16" in cpuinfo)
    if not Path("/dev/nvidiactl").exists():  # no NVIDIA driver here
        assert data["gpus"] == []
        assert data["driver_version"] is None
        assert any(note.startswith("NVML not available: ") for note in data["notes"])


def test_doctor_json_on_this_machine() -> None:
    result = CliRunner().invoke(app, ["doctor", "--json"])

    assert result.exit_code == 0, result.output
    _check_this_machine(json.loads(result.stdout))


def test_doctor_json_in_a_real_process() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "envman", "doctor", "--json"],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    _check_this_machine(json.loads(result.stdout))


def test_doctor_with_two_a100s(
    install_nvml: InstallNvml, gpu_table: Mapping[str, GpuSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    install_nvml([dict(A100_40GB, uuid="GPU-aaaa"), dict(A100_40GB, uuid="GPU-bbbb")], driver="550.54.15", cuda=12040)
    del gpu_table, monkeypatch  # the doctor reads the real matrix: its GPU table and the builds' needs

    result = CliRunner().invoke(app, ["doctor", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [list(gpu) for gpu in data["gpus"]] == [GPU_KEYS] * 2
    assert data["gpus"][1] == {
        "index": 1,
        "name": "NVIDIA A100-SXM4-40GB",
        "compute_capability": "8.0",
        "memory_total_bytes": 40 * 1024**3,
        "memory_free_bytes": round(39.5 * 1024**3),
        "uuid": "GPU-bbbb",
        "table_entry": "A100-40GB",
    }
    assert (data["driver_version"], data["cuda_driver_version"]) == ("550.54.15", "12.4")
    builds = {(b["engine"], b["version"], b["variant"]): b for b in data["builds"]}
    cuda = builds[("vllm", "0.32.0", "cuda")]
    assert not cuda["runs"]  # a CUDA 13 build: driver 550 is too old
    assert "upgrade the driver to >= 580" in cuda["reasons"][0]
    assert "a cpu build" in builds[("xllamacpp", "2026.10.11549", "cpu")]["reasons"][0]
    assert not any(note.startswith("NVML") for note in data["notes"])

    table = CliRunner().invoke(app, ["doctor"])
    assert table.exit_code == 0, table.output
    assert "gpu 1      NVIDIA A100-SXM4-40GB = A100-40GB, CC 8.0, 40.0 GiB, 39.5 free" in table.stdout
    assert "driver     550.54.15 (CUDA 12.4 max)" in table.stdout


def test_doctor_table_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)

    result = CliRunner().invoke(app, ["doctor"])

    assert result.exit_code == 0, result.output
    assert "gpus       none" in result.stdout
    assert "note       NVML not available: the nvidia-ml-py package (pynvml) is not installed" in result.stdout


def test_uv_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "uv", None)

    report = doctor.run_doctor({})

    assert report.uv is None
    assert report.to_json()["uv"] is None
    assert "uv not found: envman locks and builds environments with it (pip install uv)" in report.notes


def test_uv_from_the_pypi_package(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uv")
    monkeypatch.setattr(shutil, "which", lambda name: None)

    uv = doctor.find_uv()

    assert uv is not None
    assert Path(uv.path).name.startswith("uv")
    assert uv.version is not None
    assert uv.version[0].isdigit()


def test_docker_package_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)

    assert doctor.check_docker() == doctor.DockerInfo(
        False, "the docker Python package is not installed (pip install docker)"
    )


def test_docker_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    class Client:
        def ping(self) -> bool:
            return True

        def version(self) -> dict[str, str]:
            return {"Version": "20.10.24", "ApiVersion": "1.41"}

        def close(self) -> None:
            pass

    fake = types.ModuleType("docker")
    fake.from_env = lambda timeout: Client()  # type: ignore[attr-defined]
    errors = types.ModuleType("docker.errors")
    errors.DockerException = type("DockerException", (Exception,), {})  # type: ignore[attr-defined]
    fake.errors = errors  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "docker", fake)
    monkeypatch.setitem(sys.modules, "docker.errors", errors)

    assert doctor.check_docker() == doctor.DockerInfo(True, "Docker Engine 20.10.24 (API 1.41)")


def test_docker_daemon_down_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a socket path nothing listens on, whatever daemon this machine runs
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-daemon.sock'}")

    info = doctor.check_docker()

    assert not info.reachable
    assert info.detail.startswith("docker daemon not reachable: ")

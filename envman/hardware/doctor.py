"""What envman needs from this machine, and whether it has it: ``envman doctor``.

The JSON shape (:meth:`DoctorReport.to_json`) is stable; field order is part of it::

    {
      "os": "linux", "arch": "x86_64", "glibc": "2.36" | null, "python": "3.11.2",
      "cpu": {"model": str, "cores": int, "memory_total_bytes": int,
              "flags": {"avx2": bool, "avx512": bool, "avx512_bf16": bool, "amx": bool}},
      "gpus": [{"index": int, "name": str, "compute_capability": "8.0",
                "memory_total_bytes": int, "memory_free_bytes": int | null,
                "uuid": str | null, "table_entry": str | null}],
      "driver_version": "550.54.15" | null,
      "cuda_driver_version": "12.4" | null,
      "uv": {"path": str, "version": str | null} | null,
      "docker": {"reachable": bool, "detail": str},
      "notes": [str, ...]
    }

``cpu.flags.avx512`` is ``avx512f``; ``amx`` is ``amx_bf16`` (AMX tiles with bfloat16, what
CPU inference uses). ``table_entry`` is the GPU table entry the GPU's name matches.
``cuda_driver_version`` is the newest CUDA the driver supports, not an installed toolkit.
"""

from __future__ import annotations

import platform
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from envman.hardware.detect import detect_host
from envman.hardware.host import Host
from envman.hardware.spec import match_gpu
from envman.matrix.schema import GpuSpec

DOCKER_TIMEOUT_S = 3


@dataclass(frozen=True)
class UvInfo:
    path: str
    version: str | None


@dataclass(frozen=True)
class DockerInfo:
    reachable: bool
    detail: str  # the engine's version when reachable, else why not


@dataclass(frozen=True)
class DoctorReport:
    host: Host
    python: str
    uv: UvInfo | None
    docker: DockerInfo
    notes: tuple[str, ...]
    table_entries: tuple[GpuSpec | None, ...] = ()  # per GPU of host.gpus: its GPU table entry

    def to_json(self) -> dict[str, Any]:
        host, cpu = self.host, self.host.cpu
        return {
            "os": host.os,
            "arch": host.arch,
            "glibc": host.glibc,
            "python": self.python,
            "cpu": {
                "model": cpu.model,
                "cores": cpu.cores,
                "memory_total_bytes": cpu.memory_total_bytes,
                "flags": {
                    "avx2": "avx2" in cpu.flags,
                    "avx512": "avx512f" in cpu.flags,
                    "avx512_bf16": "avx512_bf16" in cpu.flags,
                    "amx": "amx_bf16" in cpu.flags,
                },
            },
            "gpus": [
                {
                    "index": index,
                    "name": gpu.name,
                    "compute_capability": str(gpu.compute_capability),
                    "memory_total_bytes": gpu.memory_total_bytes,
                    "memory_free_bytes": gpu.memory_free_bytes,
                    "uuid": gpu.uuid,
                    "table_entry": entry.name if entry else None,
                }
                for index, (gpu, entry) in enumerate(zip(host.gpus, self._entries(), strict=True))
            ],
            "driver_version": host.driver_version,
            "cuda_driver_version": host.cuda_driver_version,
            "uv": None if self.uv is None else {"path": self.uv.path, "version": self.uv.version},
            "docker": {"reachable": self.docker.reachable, "detail": self.docker.detail},
            "notes": list(self.notes),
        }

    def _entries(self) -> tuple[GpuSpec | None, ...]:
        return self.table_entries or (None,) * len(self.host.gpus)


def run_doctor(gpu_table: Mapping[str, GpuSpec] | None = None) -> DoctorReport:
    host = detect_host()
    uv = find_uv()
    notes = list(host.notes)
    if uv is None:
        notes.append("uv not found: envman locks and builds environments with it (pip install uv)")
    return DoctorReport(
        host=host,
        python=platform.python_version(),
        uv=uv,
        docker=check_docker(),
        notes=tuple(notes),
        table_entries=tuple(match_gpu(gpu.name, gpu_table or {}) for gpu in host.gpus),
    )


def find_uv() -> UvInfo | None:
    path = shutil.which("uv")
    if path is None:
        try:
            import uv  # the PyPI package ships the binary beside the interpreter

            path = uv.find_uv_bin()
        except (ImportError, FileNotFoundError):
            return None
    return UvInfo(path=path, version=_uv_version(path))


def check_docker() -> DockerInfo:
    try:
        import docker
        import docker.errors
    except ImportError:
        return DockerInfo(False, "the docker Python package is not installed (pip install docker)")
    try:
        client = docker.from_env(timeout=DOCKER_TIMEOUT_S)
        try:
            client.ping()
            version = client.version()
        finally:
            client.close()
    # requests' errors (connection refused, timeouts) are OSErrors.
    except (docker.errors.DockerException, OSError) as error:
        return DockerInfo(False, f"docker daemon not reachable: {error}")
    return DockerInfo(True, f"Docker Engine {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})")


def _uv_version(path: str) -> str | None:
    from envman import proc
    from envman.errors import EnvmanError

    try:
        result = proc.run([path, "--version"], timeout=10, check=False)
    except EnvmanError:
        return None
    words = result.output.split()  # "uv 0.13.9 (…)"
    return words[1] if result.returncode == 0 and len(words) >= 2 else None

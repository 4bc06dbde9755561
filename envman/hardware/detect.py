"""This machine as a :class:`~envman.hardware.host.Host`: OS, architecture, libc, CPU, GPUs.

:func:`detect_host` never raises for missing hardware or drivers; what it cannot find is
left empty and explained in ``Host.notes``.
"""

from __future__ import annotations

import os
import platform

from envman.hardware.cpu import detect_cpu
from envman.hardware.gpu import query_nvml
from envman.hardware.host import Host

_ARCH_NAMES = {"amd64": "x86_64", "x64": "x86_64", "x86-64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def detect_host() -> Host:
    os_name = platform.system().lower()
    nvml = query_nvml()
    return Host(
        os=os_name,
        arch=normalise_arch(platform.machine(), os_name),
        cpu=detect_cpu(),
        gpus=nvml.gpus,
        driver_version=nvml.driver_version,
        cuda_driver_version=nvml.cuda_driver_version,
        glibc=glibc_version(),
        source="detected",
        notes=nvml.notes,
    )


def normalise_arch(machine: str, os_name: str) -> str:
    """The architecture as wheel tags spell it: x86_64; aarch64 on Linux, arm64 on macOS."""
    arch = _ARCH_NAMES.get(machine.lower(), machine.lower())
    if arch == "aarch64" and os_name == "darwin":
        return "arm64"
    return arch


def glibc_version() -> str | None:
    """The glibc version ("2.36"), or None on musl, macOS and Windows."""
    try:
        # "glibc 2.36"; unset (ValueError) where the C library is not glibc.
        confstr = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        confstr = None
    if confstr and confstr.startswith("glibc "):
        return confstr.removeprefix("glibc ").strip()
    lib, version = platform.libc_ver()
    return version if lib == "glibc" and version else None

"""The CUDA packages a build pins: in a committed lockfile, or in a wheel's Requires-Dist.

A lockfile line ``nvidia-cuda-runtime==13.0.96 \\`` (or ``nvidia-cuda-runtime-cu12``,
``cuda-toolkit``, ``torch==2.6.0+cu124``) names the CUDA runtime line the environment gets.
A wheel names it too: torch pins ``nvidia-cuda-runtime-cu12 (==12.4.127)`` (2.x) or
``cuda-toolkit[cudart,…]==13.0.3`` (2.10 on), vLLM pins ``torch==2.6.0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

# Packages whose version is the CUDA runtime's own (major.minor first).
CUDA_RUNTIME_PACKAGES = ("nvidia-cuda-runtime", "nvidia-cuda-runtime-cu11", "nvidia-cuda-runtime-cu12", "cuda-toolkit")
_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s\\;]+)", re.MULTILINE)
_LOCAL_CUDA = re.compile(r"\+cu(?P<digits>\d{3,})$")  # torch 2.6.0+cu124
_LINUX = {  # the environment markers of the builds probed: CPython 3.11 on Linux x86_64
    "platform_system": "Linux",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    where: str  # "lockfiles/vllm-0.32.0-cuda-py3.11.txt:2600" or "torch-2.6.0….whl METADATA"


def lockfile_pins(path: Path) -> dict[str, Pin]:
    """``name -> Pin`` for every CUDA-related pin of a lockfile (and torch)."""
    text = path.read_text(encoding="utf-8")
    pins: dict[str, Pin] = {}
    for match in _LINE.finditer(text):
        name = match["name"].lower().replace("_", "-")
        if name in CUDA_RUNTIME_PACKAGES or name == "torch" or name.startswith("nvidia-cuda-"):
            line = text.count("\n", 0, match.start()) + 1
            pins[name] = Pin(name, match["version"], f"{path.parent.name}/{path.name}:{line}")
    return pins


def exact_pins(requires: tuple[str, ...], where: str) -> dict[str, Pin]:
    """``name -> Pin`` for each ``name==version`` of Requires-Dist that applies to Linux x86_64."""
    pins: dict[str, Pin] = {}
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate(_LINUX):
            continue
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        if exact:
            name = requirement.name.lower().replace("_", "-")
            pins[name] = Pin(name, exact[0], where)
    return pins


def cuda_runtime(pins: dict[str, Pin]) -> tuple[str, Pin] | None:
    """The CUDA runtime line ("12.4") the pins select, and the pin that says so."""
    for name in CUDA_RUNTIME_PACKAGES:
        pin = pins.get(name)
        if pin is not None:
            line = _major_minor(pin.version)
            if line:
                return line, pin
    torch = pins.get("torch")
    if torch is not None:
        match = _LOCAL_CUDA.search(torch.version)
        if match:
            digits = match["digits"]
            return f"{digits[:-1]}.{digits[-1]}", torch
    return None


def _major_minor(text: str) -> str | None:
    try:
        release = Version(text).release
    except InvalidVersion:
        return None
    return f"{release[0]}.{release[1]}" if len(release) >= 2 else None

"""This machine's CPU: model, usable cores, RAM and feature flags.

Linux reads ``/proc/cpuinfo`` and ``/proc/meminfo``; macOS asks ``sysctl`` (best effort).
Flags use the Linux names (``avx2``, ``avx512f``, ``avx512_bf16``, ``amx_bf16``) on every
platform, and ``neon`` on Arm, so the planner tests one spelling.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from envman.hardware.host import Cpu

# macOS (Intel) spells some flags differently from Linux's /proc/cpuinfo.
_DARWIN_FLAG_NAMES = {"avx1.0": "avx", "avx512bf16": "avx512_bf16", "sse4.1": "sse4_1", "sse4.2": "sse4_2"}


def detect_cpu() -> Cpu:
    if platform.system() == "Darwin":
        return _darwin_cpu()
    return _linux_cpu(Path("/proc/cpuinfo"), Path("/proc/meminfo"))


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """The model name and the flags of the first processor in ``/proc/cpuinfo`` text."""
    model = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if flags:
                break  # end of the first processor's block: the rest repeat it
            continue
        key = key.strip().lower()
        if key in ("model name", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features"):  # "features" on aarch64
            flags.update(value.lower().split())
    if "asimd" in flags:  # Advanced SIMD is what Arm toolchains call NEON
        flags.add("neon")
    return model, frozenset(flags)


def parse_meminfo(text: str) -> int | None:
    """``MemTotal`` in bytes from ``/proc/meminfo`` text."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            number, _, unit = line.partition(":")[2].strip().partition(" ")
            return int(number) * (1024 if unit.strip().lower() == "kb" else 1)
    return None


def usable_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _linux_cpu(cpuinfo: Path, meminfo: Path) -> Cpu:
    model, flags = parse_cpuinfo(_read(cpuinfo))
    memory = parse_meminfo(_read(meminfo)) or _sysconf_memory()
    return Cpu(
        model=model or platform.processor() or "unknown", cores=usable_cores(), memory_total_bytes=memory, flags=flags
    )


def _darwin_cpu() -> Cpu:
    model = _sysctl("machdep.cpu.brand_string") or platform.processor() or "unknown"
    memory = int(_sysctl("hw.memsize") or 0) or _sysconf_memory()
    flags: set[str] = set()
    if platform.machine() == "arm64":
        flags.add("neon")
        if _sysctl("hw.optional.arm.FEAT_BF16") == "1":
            flags.add("bf16")
    else:
        for key in ("machdep.cpu.features", "machdep.cpu.leaf7_features"):
            for flag in (_sysctl(key) or "").lower().split():
                flags.add(_DARWIN_FLAG_NAMES.get(flag, flag))
    return Cpu(model=model, cores=usable_cores(), memory_total_bytes=memory, flags=frozenset(flags))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _sysconf_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # name unknown on this platform
        return 0


def _sysctl(name: str) -> str | None:
    from envman import proc
    from envman.errors import EnvmanError

    try:
        result = proc.run(["sysctl", "-n", name], timeout=5, check=False)
    except EnvmanError:
        return None
    return result.output.strip() if result.returncode == 0 else None

"""Hosts named on the command line (``--hardware``) and GPU names matched to the GPU table.

Grammar (case-insensitive)::

    cpu                 a CPU-only Linux x86_64 host
    cpu:SIZE            ... with SIZE of RAM: 64GB, 64GiB, 64G, 64, 1.5TB (G and T units
                        are both read as binary, GiB and TiB)
    NAME                one GPU from the table, by name or alias: H100, RTX4090, A100-80GB
    NAMExN              N of them: A100-40GBx2, H100x8
    SPEC,KEY=VALUE,...  the host stack too: driver=550.54.15 (the NVIDIA driver), cuda=12.4
                        (the newest CUDA that driver supports, as nvidia-smi shows it),
                        glibc=2.31; e.g. H100x2,driver=550.54.15,glibc=2.35

Such a host is Linux x86_64 with a notional CPU, since the CPU of a GPU box rarely decides
a plan and the flag cannot say it: ``DEFAULT_CORES`` cores, the x86-64-v3 flags every
datacenter CPU of the last decade has (no AVX-512 assumed), and RAM of at least
``DEFAULT_MEMORY_BYTES``, and no less than the GPUs' memory together (weights are staged
through host memory when they load). The driver, CUDA and glibc versions are unknown (None)
unless the text names them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import replace

from envman.errors import UsageError
from envman.hardware.host import GIB, Cpu, Gpu, Host
from envman.matrix.schema import GpuSpec

GRAMMAR = (
    "--hardware takes 'cpu', 'cpu:SIZE' (cpu:64GB) or a GPU with an optional count, "
    "NAME or NAMExN (RTX4090, A100-80GBx2, H100x8), then optionally ',driver=550.54.15', "
    "',cuda=12.4' and ',glibc=2.31'"
)
_STACK_VALUES = {
    "driver": (re.compile(r"\d{2,4}(\.\d{1,3}){0,2}"), "a driver version such as 550.54.15"),
    "cuda": (re.compile(r"\d{1,2}\.\d{1,2}"), "a CUDA version such as 12.4"),
    "glibc": (re.compile(r"2\.\d{1,2}"), "a glibc version such as 2.31"),
}
DEFAULT_CORES = 16
DEFAULT_MEMORY_BYTES = 64 * GIB
# x86-64-v3: what CPU wheels of the engines need, and what every server CPU since 2015 has.
NOTIONAL_CPU_FLAGS = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"})

# The most GPUs a described host may have (a count is a tuple of that many GPUs: 10**7 of
# them took 27 s and 1.5 GB), and the RAM a cpu:SIZE may name.
MAX_GPU_COUNT = 1024
MIN_MEMORY_BYTES = GIB // 2
MAX_MEMORY_BYTES = 64 * 1024 * GIB
# A count this large is not a GPU count: "RTX9999" is a name, not 9999 of "RT".
_MAX_PLAUSIBLE_COUNT = 64
_VENDOR_WORDS = ("nvidia", "tesla", "geforce")
_UNITS = {"": GIB, "g": GIB, "gb": GIB, "gib": GIB, "t": 1024 * GIB, "tb": 1024 * GIB, "tib": 1024 * GIB}
_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]*)", re.IGNORECASE)
_COUNT = re.compile(r"(?P<name>.*)x(?P<count>\d+)", re.IGNORECASE)


def parse_hardware(text: str, gpu_table: Mapping[str, GpuSpec]) -> Host:
    device, *stack = (part.strip() for part in text.split(","))
    host = _parse_device(device, gpu_table)
    values: dict[str, str] = {}
    for item in stack:
        key, sep, value = item.partition("=")
        key = key.strip().casefold()
        if not sep or key not in _STACK_VALUES:
            raise UsageError(f"cannot read '{item}' in --hardware '{text.strip()}'", hint=GRAMMAR)
        values[key] = value.strip()
    if not values:
        return host
    return replace(with_host_stack(host, **values), source=text.strip())


def with_host_stack(host: Host, driver: str | None = None, cuda: str | None = None, glibc: str | None = None) -> Host:
    """``host`` with the driver, its CUDA version and glibc named on the command line
    (``--hardware H100,driver=…`` or a command's ``--driver``); bad values are usage errors."""
    named = {"driver": driver, "cuda": cuda, "glibc": glibc}
    for key, value in named.items():
        if value is None:
            continue
        pattern, what = _STACK_VALUES[key]
        if not pattern.fullmatch(value):
            raise UsageError(f"{key}={value!r} is not {what}", hint=GRAMMAR)
    if driver is not None and not host.gpus:
        raise UsageError(f"driver={driver} names an NVIDIA driver, but the host has no GPU", hint=GRAMMAR)
    return replace(
        host,
        driver_version=driver if driver is not None else host.driver_version,
        cuda_driver_version=cuda if cuda is not None else host.cuda_driver_version,
        glibc=glibc if glibc is not None else host.glibc,
    )


def _parse_device(spec: str, gpu_table: Mapping[str, GpuSpec]) -> Host:
    if not spec:
        raise UsageError("--hardware is empty", hint=GRAMMAR)
    if spec.casefold() == "cpu" or spec.casefold().startswith("cpu:"):
        return _cpu_host(spec)
    name, count = _split_count(spec, gpu_table)
    gpu = _resolve(name, spec, gpu_table)
    if count < 1:
        raise UsageError(f"GPU count must be at least 1 in --hardware '{_shown(spec)}'", hint=GRAMMAR)
    if count > MAX_GPU_COUNT:
        raise UsageError(
            f"more than {MAX_GPU_COUNT} GPUs in --hardware '{_shown(spec)}'",
            hint=f"a described host has 1 to {MAX_GPU_COUNT} GPUs",
        )
    memory = round(gpu.memory_gib * GIB)
    ram = max(DEFAULT_MEMORY_BYTES, memory * count)
    return Host(
        os="linux",
        arch="x86_64",
        cpu=_notional_cpu(ram),
        gpus=tuple(
            Gpu(name=gpu.name, compute_capability=gpu.compute_capability, memory_total_bytes=memory)
            for _ in range(count)
        ),
        source=spec,
        notes=(_assumed_note(spec, ram),),
    )


def match_gpu(name: str, gpu_table: Mapping[str, GpuSpec]) -> GpuSpec | None:
    """The table entry for a GPU name (an NVML product name or a ``--hardware`` name), if one fits."""
    found = _find(name, gpu_table)
    return found[0] if len(found) == 1 else None


def _cpu_host(spec: str) -> Host:
    _, _, size = spec.partition(":")
    ram = DEFAULT_MEMORY_BYTES if not size.strip() else _parse_size(size.strip(), spec)
    return Host(os="linux", arch="x86_64", cpu=_notional_cpu(ram), source=spec, notes=(_assumed_note(spec, ram),))


def _parse_size(size: str, spec: str) -> int:
    match = _SIZE.fullmatch(size)
    unit = _UNITS.get(match["unit"].casefold()) if match else None
    if match is None or unit is None or float(match["number"]) <= 0:
        raise UsageError(f"cannot read the memory size '{_shown(size)}' in --hardware '{_shown(spec)}'", hint=GRAMMAR)
    size_bytes = float(match["number"]) * unit  # a float: no 10**400-digit integers
    if not MIN_MEMORY_BYTES <= size_bytes <= MAX_MEMORY_BYTES:
        raise UsageError(
            f"the memory size '{_shown(size)}' in --hardware '{_shown(spec)}' is out of range",
            hint=f"cpu:SIZE takes {MIN_MEMORY_BYTES / GIB:g} GiB to {MAX_MEMORY_BYTES / GIB / 1024:g} TiB",
        )
    return round(size_bytes)


def _shown(text: str, limit: int = 40) -> str:
    """``text`` for a message, cut short: a hostile 10,000-character value is not echoed whole."""
    return text if len(text) <= limit else text[:limit] + "…"


def _split_count(spec: str, gpu_table: Mapping[str, GpuSpec]) -> tuple[str, int]:
    # Some names contain "x<digits>" themselves (RTX4090), so the whole text is tried first.
    if _find(spec, gpu_table):
        return spec, 1
    match = _COUNT.fullmatch(spec)
    if match is None:
        return spec, 1
    # More digits than any plausible count: read as "too many", not as a 20-digit integer.
    digits = match["count"].lstrip("0") or "0"
    name, count = match["name"].strip(), int(digits) if len(digits) <= 9 else 10**9
    if not name:
        raise UsageError(f"no GPU name in --hardware '{_shown(spec)}'", hint=GRAMMAR)
    if count > _MAX_PLAUSIBLE_COUNT and not _find(name, gpu_table):
        return spec, 1
    return name, count


def _resolve(name: str, spec: str, gpu_table: Mapping[str, GpuSpec]) -> GpuSpec:
    found = _find(name, gpu_table)
    if len(found) == 1:
        return found[0]
    if found:
        names = [gpu.name for gpu in found]
        raise UsageError(
            f"ambiguous GPU '{name}' in --hardware '{_shown(spec)}': "
            f"it could be {', '.join(names[:-1])} or {names[-1]}",
            hint=f"name one of them: {', '.join(names)}",
        )
    known = sorted(gpu_table)
    spellings = {alias.casefold(): gpu.name for gpu in gpu_table.values() for alias in (gpu.name, *gpu.aliases)}
    closest = dict.fromkeys(
        spellings[m] for m in difflib.get_close_matches(name.casefold(), spellings, n=6, cutoff=0.5)
    )
    hint = f"known GPUs: {', '.join(known)}"
    if closest:
        hint += f" (closest: {', '.join(list(closest)[:3])})"
    raise UsageError(f"unknown GPU '{_shown(name)}' in --hardware '{_shown(spec)}'", hint=hint)


def _find(name: str, gpu_table: Mapping[str, GpuSpec]) -> list[GpuSpec]:
    """Entries whose name or an alias equals ``name`` (ignoring case, spaces, hyphens and the
    vendor words), or failing that, entries it is a word-prefix of ("A100" → A100-40GB, A100-80GB)."""
    query = _words(name)
    if not query:
        return []
    spellings = [(gpu, [_words(alias) for alias in (gpu.name, *gpu.aliases)]) for gpu in gpu_table.values()]
    exact = [gpu for gpu, words in spellings if any("".join(w) == "".join(query) for w in words)]
    if exact:
        return exact
    return [gpu for gpu, words in spellings if any(w[: len(query)] == query and len(w) > len(query) for w in words)]


def _words(name: str) -> tuple[str, ...]:
    words = [word for word in re.split(r"[\s_-]+", name.casefold()) if word]
    while words and words[0] in _VENDOR_WORDS:
        words.pop(0)
    return tuple(words)


def _notional_cpu(memory: int) -> Cpu:
    return Cpu(model="notional x86_64 CPU", cores=DEFAULT_CORES, memory_total_bytes=memory, flags=NOTIONAL_CPU_FLAGS)


def _assumed_note(spec: str, ram: int) -> str:
    return f"described by --hardware '{spec}': CPU assumed ({DEFAULT_CORES} cores, x86-64-v3, {ram / GIB:g} GiB RAM)"

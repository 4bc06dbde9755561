"""The host-stack tables of matrix.toml: NVIDIA's driver rules and what each build needs.

::

    [cuda_drivers."12"]                      # CUDA major
    min_driver = "525.60.13"                 # Linux x86_64, minor version compatibility
    source = "artifact"                      # or "docs"
    evidence = "..."

    [host_requirements.vllm.cuda."0.8.5"]    # engine, variant, version
    wheel = "vllm-0.8.5-cp38-abi3-manylinux1_x86_64.whl"
    manylinux = "manylinux1_x86_64"
    cuda_runtime = "12.4"
    sonames = ["libcuda.so.1", "libcudart.so.12"]
    glibc = "2.17"
    torch = "2.6.0"
    evidence = "..."
    [[host_requirements.vllm.cuda."0.8.5".kernels]]
    library = "vllm/_C.abi3.so"
    sass = ["7.0", "7.5", ...]
    ptx = []
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from packaging.version import Version

from envman.matrix.reader import Problems, Reader, parse_version
from envman.matrix.schema import BuildRequirements, CudaDriverRule, Engine, KernelTargets

_DRIVER = re.compile(r"\d{3}(\.\d{1,3}){0,2}")
_CAPABILITY = re.compile(r"\d{1,2}\.\d[af]?")  # "9.0a": 9.0 only; "10.0f": the 10.x family
_GLIBC = re.compile(r"2\.\d{1,2}(\.\d)?")
_SOURCES = ("artifact", "docs")


def parse_cuda_drivers(problems: Problems, root: Reader) -> dict[int, CudaDriverRule]:
    rules: dict[int, CudaDriverRule] = {}
    for major, table in root.table("cuda_drivers").items():
        where = ("cuda_drivers", major)
        if not isinstance(table, dict):
            problems.add(where, f"expected a table, got {table!r}")
            continue
        if not major.isdigit():
            problems.add(where, f"{major!r} is not a CUDA major version (12, 13)")
            continue
        r = Reader(problems, table, where)
        driver = r.text("min_driver")
        if driver and not _DRIVER.fullmatch(driver):
            problems.add(where + ("min_driver",), f"{driver!r} is not a driver version (525.60.13)")
        source = r.text("source")
        if source and source not in _SOURCES:
            problems.add(where + ("source",), f"{source!r} is not one of: {', '.join(_SOURCES)}")
        rules[int(major)] = CudaDriverRule(int(major), driver, source, r.text("evidence"))
        r.done()
    return rules


def parse_build_requirements(
    problems: Problems, root: Reader, engines: Mapping[str, Engine]
) -> dict[tuple[str, str, str], BuildRequirements]:
    found: dict[tuple[str, str, str], BuildRequirements] = {}
    for engine, variants in root.table("host_requirements").items():
        if engine not in engines:
            problems.add(("host_requirements", engine), f"unknown engine {engine!r}")
            continue
        for variant, versions in _tables(problems, variants, ("host_requirements", engine)).items():
            where = ("host_requirements", engine, variant)
            if variant not in engines[engine].variants:
                problems.add(where, f"unknown variant {variant!r} of {engine}")
                continue
            for text, table in _tables(problems, versions, where).items():
                version = parse_version(problems, where + (text,), text)
                if version is None:
                    continue
                r = Reader(problems, table, where + (text,))
                found[(engine, variant, str(version))] = _build(r, engine, variant, version)
                r.done()
    return found


def _build(r: Reader, engine: str, variant: str, version: Version) -> BuildRequirements:
    kernels = []
    for i, table in enumerate(r.tables("kernels")):
        kr = Reader(r.p, table, r.where + ("kernels", i))
        kernels.append(KernelTargets(kr.text("library"), _capabilities(kr, "sass"), _capabilities(kr, "ptx")))
        kr.done()
    runtime = r.text("cuda_runtime", None)
    if runtime is not None and not re.fullmatch(r"\d{1,2}(\.\d{1,2})?", runtime):
        r.p.add(r.where + ("cuda_runtime",), f"{runtime!r} is not a CUDA version (12.4)")
    glibc = r.text("glibc", None)
    if glibc is not None and not _GLIBC.fullmatch(glibc):
        r.p.add(r.where + ("glibc",), f"{glibc!r} is not a glibc version (2.28)")
    return BuildRequirements(
        engine=engine,
        variant=variant,
        version=version,
        wheel=r.text("wheel"),
        manylinux=r.text("manylinux"),
        cuda_runtime=runtime,
        sonames=r.strs("sonames"),
        glibc=glibc,
        kernels=tuple(kernels),
        torch=r.text("torch", None),
        evidence=r.text("evidence"),
    )


def _capabilities(r: Reader, key: str) -> tuple[str, ...]:
    values = r.strs(key)
    for i, value in enumerate(values):
        if not _CAPABILITY.fullmatch(value):
            r.p.add(r.where + (key, i), f"{value!r} is not a compute capability (8.0)")
    return values


def _tables(problems: Problems, value: Any, where: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.add(where, f"expected a table, got {value!r}")
        return {}
    out = {}
    for key, table in value.items():
        if isinstance(table, dict):
            out[key] = table
        else:
            problems.add(where + (key,), f"expected a table, got {table!r}")
    return out

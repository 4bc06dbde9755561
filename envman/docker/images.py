"""What generated images are made of: base images, system packages and the pinned uv.

The facts are data with their evidence, in ``images.toml`` beside this module; this module
reads them once and answers two questions: which base image an engine variant's lock needs
(the CUDA release comes from the lockfile's own ``nvidia-cuda-runtime`` pin), and which
system packages it needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from envman.errors import ConfigError
from envman.lock.lockfile import Lockfile
from envman.matrix.reader import read_toml
from envman.matrix.schema import Accelerator, Variant

FACTS_FILE = Path(__file__).with_name("images.toml")
PYTHON_SOURCES = ("system", "uv")
# torch's CUDA builds pin the CUDA runtime wheel: nvidia-cuda-runtime==13.0.96 (CUDA 13),
# nvidia-cuda-runtime-cu12==12.8.90 (CUDA 12): its major.minor is the CUDA the image needs.
_CUDA_RUNTIME = re.compile(r"^nvidia-cuda-runtime(?:-cu\d+)?==(\d+)\.(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Base:
    accelerator: Accelerator
    image: str
    python: str  # "system" or "uv" (see images.toml)
    packages: tuple[str, ...]
    evidence: str
    cuda: str | None = None


@dataclass(frozen=True)
class ImageFacts:
    uv: str
    venv: str
    port: int
    user: str
    uid: int
    bases: tuple[Base, ...]
    packages: Mapping[str, tuple[str, ...]]  # "engine.variant" -> system packages

    def packages_for(self, engine: str, variant: str) -> tuple[str, ...]:
        return self.packages.get(f"{engine}.{variant}", ())


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"{FACTS_FILE.name}: {key}: {message}")


def _str(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise _fail(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
    return value


def _int(table: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(key, f"must be an integer between {low} and {high}, got {value!r}")
    return value


def _strs(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and re.fullmatch(r"[a-z0-9.+-]+", v) for v in value):
        raise _fail(f"{where}.{key}", f"must be a list of package names, got {value!r}")
    return tuple(value)


def _base(table: Mapping[str, Any], accelerator: Accelerator, where: str) -> Base:
    python = _str(table, "python", where)
    if python not in PYTHON_SOURCES:
        raise _fail(f"{where}.python", f"must be one of {', '.join(PYTHON_SOURCES)}, got {python!r}")
    cuda = table.get("cuda")
    if accelerator is Accelerator.CUDA and not isinstance(cuda, str):
        raise _fail(f"{where}.cuda", "must name the CUDA release (major.minor) of the image")
    return Base(
        accelerator=accelerator,
        image=_str(table, "image", where),
        python=python,
        packages=_strs(table, "packages", where),
        evidence=_str(table, "evidence", where),
        cuda=cuda if isinstance(cuda, str) else None,
    )


def parse(data: Mapping[str, Any]) -> ImageFacts:
    bases: list[Base] = []
    for name, entry in data.get("bases", {}).items():
        try:
            accelerator = Accelerator(name)
        except ValueError:
            raise _fail(f"bases.{name}", "is not an accelerator") from None
        entries = entry if isinstance(entry, list) else [entry]
        bases += [_base(e, accelerator, f"bases.{name}[{i}]") for i, e in enumerate(entries)]
    packages = {key: _strs(entry, "packages", f"packages.{key}") for key, entry in data.get("packages", {}).items()}
    for key, entry in data.get("packages", {}).items():
        _str(entry, "evidence", f"packages.{key}")
    port = _int(data, "port", 1, 65535)
    uid = _int(data, "uid", 1, 2**31 - 2)  # not root; below the 32-bit nobody/overflow ids
    return ImageFacts(
        uv=_str(data, "uv", "uv"),
        venv=_str(data, "venv", "venv"),
        port=port,
        user=_str(data, "user", "user"),
        uid=uid,
        bases=tuple(bases),
        packages=packages,
    )


def read(path: Path) -> ImageFacts:
    """Read and validate an images.toml (not UTF-8 or not TOML: a ConfigError with file:line)."""
    return parse(read_toml(path))


@cache
def facts() -> ImageFacts:
    return read(FACTS_FILE)


def cuda_of(lock: Lockfile) -> str | None:
    """The CUDA release (``13.0``) the locked torch build needs, from its runtime wheel pin."""
    match = _CUDA_RUNTIME.search(lock.body)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def base_for(image_facts: ImageFacts, engine: str, variant: Variant, lock: Lockfile) -> Base:
    """The base image for one engine variant and its lock."""
    candidates = [b for b in image_facts.bases if b.accelerator is variant.accelerator]
    if variant.accelerator is Accelerator.CUDA:
        cuda = cuda_of(lock) or variant.cuda
        if cuda is None:
            raise ConfigError(
                f"cannot tell which CUDA release {engine} ({variant.name}) needs: {lock.path.name} pins no "
                "nvidia-cuda-runtime wheel and matrix.toml gives the variant no `cuda`",
                hint=f"set engines.{engine}.variants.{variant.name}.cuda in matrix.toml",
            )
        exact = [b for b in candidates if b.cuda == cuda]
        # CUDA minor-version compatibility: the locked torch brings its own CUDA libraries
        # (nvidia-* wheels); a base of the same major at an older minor needs the same driver floor
        same_major = sorted(
            (
                b
                for b in candidates
                if b.cuda and b.cuda.split(".")[0] == cuda.split(".")[0] and _minor(b.cuda) <= _minor(cuda)
            ),
            key=lambda b: _minor(b.cuda or "0.0"),
            reverse=True,
        )
        candidates = exact or same_major
        if not candidates:
            raise ConfigError(
                f"no CUDA {cuda} base image in {FACTS_FILE.name} (needed by {lock.path.name})",
                hint=f"add a [[bases.cuda]] entry with cuda = {cuda!r}, an nvidia/cuda {cuda} runtime image "
                "and its evidence",
            )
    if not candidates:
        raise ConfigError(
            f"no base image for {variant.accelerator.value} engines in {FACTS_FILE.name}",
            hint=f"add a [bases.{variant.accelerator.value}] entry",
        )
    return candidates[0]


def _minor(version: str) -> int:
    return int(version.split(".")[1]) if "." in version else 0

"""The host-facing facts of one wheel: platform tags, pins and its shared libraries.

Read once per wheel and cached by the wheel's sha256 (from the index's JSON API) under
``paths.artifacts_dir()/hoststack/``: a second probe of the same release reads a small JSON
file instead of the network. Only the members asked for are fetched (see :mod:`.remote`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from envman import paths
from envman.errors import TargetError
from envman.files import atomic_write, ensure_dir
from envman.probe.hoststack.elf import NotElfError, read_dynamic, read_library
from envman.probe.hoststack.fatbin import FatbinError
from envman.probe.hoststack.remote import RemoteWheel
from envman.pypi import ReleaseFile
from envman.report import NullReporter, Reporter

_PREFIX = 8 << 20  # the dynamic section of every library seen lies in its first megabytes
METADATA_REVISION = 2  # 1 stopped at a whitespace-only continuation line (vllm 0.7.3-0.8.4)
REVISION = 2  # bump when what is read changes, so cached facts are read again (2: sm_90a marked "9.0a")

Wanted = Callable[[str], bool]


@dataclass(frozen=True)
class Library:
    member: str
    needed: tuple[str, ...]
    glibc: str | None
    sass: tuple[str, ...]
    ptx: tuple[str, ...]
    fatbin_entries: int


@dataclass(frozen=True)
class WheelFacts:
    filename: str
    sha256: str
    platforms: tuple[str, ...]  # from the file name: manylinux_2_28_x86_64, manylinux1_x86_64 …
    wheel_tags: tuple[str, ...]  # the WHEEL file's Tag lines (may disagree with the name)
    requires: tuple[str, ...]  # METADATA Requires-Dist lines
    libraries: tuple[Library, ...]
    seconds: float  # how long reading took (0 when it came from the cache)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WheelFacts:
        libraries = tuple(
            Library(
                member=lib["member"],
                needed=tuple(lib["needed"]),
                glibc=lib["glibc"],
                sass=tuple(lib["sass"]),
                ptx=tuple(lib["ptx"]),
                fatbin_entries=int(lib["fatbin_entries"]),
            )
            for lib in data["libraries"]
        )
        return cls(
            filename=data["filename"],
            sha256=data["sha256"],
            platforms=tuple(data["platforms"]),
            wheel_tags=tuple(data["wheel_tags"]),
            requires=tuple(data["requires"]),
            libraries=libraries,
            seconds=0.0,
        )


def is_shared_library(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".so") or ".so." in base


def platform_tags(filename: str) -> tuple[str, ...]:
    """The platform tags a wheel's name carries (``manylinux_2_28_x86_64`` …)."""
    try:
        _name, _version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as error:
        raise TargetError(f"{filename} is not a wheel file name: {error}") from None
    return tuple(sorted({tag.platform for tag in tags}))


def wheel_facts(
    file: ReleaseFile,
    wanted: Wanted = is_shared_library,
    *,
    kernels: Wanted | None = None,
    key: str = "all",
    reporter: Reporter | None = None,
) -> WheelFacts:
    """The facts of ``file``, from the cache or read from the index; ``key`` names the choice.

    Each member ``wanted`` accepts is read; of those, the ones ``kernels`` accepts (all when
    None) are read whole for their GPU code, the others only as far as their dynamic section.
    """
    folder = paths.artifacts_dir() / "hoststack"
    cache = folder / f"{file.sha256}.{key}.r{REVISION}.json"
    metadata_cache = folder / f"{file.sha256}.metadata.r{METADATA_REVISION}.json"
    cached = _load(cache)
    if cached is not None:
        tags, requires = _metadata(file, metadata_cache)
        return replace(cached, wheel_tags=tags, requires=requires)
    reporter = reporter or NullReporter()
    started = time.monotonic()
    libraries: list[Library] = []
    with RemoteWheel(file.url) as wheel:
        names = wheel.names()
        tags, requires = _metadata(file, metadata_cache, wheel)
        for name in names:
            if not wanted(name):
                continue
            size, compressed = wheel.size(name)
            if kernels is not None and not kernels(name):
                dynamic = read_dynamic(wheel.prefix(name, _PREFIX))
                if dynamic is not None:
                    libraries.append(Library(name, dynamic[0], dynamic[1], (), (), 0))
                    continue
            with (
                reporter.status(f"{file.filename}: reading {name} ({compressed / 1e6:.0f} MB of {size / 1e6:.0f} MB)"),
                wheel.spooled(name, ensure_dir(cache.parent)) as stream,
            ):
                try:
                    facts = read_library(stream)
                except (NotElfError, FatbinError) as error:
                    reporter.detail(f"{file.filename}: {name} skipped: {error}")
                    continue
            libraries.append(Library(name, facts.needed, facts.glibc, facts.sass, facts.ptx, facts.fatbin_entries))
    found = WheelFacts(
        filename=file.filename,
        sha256=file.sha256,
        platforms=platform_tags(file.filename),
        wheel_tags=tags,
        requires=requires,
        libraries=tuple(libraries),
        seconds=round(time.monotonic() - started, 2),
    )
    atomic_write(cache, json.dumps(found.to_json(), indent=1))
    return found


def _metadata(
    file: ReleaseFile, cache: Path, wheel: RemoteWheel | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(WHEEL Tag lines, METADATA Requires-Dist lines)``, cached apart from the libraries."""
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        return tuple(data["wheel_tags"]), tuple(data["requires"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not read yet, or unreadable: read it again
    if wheel is None:
        with RemoteWheel(file.url) as opened:
            return _metadata(file, cache, opened)
    names = wheel.names()
    dist_info = next((n.split("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA")), None)
    tags = _headers(_optional(wheel, names, f"{dist_info}/WHEEL"), "Tag")
    requires = _headers(_optional(wheel, names, f"{dist_info}/METADATA"), "Requires-Dist")
    atomic_write(cache, json.dumps({"wheel_tags": tags, "requires": requires}))
    return tuple(tags), tuple(requires)


def _optional(wheel: RemoteWheel, names: list[str], name: str) -> str:
    return wheel.read(name).decode("utf-8", "replace") if name in names else ""


def _headers(text: str, field: str) -> list[str]:
    """Every value of ``field`` in an RFC 822 header block (core metadata, WHEEL).

    The email parser, as the core metadata spec says: values continue on indented lines,
    and a License field's continuation may be blank-looking (vllm 0.7.3 to 0.8.4).
    """
    return [str(value).strip() for value in HeaderParser().parsestr(text).get_all(field) or []]


def _load(cache: Any) -> WheelFacts | None:
    try:
        return WheelFacts.from_json(json.loads(cache.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a corrupt or old cache entry is read again, not trusted

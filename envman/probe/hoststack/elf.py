"""What an ELF shared library needs from the host, read with pyelftools.

- ``DT_NEEDED``: the sonames it links (``libcudart.so.12``, ``libcublas.so.12`` …);
- ``.gnu.version_r``: the symbol versions it needs from each of them, of which the highest
  ``GLIBC_x.y`` is the oldest glibc that can load it;
- ``.nv_fatbin``: the GPU code compiled into it (see :mod:`.fatbin`).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from packaging.version import Version

from envman.probe.hoststack import fatbin

_GLIBC = re.compile(r"GLIBC_(\d+\.\d+(?:\.\d+)?)")
FATBIN_SECTION = ".nv_fatbin"


@dataclass(frozen=True)
class LibraryFacts:
    needed: tuple[str, ...]  # DT_NEEDED, in link order
    glibc: str | None  # the highest GLIBC_x.y needed, "2.28"
    sass: tuple[str, ...]  # compute capabilities with SASS, "8.0", sorted
    ptx: tuple[str, ...]  # compute capabilities with PTX
    fatbin_entries: int


class NotElfError(ValueError):
    """The file is not an ELF object pyelftools can read."""


def read_library(stream: BinaryIO) -> LibraryFacts:
    try:
        elf = ELFFile(stream)
        needed: list[str] = []
        glibc: list[Version] = []
        sass: set[str] = set()
        ptx: set[str] = set()
        count = 0
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                # pyelftools sets ``needed`` on DT_NEEDED tags only, at run time
                needed += [tag.needed for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]  # type: ignore[attr-defined]
            elif isinstance(section, GNUVerNeedSection):
                for _verneed, auxiliaries in section.iter_versions():
                    for aux in auxiliaries:
                        match = _GLIBC.fullmatch(aux.name)
                        if match:
                            glibc.append(Version(match[1]))
            elif section.name == FATBIN_SECTION and section["sh_type"] != "SHT_NOBITS":
                for entry in fatbin.entries(stream, section["sh_offset"], section["sh_size"]):
                    count += 1
                    (sass if entry.kind is fatbin.Kind.SASS else ptx).add(entry.compute_capability)
    except ELFError as error:
        raise NotElfError(str(error)) from error
    return LibraryFacts(
        needed=tuple(dict.fromkeys(needed)),
        glibc=str(max(glibc)) if glibc else None,
        sass=_capabilities(sass),
        ptx=_capabilities(ptx),
        fatbin_entries=count,
    )


def _capabilities(targets: set[str]) -> tuple[str, ...]:
    """ "8.0", "9.0", "9.0a" … in capability order, an architecture-specific one after its plain one."""
    return tuple(sorted(targets, key=lambda t: (Version(t.rstrip("af")), t)))  # "9.0" < "9.0a"


# -- the dynamic section alone, from the first bytes of a library ------------------------------
#
# DT_NEEDED and the version needs live in the first loadable segment, while the section
# headers pyelftools starts from are at the end of the file. For a library whose GPU code is
# not wanted (vLLM's flash-attention builds: 300 MB), reading the program headers and the
# dynamic segment from the first megabytes saves decompressing the rest.

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ = 0, 1, 5, 10
_DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF


def read_dynamic(prefix: bytes) -> tuple[tuple[str, ...], str | None] | None:
    """``(DT_NEEDED, highest GLIBC_x.y)`` from the first bytes of a 64-bit little-endian ELF
    file, or None when what they point at lies beyond ``prefix`` (read the whole file then)."""
    if not prefix.startswith(b"\x7fELF\x02\x01"):
        return None
    try:
        (phoff,) = struct.unpack_from("<Q", prefix, 0x20)
        entry_size, count = struct.unpack_from("<HH", prefix, 0x36)
        loads: list[tuple[int, int, int]] = []
        dynamic: tuple[int, int] | None = None
        for index in range(count):
            kind, _flags, offset, vaddr, _paddr, size = struct.unpack_from(
                "<IIQQQQ", prefix, phoff + index * entry_size
            )
            if kind == _PT_LOAD:
                loads.append((vaddr, offset, size))
            elif kind == _PT_DYNAMIC:
                dynamic = (offset, size)
        if dynamic is None or dynamic[0] + dynamic[1] > len(prefix):
            return None
        tags: list[tuple[int, int]] = []
        for position in range(dynamic[0], dynamic[0] + dynamic[1], 16):
            tag, value = struct.unpack_from("<qQ", prefix, position)
            if tag == _DT_NULL:
                break
            tags.append((tag, value))
        values = dict(tags)
        strtab = _file_offset(loads, values.get(_DT_STRTAB, -1))
        if strtab is None or strtab + values.get(_DT_STRSZ, 0) > len(prefix):
            return None
        needed = tuple(_string(prefix, strtab + value) for tag, value in tags if tag == _DT_NEEDED)
        glibc: list[Version] = []
        verneed = _file_offset(loads, values.get(_DT_VERNEED, -1))
        position = verneed if verneed is not None else 0
        for _ in range(values.get(_DT_VERNEEDNUM, 0) if verneed is not None else 0):
            _version, aux_count, _file, aux, following = struct.unpack_from("<HHIII", prefix, position)
            aux_position = position + aux
            for _ in range(aux_count):
                _hash, _aux_flags, _other, name, aux_next = struct.unpack_from("<IHHII", prefix, aux_position)
                match = _GLIBC.fullmatch(_string(prefix, strtab + name))
                if match:
                    glibc.append(Version(match[1]))
                aux_position += aux_next
            position += following
    except (struct.error, IndexError, UnicodeDecodeError):
        return None
    return tuple(dict.fromkeys(needed)), str(max(glibc)) if glibc else None


def _file_offset(loads: list[tuple[int, int, int]], vaddr: int) -> int | None:
    for start, offset, size in loads:
        if start <= vaddr < start + size:
            return vaddr - start + offset
    return None


def _string(data: bytes, start: int) -> str:
    end = data.index(b"\x00", start)
    return data[start:end].decode("ascii")

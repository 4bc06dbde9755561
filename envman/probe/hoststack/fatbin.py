"""CUDA fat binaries: which GPU architectures a ``.nv_fatbin`` section carries code for.

No library reads them, and NVIDIA documents only the wrapper (``fatbinary_section.h`` in
the toolkit: ``.nvFatBinSegment`` holds ``__fatBinC_Wrapper_t`` records that point into
``.nv_fatbin``). The blobs themselves have the layout ``cuobjdump`` reads, as published by
the projects that unpack them (gpuocelot, cuda-fatbin-decompression)::

    header   u32 magic 0xBA55ED50, u16 version (1), u16 header size (16), u64 size of the entries
    entry    u16 kind (1 PTX, 2 ELF = SASS), u16 version, u32 entry header size,
             u64 payload size, u32 compressed size, u32 -, u16 -, u16 -, u32 arch (sm_XX as XX),
             u32 name offset, u32 name length, u64 flags (0x2000: compressed), u64 -, u64 size
             the payload decompresses to

The flags say more than the layout above: ``0x100000`` marks an architecture-specific target
(``sm_90a``: runs on exactly 9.0), ``0x200000`` a family-specific one (``sm_100f``: the 10.x
family, CUDA >= 12.9). Read from real members: vllm-0.8.5's ``_flashmla_C.abi3.so`` (FlashMLA
is built for "9.0a", cmake/external_projects/flashmla.cmake) has arch-90 SASS with flags
0x100011, its ``_moe_C.abi3.so`` (plain sm_70 … sm_90) 0x11 on every entry; vllm-0.32.0's
``_flashmla_extension_C.abi3.so`` (CUDA 13: "9.0a" and "10.0f" in the same cmake file of
0.19.1) has arch 90 with 0x108011 and arch 100 with 0x1208011.

Entries follow one another (entry header, then payload); a section holds many blobs, each
aligned, with padding between them. Only the entry headers are read, never the payloads, so
compressed entries (CUDA >= 11.5 ``--compress-all``) cost nothing extra.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = 0xBA55ED50
_HEADER = struct.Struct("<IHHQ")
_ENTRY = struct.Struct("<HHIQIIHHIIIQQQ")
_FLAG_COMPRESSED = 0x2000
_FLAG_ARCH_SPECIFIC = 0x100000  # sm_90a, sm_100a: see the module docstring
_FLAG_FAMILY_SPECIFIC = 0x200000  # sm_100f
_ALIGN = 8
_SCAN_CHUNK = 1 << 20


class Kind(enum.IntEnum):
    PTX = 1
    SASS = 2  # an ELF cubin


@dataclass(frozen=True)
class Entry:
    kind: Kind
    arch: int  # 80 for sm_80
    compressed: bool
    arch_specific: bool = False  # sm_90a: runs on 9.0 only
    family_specific: bool = False  # sm_100f: runs on the 10.x family

    @property
    def compute_capability(self) -> str:
        """sm_80 as "8.0", sm_120 as "12.0", sm_90a as "9.0a", sm_100f as "10.0f"."""
        suffix = "a" if self.arch_specific else "f" if self.family_specific else ""
        return f"{self.arch // 10}.{self.arch % 10}{suffix}"


class FatbinError(ValueError):
    """The bytes are not a fat binary of the layout above."""


def entries(section: BinaryIO, offset: int, size: int) -> Iterator[Entry]:
    """Every entry of every blob in the ``size`` bytes at ``offset`` of ``section``.

    Between blobs the reader skips padding (zeros) to the next aligned magic number; a
    section whose first bytes are no fat binary raises :class:`FatbinError`.
    """
    position, end = offset, offset + size
    first = True
    while position + _HEADER.size <= end:
        section.seek(position)
        magic, version, header_size, fat_size = _HEADER.unpack(section.read(_HEADER.size))
        if magic != MAGIC:
            if first:
                raise FatbinError(f"no fat binary at offset {position}: magic {magic:#x}, expected {MAGIC:#x}")
            found = _next_magic(section, position + _ALIGN, end)
            if found is None:
                return
            position = found
            continue
        if version != 1 or header_size < _HEADER.size:
            raise FatbinError(f"fat binary at offset {position}: version {version}, header size {header_size}")
        first = False
        yield from _blob_entries(section, position + header_size, fat_size)
        position = _aligned(position + header_size + fat_size)


def _blob_entries(section: BinaryIO, start: int, size: int) -> Iterator[Entry]:
    position, end = start, start + size
    while position + _ENTRY.size <= end:
        section.seek(position)
        fields = _ENTRY.unpack(section.read(_ENTRY.size))
        kind, _version, header_size, payload_size = fields[:4]
        arch, flags = fields[8], fields[11]
        if header_size < _ENTRY.size or kind not in (Kind.PTX, Kind.SASS):
            raise FatbinError(f"fat binary entry at offset {position}: kind {kind}, header size {header_size}")
        yield Entry(
            Kind(kind),
            arch,
            bool(flags & _FLAG_COMPRESSED),
            bool(flags & _FLAG_ARCH_SPECIFIC),
            bool(flags & _FLAG_FAMILY_SPECIFIC),
        )
        position += header_size + payload_size


def _next_magic(section: BinaryIO, start: int, end: int) -> int | None:
    """The offset of the next aligned fat binary header at or after ``start``."""
    needle = struct.pack("<I", MAGIC)
    position = _aligned(start)
    while position < end:
        section.seek(position)
        chunk = section.read(min(_SCAN_CHUNK, end - position))
        if not chunk:
            return None
        index = chunk.find(needle)
        while index != -1 and (position + index) % _ALIGN:
            index = chunk.find(needle, index + 1)
        if index != -1:
            return position + index
        position += len(chunk)  # chunks are whole multiples of 8: an aligned magic never straddles two
    return None


def _aligned(position: int) -> int:
    return (position + _ALIGN - 1) // _ALIGN * _ALIGN

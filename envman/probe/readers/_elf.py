"""The strings an x86-64 ELF shared library's code points at.

Plain string scanning is not enough for a linked C++ library: the linker merges a string
into the tail of a longer one (``qwen2`` lives inside ``rwkv6qwen2``, ``glm4`` inside
``chatglm4``), so a whole-string search misses it, and a substring search would find
``glm4`` in a build that only has the ``chatglm4`` chat template. Code loads each string's
address with a RIP-relative ``lea``; following every such ``lea`` gives exactly the strings
the code uses, merged or not.
"""

from __future__ import annotations

import re
import struct

_ELF_MAGIC = b"\x7fELF\x02\x01"  # 64-bit, little-endian
_PT_LOAD = 1
_PF_X = 1
# lea r64, [rip + disp32]: REX.W (48, or 4c for r8-r15), 8d, ModRM with mod=00 rm=101.
_LEA_RIP = re.compile(rb"[\x48\x4c]\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d](....)", re.DOTALL)


def referenced_strings(library: bytes, pattern: re.Pattern[bytes]) -> set[str] | None:
    """The NUL-terminated strings matching ``pattern`` that code addresses; None if not x86-64 ELF."""
    if not library.startswith(_ELF_MAGIC) or struct.unpack_from("<H", library, 0x12)[0] != 0x3E:
        return None
    segments = _load_segments(library)
    found: set[str] = set()
    for vaddr, offset, size, flags in segments:
        if not flags & _PF_X:
            continue
        code = library[offset : offset + size]
        for match in _LEA_RIP.finditer(code):
            target = vaddr + match.end() + struct.unpack("<i", match.group(1))[0]
            start = _file_offset(segments, target)
            if start is None:
                continue
            end = library.find(b"\x00", start, start + 64)
            if end > start and pattern.fullmatch(library, start, end):
                found.add(library[start:end].decode("ascii"))
    return found


def _load_segments(library: bytes) -> list[tuple[int, int, int, int]]:
    """``(vaddr, file offset, file size, flags)`` of each PT_LOAD segment."""
    (phoff,) = struct.unpack_from("<Q", library, 0x20)
    entry_size, count = struct.unpack_from("<HH", library, 0x36)
    segments = []
    for index in range(count):
        kind, flags, offset, vaddr, _paddr, file_size = struct.unpack_from(
            "<IIQQQQ", library, phoff + index * entry_size
        )
        if kind == _PT_LOAD:
            segments.append((vaddr, offset, file_size, flags))
    return segments


def _file_offset(segments: list[tuple[int, int, int, int]], vaddr: int) -> int | None:
    for start, offset, size, _flags in segments:
        if start <= vaddr < start + size:
            return vaddr - start + offset
    return None

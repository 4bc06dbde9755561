"""The header of a GGUF file: its key/value metadata and tensor table, read as a stream.

``gguf.GGUFReader`` maps the whole file, so it needs every byte, a remote file's too. This
reader consumes the header front to back from anything with ``read(n)`` (a local file, or a
hub file read by HTTP range requests) and stops where the tensor data begins. It reads
GGUF versions 2 and 3, either byte order, and ``general.alignment``; long arrays (the
vocabulary, merges) are skipped and only counted. The type tables are the ``gguf`` package's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Protocol

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from envman.errors import UsageError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
KEEP_ARRAY_ITEMS = 64  # longer arrays (tokens, merges, scores) are counted, not kept
READ_SIZE = 1 << 20  # one read (or one HTTP range request) per MiB of header
MAX_STRING = 1 << 26  # a header string longer than 64 MiB means a corrupt file
_SCALARS = {
    GGUFValueType.UINT8: "B",
    GGUFValueType.INT8: "b",
    GGUFValueType.UINT16: "H",
    GGUFValueType.INT16: "h",
    GGUFValueType.UINT32: "I",
    GGUFValueType.INT32: "i",
    GGUFValueType.FLOAT32: "f",
    GGUFValueType.BOOL: "?",
    GGUFValueType.UINT64: "Q",
    GGUFValueType.INT64: "q",
    GGUFValueType.FLOAT64: "d",
}


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    type: GGMLQuantizationType
    offset: int  # from the start of the tensor data

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        block, size = GGML_QUANT_SIZES[self.type]
        return self.elements // block * size


@dataclass(frozen=True)
class Header:
    version: int
    fields: dict[str, Any]
    array_lengths: dict[str, int]  # every array's length, kept or not
    tensors: tuple[Tensor, ...]
    data_start: int  # byte offset of the tensor data (after alignment padding)
    complete: bool = True  # False when reading stopped early at ``until``
    tensor_count: int = 0

    @property
    def data_end(self) -> int:
        """Where the last tensor's data ends: the smallest size a complete file has."""
        return self.data_start + max((t.offset + t.nbytes for t in self.tensors), default=0)

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


@dataclass
class _Stream:
    source: Readable
    name: str
    endian: str = "<"
    position: int = 0  # bytes consumed from the start of the file
    _buffer: bytes = b""
    _at: int = 0  # consumed part of _buffer

    def take(self, size: int) -> bytes:
        if len(self._buffer) - self._at < size:
            parts = [self._buffer[self._at :]]
            have = len(parts[0])
            while have < size:
                chunk = self.source.read(max(size - have, READ_SIZE))
                if not chunk:
                    self._buffer, self._at = b"".join(parts), 0  # what there was, for the caller's message
                    raise UsageError(
                        f"{self.name} is truncated: its GGUF header ends at byte {self.position + have}",
                        hint="the download or copy stopped early; fetch the file again",
                    )
                parts.append(chunk)
                have += len(chunk)
            self._buffer, self._at = b"".join(parts), 0
        data = self._buffer[self._at : self._at + size]
        self._at += size
        self.position += size
        return data

    def scalar(self, kind: GGUFValueType) -> Any:
        fmt = self.endian + _SCALARS[kind]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def u64(self) -> int:
        value: int = struct.unpack(self.endian + "Q", self.take(8))[0]
        return value

    def string(self) -> str:
        length = self.u64()
        if length > MAX_STRING:
            raise self.corrupt(f"a string of {length} bytes")
        return self.take(length).decode("utf-8", errors="replace")

    def corrupt(self, what: str) -> UsageError:
        return UsageError(
            f"{self.name} is not a readable GGUF file: {what} at byte {self.position}",
            hint="the file is damaged or not a GGUF model; fetch it again",
        )


def read_header(source: Readable, name: str, *, until: str | None = None) -> Header:
    """Parse the header from ``source``; ``name`` (a path or repo/file) goes into every error.

    With ``until``, reading stops right after that key (the tensor table is then not read).
    """
    stream = _Stream(source, name)
    try:
        magic = stream.take(4)
    except UsageError:  # shorter than the magic: cut short only if what is there begins it
        magic = stream._buffer
        if MAGIC.startswith(magic):  # empty, or the first bytes of the magic
            raise
    if magic != MAGIC:
        raise UsageError(
            f"{name} is not a GGUF file (it starts with {magic!r}, not {MAGIC!r})",
            hint="pass a .gguf model file, or the folder of a Hugging Face model",
        )
    raw = stream.take(4)
    version = struct.unpack("<I", raw)[0]
    if version & 0xFFFF == 0:  # written on a big-endian host
        stream.endian, version = ">", struct.unpack(">I", raw)[0]
    if version not in (2, 3):
        raise UsageError(
            f"{name} is GGUF version {version}; envman reads versions 2 and 3",
            hint="convert it again with a current llama.cpp (convert_hf_to_gguf.py)",
        )
    tensor_count, kv_count = stream.u64(), stream.u64()
    fields: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for _ in range(kv_count):
        key = stream.string()
        kind = _kind(stream, stream.scalar(GGUFValueType.UINT32))
        if kind is GGUFValueType.ARRAY:
            items, length = _array(stream)
            lengths[key] = length
            if items is not None:
                fields[key] = items
        else:
            fields[key] = _value(stream, kind)
        if key == until:
            return Header(version, fields, lengths, (), 0, complete=False, tensor_count=tensor_count)
    tensors = []
    for _ in range(tensor_count):
        tensor_name = stream.string()
        dims = stream.scalar(GGUFValueType.UINT32)
        if dims > 8:
            raise stream.corrupt(f"tensor {tensor_name!r} with {dims} dimensions")
        shape = tuple(stream.u64() for _ in range(dims))
        type_id = stream.scalar(GGUFValueType.UINT32)
        try:
            ggml_type = GGMLQuantizationType(type_id)
        except ValueError:
            raise stream.corrupt(f"tensor {tensor_name!r} of unknown ggml type {type_id}") from None
        tensors.append(Tensor(tensor_name, shape, ggml_type, stream.u64()))
    alignment = fields.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        raise stream.corrupt(f"general.alignment {alignment!r}")
    data_start = -(-stream.position // alignment) * alignment
    return Header(version, fields, lengths, tuple(tensors), data_start, tensor_count=tensor_count)


def _kind(stream: _Stream, type_id: int) -> GGUFValueType:
    try:
        return GGUFValueType(type_id)
    except ValueError:
        raise stream.corrupt(f"a value of unknown type {type_id}") from None


def _value(stream: _Stream, kind: GGUFValueType) -> Any:
    return stream.string() if kind is GGUFValueType.STRING else stream.scalar(kind)


def _array(stream: _Stream) -> tuple[list[Any] | None, int]:
    kind = _kind(stream, stream.scalar(GGUFValueType.UINT32))
    length = stream.u64()
    keep = length <= KEEP_ARRAY_ITEMS
    if kind in _SCALARS:
        if keep:
            return [stream.scalar(kind) for _ in range(length)], length
        stream.take(length * struct.calcsize(stream.endian + _SCALARS[kind]))
        return None, length
    if kind is GGUFValueType.STRING:
        if keep:
            return [stream.string() for _ in range(length)], length
        for _ in range(length):
            stream.string()
        return None, length
    raise stream.corrupt(f"an array of {kind.name}")

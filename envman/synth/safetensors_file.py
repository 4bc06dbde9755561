"""Writing and reading the safetensors layout without the safetensors package.

The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range, then the raw little-endian data. The header is padded with spaces to a
multiple of 8 bytes, as the reference implementation does.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envman.synth.weights import bf16_bytes

if TYPE_CHECKING:
    from envman.synth.weights import F32


def write(path: Path, tensors: Mapping[str, F32]) -> None:
    """``tensors`` (float32 values already rounded to bfloat16) as a BF16 safetensors file."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        data = bf16_bytes(tensors[name])
        header[name] = {
            "dtype": "BF16",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    encoded += b" " * (-len(encoded) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for chunk in chunks:
            out.write(chunk)


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor name -> dtype, shape, data_offsets)."""
    with path.open("rb") as src:
        (length,) = struct.unpack("<Q", src.read(8))
        header: dict[str, Any] = json.loads(src.read(length))
    return header


def read(path: Path) -> dict[str, F32]:
    """Every tensor of a BF16 safetensors file, as float32."""
    import numpy as np

    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = read_header(path)
    header.pop("__metadata__", None)
    out: dict[str, F32] = {}
    for name, info in header.items():
        if info["dtype"] != "BF16":
            raise ValueError(f"{path}: {name} is {info['dtype']}, not BF16")
        begin, end = info["data_offsets"]
        raw = np.frombuffer(data, dtype="<u2", count=(end - begin) // 2, offset=8 + length + begin)
        out[name] = (raw.astype(np.uint32) << np.uint32(16)).view(np.float32).reshape(info["shape"])
    return out

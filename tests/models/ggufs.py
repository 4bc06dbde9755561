"""GGUF files for the tests, written by the gguf package from a synthesized smoke model's GGUF.

``rewrite`` copies every key and tensor of a GGUF into a new file through ``gguf.GGUFWriter``,
optionally quantizing the weight matrices (``gguf.quants.quantize``), renaming the
architecture, writing big-endian, with another alignment, or split into parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFEndian, GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType
from gguf.quants import quantize

SKIP = ("GGUF.", "general.architecture", "general.file_type", "general.alignment", "split.")


def rewrite(
    src: Path,
    dst: Path,
    *,
    qtype: GGMLQuantizationType | None = None,
    file_type: LlamaFileType | None = None,
    arch: str | None = None,
    endian: GGUFEndian = GGUFEndian.LITTLE,
    alignment: int | None = None,
    split_max_tensors: int = 0,
    extra: Mapping[str, Any] = {},
    drop: tuple[str, ...] = (),
) -> list[Path]:
    """Write ``dst`` (or its parts); returns the files written."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    reader = GGUFReader(src)
    old_arch = str(reader.fields["general.architecture"].contents())
    new_arch = arch or old_arch
    writer = GGUFWriter(dst, new_arch, endianess=endian, split_max_tensors=split_max_tensors)
    if alignment:
        writer.add_custom_alignment(alignment)
    for key, field in reader.fields.items():
        if key.startswith(SKIP) or key in drop:
            continue
        name = new_arch + key[len(old_arch) :] if key.startswith(old_arch + ".") else key
        kind = field.types[0]
        sub = field.types[-1] if kind is GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub)
    old_type = reader.fields["general.file_type"].contents()
    writer.add_file_type(int(file_type if file_type is not None else old_type))
    for key, (value, kind) in extra.items():
        writer.add_key_value(key, value, kind)
    for tensor in reader.tensors:
        data = np.array(tensor.data)
        shape = [int(d) for d in reversed(tensor.shape)]  # numpy order
        if qtype is not None and len(shape) == 2:
            q = quantize(data.reshape(shape).astype(np.float32), qtype)
            writer.add_tensor(tensor.name, q, raw_dtype=qtype)  # q has the byte shape; the writer derives the rest
        else:
            writer.add_tensor(tensor.name, data.reshape(shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    if split_max_tensors:
        return sorted(dst.parent.glob(f"{dst.stem}-*-of-*.gguf"))
    return [dst]


def mmproj(dst: Path) -> Path:
    """A small vision projector file as llama.cpp's converter names them (architecture clip)."""
    writer = GGUFWriter(dst, "clip")
    writer.add_file_type(int(LlamaFileType.MOSTLY_F16))
    writer.add_tensor("mm.0.weight", np.zeros((4, 4), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst

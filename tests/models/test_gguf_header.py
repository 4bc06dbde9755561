"""The GGUF header reader against files the gguf package wrote, and every quirk it accepts."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType, GGUFEndian, GGUFReader, GGUFValueType, LlamaFileType

from envman.errors import UsageError
from envman.models.gguf_header import Header, read_header
from tests.models.ggufs import rewrite


def read(path: Path, until: str | None = None) -> Header:
    with path.open("rb") as handle:
        return read_header(handle, str(path), until=until)


def reference(path: Path) -> dict[str, object]:
    """GGUFReader's view: scalar and string fields, array lengths, tensors and where their data starts."""
    reader = GGUFReader(path)
    fields: dict[str, object] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if field.types[0] is GGUFValueType.ARRAY:
            fields[key] = len(field.data)
        else:
            fields[key] = field.contents()
    tensors = [(t.name, tuple(int(d) for d in t.shape), t.tensor_type, int(t.data_offset)) for t in reader.tensors]
    return {"fields": fields, "tensors": tensors}


def ours(path: Path) -> dict[str, object]:
    header = read(path)
    fields: dict[str, object] = {}
    for key, value in header.fields.items():
        fields[key] = len(value) if isinstance(value, list) else value
    for key, length in header.array_lengths.items():
        fields[key] = length
    tensors = [(t.name, t.shape, t.type, header.data_start + t.offset) for t in header.tensors]
    return {"fields": fields, "tensors": tensors}


@pytest.mark.parametrize("family", ["llama", "gemma3", "qwen2", "phi3"])
def test_reads_what_the_gguf_writer_wrote(family: str, gguf_file: Callable[..., Path]) -> None:
    path = gguf_file(family)
    got = ours(path)
    assert got == reference(path)
    assert read(path).data_end == path.stat().st_size  # every byte of tensor data accounted for


@pytest.mark.parametrize(
    "quirk",
    [
        {"endian": GGUFEndian.BIG},
        {"alignment": 64},
        {"qtype": GGMLQuantizationType.Q8_0, "file_type": LlamaFileType.MOSTLY_Q8_0},
        {"qtype": GGMLQuantizationType.Q4_0, "file_type": LlamaFileType.MOSTLY_Q4_0},
    ],
    ids=["big-endian", "alignment-64", "q8_0", "q4_0"],
)
def test_format_quirks(quirk: dict[str, object], gguf_file: Callable[..., Path], tmp_path: Path) -> None:
    [path] = rewrite(gguf_file("llama"), tmp_path / "quirk.gguf", **quirk)  # type: ignore[arg-type]
    assert ours(path) == reference(path)
    header = read(path)
    assert header.data_end == path.stat().st_size
    if "alignment" in quirk:
        assert header.data_start % 64 == 0
        assert header.get("general.alignment") == 64


def test_version_2_has_the_same_layout(gguf_file: Callable[..., Path], tmp_path: Path) -> None:
    data = bytearray(gguf_file("llama").read_bytes())
    data[4:8] = struct.pack("<I", 2)
    path = tmp_path / "v2.gguf"
    path.write_bytes(bytes(data))
    header = read(path)
    assert header.version == 2
    assert header.data_end == path.stat().st_size


def test_version_1_is_refused(gguf_file: Callable[..., Path], tmp_path: Path) -> None:
    data = bytearray(gguf_file("llama").read_bytes())
    data[4:8] = struct.pack("<I", 1)
    path = tmp_path / "v1.gguf"
    path.write_bytes(bytes(data))
    with pytest.raises(UsageError, match=r"v1.gguf is GGUF version 1; envman reads versions 2 and 3"):
        read(path)


def test_long_arrays_are_counted_not_kept(gguf_file: Callable[..., Path]) -> None:
    header = read(gguf_file("llama"))
    assert header.array_lengths["tokenizer.ggml.tokens"] == 1024  # the smoke vocabulary
    assert "tokenizer.ggml.tokens" not in header.fields


def test_until_stops_after_the_key(gguf_file: Callable[..., Path], tmp_path: Path) -> None:
    [path] = rewrite(gguf_file("llama"), tmp_path / "q.gguf", qtype=GGMLQuantizationType.Q8_0,
                     file_type=LlamaFileType.MOSTLY_Q8_0)  # fmt: skip
    header = read(path, until="general.file_type")
    assert header.get("general.file_type") == LlamaFileType.MOSTLY_Q8_0
    assert not header.complete
    assert header.tensors == ()


def test_not_a_gguf_file(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 a zip archive")
    with pytest.raises(UsageError) as caught:
        read(path)
    assert caught.value.message == f"{path} is not a GGUF file (it starts with b'PK\\x03\\x04', not b'GGUF')"


@pytest.mark.parametrize("cut", [0, 3, 20, 500, 20_000])
def test_a_header_cut_short_is_named_truncated(cut: int, gguf_file: Callable[..., Path], tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(gguf_file("llama").read_bytes()[:cut])
    with pytest.raises(UsageError) as caught:
        read(path)
    assert caught.value.message == f"{path} is truncated: its GGUF header ends at byte {cut}"
    assert "fetch the file again" in str(caught.value.hint)


@pytest.mark.parametrize("content", [b"vm\n", b"abc", b"{}"])
def test_a_short_file_that_is_not_gguf_is_called_so_not_truncated(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        read(path)
    assert caught.value.message == f"{path} is not a GGUF file (it starts with {content!r}, not b'GGUF')"


def test_garbage_lengths_are_corrupt_not_a_memory_error(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40)  # a 1 TiB key name
    with pytest.raises(UsageError, match=r"not a readable GGUF file: a string of 1099511627776 bytes at byte 32"):
        read_header(io.BytesIO(data), "bad.gguf")

"""``--model-path`` that is not usable weights: a message naming the path and why, never a traceback or a hang."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from envman.errors import UsageError
from envman.matrix.schema import Artifact, Format
from envman.run.weights import check_local

GGUF = Artifact(format=Format.GGUF, repo="org/m-GGUF", file="m-Q4_K_M.gguf")
HF = Artifact(format=Format.PYTORCH, repo="org/m")


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A FIFO opened for reading blocks forever: fail the test instead."""

    def expired(*_: object) -> None:
        raise TimeoutError("check_local blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def refused(path: Path, artifact: Artifact) -> str:
    with pytest.raises(UsageError) as caught:
        check_local(path, artifact)
    return caught.value.message


@pytest.mark.parametrize("artifact", [GGUF, HF])
def test_a_symlink_loop(tmp_path: Path, artifact: Artifact) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert refused(tmp_path / "a", artifact) == f"--model-path {tmp_path / 'a'} is a symbolic link loop"


@pytest.mark.parametrize("artifact", [GGUF, HF])
def test_a_dangling_symlink(tmp_path: Path, artifact: Artifact) -> None:
    (tmp_path / "m.gguf").symlink_to(tmp_path / "gone.gguf")
    assert refused(tmp_path / "m.gguf", artifact) == (
        f"--model-path {tmp_path / 'm.gguf'} is a symbolic link to {tmp_path / 'gone.gguf'}, which does not exist"
    )


def test_a_directory_without_config_json_or_gguf(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no weights here")
    assert refused(tmp_path, HF) == f"{tmp_path} is not a Hugging Face model directory (no config.json)"
    assert refused(tmp_path, GGUF) == f"{tmp_path} holds no .gguf file"


def test_a_fifo_is_not_weights(tmp_path: Path) -> None:
    fifo = tmp_path / "m-Q4_K_M.gguf"
    os.mkfifo(fifo)
    assert refused(fifo, GGUF) == f"--model-path {fifo} is not a regular file"
    assert refused(tmp_path, GGUF) == f"--model-path {fifo} is not a regular file"  # found in the folder
    assert refused(fifo, HF) == f"{fifo} is not a Hugging Face model directory (no config.json)"
    (tmp_path / "hf").mkdir()
    os.mkfifo(tmp_path / "hf" / "config.json")
    assert refused(tmp_path / "hf", HF) == f"{tmp_path / 'hf'} is not a Hugging Face model directory (no config.json)"


def test_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "m.gguf"
    fake.write_text("root:x:0:0:root:/root:/bin/bash\n")
    assert refused(fake, GGUF) == f"{fake} is not a GGUF file (it does not start with the GGUF magic)"
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    assert refused(empty, GGUF) == f"{empty} is not a GGUF file (it does not start with the GGUF magic)"


def test_a_gguf_file_through_a_symlink_is_served_by_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real.gguf"
    real.write_bytes(b"GGUF\x03\x00\x00\x00")
    (tmp_path / "link.gguf").symlink_to(real)
    assert check_local(tmp_path / "link.gguf", GGUF) == real

"""The thread counts of envman_xllamacpp_server and envman_llama_cpp_server. The launchers run in
the engine's environment: they are imported here as files, as python -m finds them there (the real
engine's side is in tests/run/test_engines.py: the count llama.cpp logs)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from .launchers import load


@pytest.fixture(scope="module")
def launcher() -> ModuleType:
    return load("envman_xllamacpp_server")


def _model(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "m.gguf"
    with path.open("wb") as f:
        f.truncate(size)  # sparse: only the size is read
    return path


@pytest.mark.parametrize(
    ("size", "argv", "expected"),
    [
        (3 << 20, [], 1),  # a smoke model: one thread
        ((64 << 20) - 1, [], 1),
        (64 << 20, [], None),  # a real model: llama.cpp's own count
        (4 << 30, [], None),
        (3 << 20, ["--threads", "2"], 2),  # told
        (4 << 30, ["--threads", "3"], 3),
    ],
)
def test_the_thread_count(launcher: ModuleType, tmp_path: Path, size: int, argv: list[str], expected: int) -> None:
    args = launcher.parse_args(["--model", str(_model(tmp_path, size)), "--served-model-name", "m", *argv])
    assert launcher.chosen_threads(args) == expected


def test_a_missing_model_leaves_the_count_to_llama_cpp(launcher: ModuleType, tmp_path: Path) -> None:
    args = launcher.parse_args(["--model", str(tmp_path / "absent.gguf"), "--served-model-name", "m"])
    assert launcher.chosen_threads(args) is None


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_thread_count_below_one_is_refused(
    launcher: ModuleType, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        launcher.parse_args(["--model", "m.gguf", "--served-model-name", "m", "--threads", value])
    assert exit_.value.code == 2
    assert "--threads" in capsys.readouterr().err


@pytest.fixture(scope="module")
def llama_cpp_launcher() -> ModuleType:
    return load("envman_llama_cpp_server")


ONE = ["--n_threads", "1", "--n_threads_batch", "1"]


@pytest.mark.parametrize(
    ("size", "extra", "added"),
    [
        (3 << 20, [], ONE),  # a smoke model
        (64 << 20, [], []),  # a real one: llama_cpp.server's defaults
        (3 << 20, ["--n_threads", "2"], []),  # told (either count)
        (3 << 20, ["--n_threads_batch=2"], []),
    ],
)
def test_llama_cpp_python_gets_one_thread_for_a_small_model(
    llama_cpp_launcher: ModuleType, tmp_path: Path, size: int, extra: list[str], added: list[str]
) -> None:
    args = ["--model", str(_model(tmp_path, size)), "--port", "8000", *extra]
    assert llama_cpp_launcher.with_threads(args) == [*args, *added]
    equals = [f"--model={_model(tmp_path, size)}", *extra]
    assert llama_cpp_launcher.with_threads(equals) == [*equals, *added]


def test_llama_cpp_python_without_a_readable_model_is_left_alone(
    llama_cpp_launcher: ModuleType, tmp_path: Path
) -> None:
    for args in (["--model", str(tmp_path / "absent.gguf")], ["--port", "8000"], ["--model"]):
        assert llama_cpp_launcher.with_threads(args) == args

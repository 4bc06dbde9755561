"""Counts and numeric options are bounded: a clear message and exit 2, in well under a second."""

from __future__ import annotations

import time

import pytest

from envman.errors import UsageError
from envman.hardware.spec import MAX_GPU_COUNT, parse_hardware
from envman.matrix.schema import Matrix
from tests.envs.conftest import Cli


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("H100x10000000", "more than 1024 GPUs in --hardware 'H100x10000000'"),
        ("H100x99999999999999999999", "more than 1024 GPUs in --hardware 'H100x99999999999999999999'"),
        ("H100x" + "9" * 5000, "more than 1024 GPUs in --hardware 'H100x" + "9" * 35 + "…'"),
        ("H100x1025", "more than 1024 GPUs in --hardware 'H100x1025'"),
        ("cpu:" + "9" * 400 + "TB", f"the memory size '{'9' * 40}…' in --hardware 'cpu:{'9' * 36}…' is out of range"),
        ("cpu:100000TB", "the memory size '100000TB' in --hardware 'cpu:100000TB' is out of range"),
        ("cpu:0.0000001GB", "the memory size '0.0000001GB' in --hardware 'cpu:0.0000001GB' is out of range"),
    ],
)  # fmt: skip
def test_huge_counts_and_sizes_are_refused_at_once(real_matrix: Matrix, text: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(UsageError) as caught:
        parse_hardware(text, real_matrix.gpus)
    assert caught.value.message == message
    assert time.monotonic() - started < 0.5


def test_the_largest_count_is_accepted(real_matrix: Matrix) -> None:
    assert len(parse_hardware(f"H100x{MAX_GPU_COUNT}", real_matrix.gpus).gpus) == MAX_GPU_COUNT
    assert parse_hardware("H100x0008", real_matrix.gpus).gpus[0].name == "H100"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan", "smoke-gemma3", "--hardware", "H100x99999999999999999999"), "more than 1024 GPUs"),
        (("plan", "smoke-gemma3", "--max-model-len", "9" * 20), f"--max-model-len {'9' * 20} is out of range"),
        (("plan", "smoke-gemma3", "--max-model-len", "0"), "--max-model-len 0 is out of range"),
        (("plan", "smoke-gemma3", "--tensor-parallel-size", "100000"), "--tensor-parallel-size 100000 is out of range"),
        (("plan", "smoke-gemma3", "--tensor-parallel-size", "-1"), "--tensor-parallel-size -1 is out of range"),
        (("verify", "--jobs", "1000000"), "--jobs 1000000 is out of range"),
        (("verify", "--timeout", "nan"), "--timeout nan is not a finite number"),
        (("verify", "--timeout", "inf"), "--timeout inf is not a finite number"),
        (("verify", "--timeout", "-5"), "--timeout -5.0 is out of range"),
        (("envs", "gc", "--older-than", "9" * 400 + "d"), "--older-than"),
        (("ci", "runner-check", "--min-compute-capability", "8.0", "--min-memory-gib", "nan"), "--min-memory-gib nan"),
    ],
)  # fmt: skip
def test_numeric_options_out_of_range_exit_2(cli: Cli, args: tuple[str, ...], message: str) -> None:
    started = time.monotonic()
    result = cli(*args, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 20


def test_within_names_the_range() -> None:
    from envman.cli._common import tensor_parallel_size, within

    with pytest.raises(UsageError) as caught:
        within("--gpu-memory-utilization", 0.0)
    assert caught.value.hint == "--gpu-memory-utilization must be more than 0 and at most 1"
    with pytest.raises(UsageError):
        within("--port", 65536)
    assert within("--port", 0) == 0
    assert tensor_parallel_size("auto") is None
    assert tensor_parallel_size("8") == 8
    for bad in ("0", "1025", "9" * 5000, "two", "-1"):
        with pytest.raises(UsageError):
            tensor_parallel_size(bad)

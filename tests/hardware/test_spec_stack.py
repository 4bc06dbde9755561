"""--hardware with the host stack: driver=, cuda=, glibc= after the device."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from envman.errors import UsageError
from envman.hardware.spec import parse_hardware, with_host_stack
from envman.matrix.schema import GpuSpec


def test_driver_cuda_and_glibc_are_read(gpu_table: Mapping[str, GpuSpec]) -> None:
    host = parse_hardware("H100x2,driver=550.54.15,cuda=12.4,glibc=2.31", gpu_table)
    assert len(host.gpus) == 2
    assert (host.driver_version, host.cuda_driver_version, host.glibc) == ("550.54.15", "12.4", "2.31")
    assert host.source == "H100x2,driver=550.54.15,cuda=12.4,glibc=2.31"


def test_without_them_the_stack_is_unknown(gpu_table: Mapping[str, GpuSpec]) -> None:
    host = parse_hardware("RTX4090", gpu_table)
    assert (host.driver_version, host.cuda_driver_version, host.glibc) == (None, None, None)
    assert host.source == "RTX4090"


def test_a_cpu_host_takes_glibc(gpu_table: Mapping[str, GpuSpec]) -> None:
    assert parse_hardware("cpu:32GB, glibc=2.28", gpu_table).glibc == "2.28"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("H100,driver=latest", "driver='latest' is not a driver version such as 550.54.15"),
        ("H100,cuda=12", "cuda='12' is not a CUDA version such as 12.4"),
        ("H100,glibc=musl", "glibc='musl' is not a glibc version such as 2.31"),
        ("H100,drvier=550.54.15", "cannot read 'drvier=550.54.15' in --hardware 'H100,drvier=550.54.15'"),
        ("H100,550.54.15", "cannot read '550.54.15' in --hardware 'H100,550.54.15'"),
        ("cpu,driver=550.54.15", "driver=550.54.15 names an NVIDIA driver, but the host has no GPU"),
    ],
)
def test_bad_stack_values_are_usage_errors(gpu_table: Mapping[str, GpuSpec], text: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_hardware(text, gpu_table)
    assert raised.value.message == message
    assert raised.value.hint is not None
    assert "driver=550.54.15" in raised.value.hint


def test_a_command_option_sets_the_driver_of_a_named_host(gpu_table: Mapping[str, GpuSpec]) -> None:
    host = with_host_stack(parse_hardware("A100-80GB", gpu_table), driver="535.183.01")
    assert host.driver_version == "535.183.01"
    assert host.glibc is None

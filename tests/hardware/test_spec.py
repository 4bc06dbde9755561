"""``--hardware`` text to a Host, and GPU names to GPU table entries."""

from __future__ import annotations

import pytest
from packaging.version import Version

from envman.errors import UsageError
from envman.hardware.host import GIB
from envman.hardware.spec import DEFAULT_CORES, GRAMMAR, match_gpu, parse_hardware
from envman.matrix.schema import Accelerator, GpuSpec

Table = dict[str, GpuSpec]

REQUIRED = [
    "V100", "V100-16GB", "T4", "A10", "A10G", "A100-40GB", "A100-80GB", "L4", "L40S",
    "H100", "H200", "B200", "RTX3090", "RTX4090", "RTX5090", "A6000",
]  # fmt: skip


def test_cpu(gpu_table: Table) -> None:
    host = parse_hardware("cpu", gpu_table)

    assert host.gpus == ()
    assert host.accelerator is Accelerator.CPU
    assert (host.os, host.arch, host.source) == ("linux", "x86_64", "cpu")
    assert host.cpu.memory_total_bytes == 64 * GIB
    assert host.cpu.cores == DEFAULT_CORES
    assert "avx2" in host.cpu.flags
    assert "avx512f" not in host.cpu.flags
    assert host.notes == ("described by --hardware 'cpu': CPU assumed (16 cores, x86-64-v3, 64 GiB RAM)",)


@pytest.mark.parametrize(
    ("text", "memory"),
    [
        ("cpu:64GB", 64 * GIB),
        ("cpu:32GiB", 32 * GIB),
        ("cpu:16G", 16 * GIB),
        ("CPU:8gb", 8 * GIB),
        ("cpu:12.5GB", round(12.5 * GIB)),
        ("cpu:24", 24 * GIB),
        ("cpu:1.5TB", round(1.5 * 1024 * GIB)),
    ],
)
def test_cpu_memory(gpu_table: Table, text: str, memory: int) -> None:
    host = parse_hardware(text, gpu_table)
    assert host.cpu.memory_total_bytes == memory
    assert host.source == text


@pytest.mark.parametrize(
    ("text", "name", "count"),
    [
        ("A100-40GBx2", "A100-40GB", 2),
        ("a100-80gbx4", "A100-80GB", 4),
        ("H100x8", "H100", 8),
        ("h100", "H100", 1),
        ("RTX4090", "RTX4090", 1),
        ("RTX4090x2", "RTX4090", 2),
        ("rtx 4090", "RTX4090", 1),
        ("V100", "V100", 1),
        ("V100-32GBx2", "V100", 2),
        ("V100-16GB", "V100-16GB", 1),
        ("L40S", "L40S", 1),
        ("A10G", "A10G", 1),
        ("A10", "A10", 1),
        ("B200x8", "B200", 8),
        ("RTX5090", "RTX5090", 1),
        ("A6000", "A6000", 1),
    ],
)
def test_gpu_hosts(gpu_table: Table, text: str, name: str, count: int) -> None:
    host = parse_hardware(text, gpu_table)
    spec = gpu_table[name]

    assert [g.name for g in host.gpus] == [name] * count
    assert host.min_compute_capability == spec.compute_capability
    assert host.gpu_memory_bytes == round(spec.memory_gib * GIB)
    assert host.accelerator is Accelerator.CUDA
    assert (host.os, host.arch, host.source) == ("linux", "x86_64", text)
    assert host.cpu.memory_total_bytes >= 64 * GIB


def test_gpu_host_ram_covers_the_gpus(gpu_table: Table) -> None:
    assert parse_hardware("T4", gpu_table).cpu.memory_total_bytes == 64 * GIB
    host = parse_hardware("H200x8", gpu_table)
    assert host.cpu.memory_total_bytes == 8 * 141 * GIB
    assert host.notes == ("described by --hardware 'H200x8': CPU assumed (16 cores, x86-64-v3, 1128 GiB RAM)",)


def test_v100_is_the_32gb_one(gpu_table: Table) -> None:
    host = parse_hardware("V100", gpu_table)
    assert host.gpus[0].compute_capability == Version("7.0")
    assert host.gpu_memory_bytes == 32 * GIB


@pytest.mark.parametrize("text", ["A100", "A100x2", "a100"])
def test_a100_is_ambiguous(gpu_table: Table, text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_hardware(text, gpu_table)
    name = text.removesuffix("x2")
    assert caught.value.message == f"ambiguous GPU '{name}' in --hardware '{text}': it could be A100-40GB or A100-80GB"
    assert caught.value.hint == "name one of them: A100-40GB, A100-80GB"
    assert caught.value.exit_code == 2


def test_unknown_gpu(gpu_table: Table) -> None:
    with pytest.raises(UsageError) as caught:
        parse_hardware("Foox2", gpu_table)
    assert caught.value.message == "unknown GPU 'Foo' in --hardware 'Foox2'"
    assert caught.value.hint == "known GPUs: " + ", ".join(sorted(gpu_table))


def test_unknown_gpu_suggests_the_closest(gpu_table: Table) -> None:
    with pytest.raises(UsageError) as caught:
        parse_hardware("H10x2", gpu_table)
    assert caught.value.message == "unknown GPU 'H10' in --hardware 'H10x2'"
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("known GPUs: A10, A100-40GB, ")
    assert "(closest: H100" in caught.value.hint


def test_unknown_name_with_x_digits_is_reported_whole(gpu_table: Table) -> None:
    # Not 9999 GPUs called "RT".
    with pytest.raises(UsageError, match=r"^unknown GPU 'RTX9999' in --hardware 'RTX9999'$"):
        parse_hardware("RTX9999", gpu_table)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A100-40GBx0", "GPU count must be at least 1 in --hardware 'A100-40GBx0'"),
        ("cpu:lots", "cannot read the memory size 'lots' in --hardware 'cpu:lots'"),
        ("cpu:64PB", "cannot read the memory size '64PB' in --hardware 'cpu:64PB'"),
        ("cpu:0GB", "cannot read the memory size '0GB' in --hardware 'cpu:0GB'"),
        ("x2", "no GPU name in --hardware 'x2'"),
        ("", "--hardware is empty"),
    ],
)
def test_malformed(gpu_table: Table, text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_hardware(text, gpu_table)
    assert caught.value.message == message
    assert caught.value.hint == GRAMMAR


@pytest.mark.parametrize(
    ("nvml_name", "entry"),
    [
        ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA A100-PCIE-40GB", "A100-40GB"),
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA A100 80GB PCIe", "A100-80GB"),
        ("Tesla V100-SXM2-32GB", "V100"),
        ("Tesla V100-PCIE-16GB", "V100-16GB"),
        ("Tesla T4", "T4"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 PCIe", "H100"),
        ("NVIDIA H100 NVL", "H100-NVL"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA B200", "B200"),
        ("NVIDIA GeForce RTX 3090", "RTX3090"),
        ("NVIDIA GeForce RTX 4090", "RTX4090"),
        ("NVIDIA GeForce RTX 5090", "RTX5090"),
        ("NVIDIA RTX A6000", "A6000"),
    ],
)
def test_match_nvml_names(gpu_table: Table, nvml_name: str, entry: str) -> None:
    spec = match_gpu(nvml_name, gpu_table)
    assert spec is not None
    assert spec.name == entry


@pytest.mark.parametrize("name", ["NVIDIA GeForce GTX 1080", "NVIDIA A100", "", "NVIDIA"])
def test_match_nothing(gpu_table: Table, name: str) -> None:
    assert match_gpu(name, gpu_table) is None


def test_fragment_has_the_required_gpus(gpu_table: Table) -> None:
    assert set(REQUIRED) <= set(gpu_table)
    for spec in gpu_table.values():
        assert spec.memory_gib > 0
        assert spec.compute_capability >= Version("7.0")
        assert spec.evidence


def test_every_spelling_in_the_fragment_names_its_own_entry(gpu_table: Table) -> None:
    for spec in gpu_table.values():
        for spelling in (spec.name, *spec.aliases):
            assert match_gpu(spelling, gpu_table) == spec, spelling
            assert parse_hardware(spelling, gpu_table).gpus[0].name == spec.name

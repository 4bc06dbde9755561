"""The host-stack readers on real members of released wheels (tests/probe/data/SOURCES.md)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from envman.hardware.cuda import ptx_runs, sass_runs, usable_sass
from envman.probe.hoststack import fatbin, wheel
from envman.probe.hoststack.elf import read_dynamic, read_library
from envman.probe.hoststack.pins import cuda_runtime, exact_pins, lockfile_pins
from envman.pypi import ReleaseFile

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
FLASHMLA = DATA / "_flashmla_extension_C.abi3.so"
BLOB = DATA / "moe_C_fatbin_blob.bin"


def test_fatbin_entries_of_a_real_blob() -> None:
    blob = BLOB.read_bytes()
    found = list(fatbin.entries(io.BytesIO(blob), 0, len(blob)))
    assert [(e.kind, e.arch) for e in found] == [
        (fatbin.Kind.SASS, 75),
        (fatbin.Kind.PTX, 80),
        (fatbin.Kind.SASS, 80),
    ]
    assert [e.compute_capability for e in found] == ["7.5", "8.0", "8.0"]


def test_fatbin_skips_padding_between_blobs() -> None:
    blob = BLOB.read_bytes()
    section = blob + bytes(24) + blob + bytes(8)
    assert len(list(fatbin.entries(io.BytesIO(section), 0, len(section)))) == 6


def test_fatbin_refuses_bytes_that_are_no_fat_binary() -> None:
    with pytest.raises(fatbin.FatbinError, match="magic 0x464c457f, expected 0xba55ed50"):
        list(fatbin.entries(io.BytesIO(FLASHMLA.read_bytes()), 0, 4096))


def test_elf_reader_on_a_real_library() -> None:
    with FLASHMLA.open("rb") as stream:
        facts = read_library(stream)
    assert "libcudart.so.13" in facts.needed
    assert "libcuda.so.1" in facts.needed
    assert facts.glibc == "2.3"
    assert facts.sass == ("9.0a", "10.0f")  # FlashMLA: "9.0a" and "10.0f" (flashmla.cmake), flags 0x100000 / 0x200000
    assert facts.ptx == ()
    assert facts.fatbin_entries == 4


def test_dynamic_section_from_the_first_bytes_matches_pyelftools() -> None:
    data = FLASHMLA.read_bytes()
    with FLASHMLA.open("rb") as stream:
        full = read_library(stream)
    assert read_dynamic(data) == (full.needed, full.glibc)
    assert read_dynamic(data[:200]) is None  # the dynamic segment lies further on
    assert read_dynamic(b"not an elf file") is None


def _wheel(tmp_path: Path, name: str = "demo-1.0-cp311-cp311-manylinux_2_28_x86_64.whl") -> ReleaseFile:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("demo/_C.abi3.so", FLASHMLA.read_bytes())
        archive.writestr("demo/readme.txt", "not a library")
        archive.writestr(
            "demo-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: demo\nRequires-Dist: torch==2.6.0\n"
            'Requires-Dist: nvidia-cuda-runtime-cu12 (==12.4.127) ; platform_system == "Linux"\n\nlong text\n',
        )
        archive.writestr("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: cp311-cp311-linux_x86_64\n")
    return ReleaseFile(path.name, path.as_uri(), "ab" * 32, path.stat().st_size, "bdist_wheel")


def test_wheel_facts_are_read_once_then_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = _wheel(tmp_path)
    first = wheel.wheel_facts(file)
    assert first.platforms == ("manylinux_2_28_x86_64",)
    assert first.wheel_tags == ("cp311-cp311-linux_x86_64",)
    assert [lib.member for lib in first.libraries] == ["demo/_C.abi3.so"]
    assert first.libraries[0].sass == ("9.0a", "10.0f")
    assert first.requires[0] == "torch==2.6.0"

    def offline(url: str) -> None:
        raise AssertionError(f"read {url} again")

    monkeypatch.setattr(wheel, "RemoteWheel", offline)
    again = wheel.wheel_facts(file)
    assert again.libraries == first.libraries
    assert again.seconds == 0.0


def test_wheel_facts_read_only_the_dynamic_section_of_libraries_without_wanted_kernels(tmp_path: Path) -> None:
    file = _wheel(tmp_path, "other-1.0-cp311-cp311-manylinux_2_28_x86_64.whl")
    facts = wheel.wheel_facts(file, kernels=lambda name: False, key="none")
    assert facts.libraries[0].needed[:2] == ("libtorch.so", "libcudart.so.13")
    assert facts.libraries[0].glibc == "2.3"
    assert facts.libraries[0].fatbin_entries == 0


def test_pins_of_the_committed_cuda_lockfile() -> None:
    pins = lockfile_pins(REPO / "lockfiles" / "vllm-0.32.0-cuda-py3.11.txt")
    assert pins["nvidia-cuda-runtime"].version == "13.0.96"
    assert pins["torch"].version == "2.13.0"
    line, pin = cuda_runtime(pins) or ("", None)
    assert line == "13.0"
    assert pin is not None
    assert pin.where.startswith("lockfiles/vllm-0.32.0-cuda-py3.11.txt:")


def test_requires_dist_pins_honour_markers() -> None:
    requires = (
        'nvidia-cuda-runtime-cu12 (==12.4.127) ; platform_system == "Linux" and platform_machine == "x86_64"',
        'torch==2.6.0; platform_system == "Windows"',
        "triton>=3",
    )
    pins = exact_pins(requires, "METADATA")
    assert set(pins) == {"nvidia-cuda-runtime-cu12"}
    assert cuda_runtime(pins) == ("12.4", pins["nvidia-cuda-runtime-cu12"])
    assert cuda_runtime(exact_pins(("torch==2.6.0+cu124",), "lock")) == ("12.4", pins_of("torch", "2.6.0+cu124"))


def pins_of(name: str, version: str) -> object:
    return exact_pins((f"{name}=={version}",), "lock")[name]


@pytest.mark.parametrize(
    ("capability", "sass", "expected"),
    [
        ("8.9", ("7.5", "8.0", "8.6"), "8.6"),  # same major, older minor runs
        ("8.0", ("8.6", "9.0"), None),  # a newer minor does not
        ("9.0", ("8.0", "8.6"), None),  # nor another major
        ("12.0", ("10.0",), None),
    ],
)
def test_sass_binary_compatibility(capability: str, sass: tuple[str, ...], expected: str | None) -> None:
    assert sass_runs(Version(capability), sass) == expected


def test_ptx_and_the_usable_set() -> None:
    assert ptx_runs(Version("12.0"), ("8.0", "9.0")) == "9.0"
    assert ptx_runs(Version("7.5"), ("8.0",)) is None
    engine = (("7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0"), ())
    torch = (("5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"), ())
    assert usable_sass([engine, torch]) == ("7.0", "7.5", "8.0", "8.6", "8.9", "9.0")


def test_requires_dist_after_a_multi_line_license_is_read(tmp_path: Path) -> None:
    # vllm 0.7.3 to 0.8.4: the License field continues on lines of spaces before Requires-Dist
    path = tmp_path / "lic-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "lic-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: lic\nLicense: Apache 2.0\n        \n        more text\n"
            "Requires-Dist: torch==2.5.1\nRequires-Dist: xformers==0.0.28.post3\n\nbody: not a header\n",
        )
    file = ReleaseFile(path.name, path.as_uri(), "cd" * 32, path.stat().st_size, "bdist_wheel")
    assert wheel.wheel_facts(file).requires == ("torch==2.5.1", "xformers==0.0.28.post3")


def test_each_committed_cuda_lock_pins_the_runtime_line_its_wheels_were_read_with() -> None:
    from envman.matrix.load import load_matrix

    matrix = load_matrix(REPO / "matrix.toml")
    checked = 0
    for lock in sorted((REPO / "lockfiles").glob("*-cuda-py*.txt")):
        engine, version, _variant, _python = lock.name.removesuffix(".txt").rsplit("-", 3)
        record = matrix.build_requirements.get((engine, "cuda", version))
        if record is None:
            continue
        found = cuda_runtime(lockfile_pins(lock))
        assert found is not None, f"{lock.name} pins no CUDA runtime"
        assert found[0] == record.cuda_runtime, f"{lock.name}: {found[1].where} vs host_requirements"
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize(
    ("capability", "sass", "expected"),
    [
        ("9.0", ("9.0a",), "9.0"),  # sm_90a runs on exactly 9.0 ...
        ("10.0", ("9.0a",), None),  # ... and on no other capability, not even a newer one
        ("10.3", ("10.0a",), None),  # B300 (10.3) does not run sm_100a
        ("10.3", ("10.0", "10.0a"), "10.0"),  # the plain sm_100 does
        ("9.0", ("8.0", "9.0a"), "9.0"),
        ("10.3", ("10.0f",), "10.0"),  # a family-specific target runs on the family
    ],
)
def test_an_architecture_specific_target_runs_only_on_its_own_capability(
    capability: str, sass: tuple[str, ...], expected: str | None
) -> None:
    assert sass_runs(Version(capability), sass) == expected


def test_architecture_specific_ptx_is_not_jit_compiled_for_newer_gpus() -> None:
    assert ptx_runs(Version("10.0"), ("9.0a",)) is None
    assert ptx_runs(Version("9.0"), ("9.0a",)) == "9.0"
    assert usable_sass([(("9.0a",), ()), (("8.0", "9.0"), ())]) == ("9.0",)


def test_each_committed_cuda_lock_pins_the_cuda_major_its_engine_links() -> None:
    """A lock whose torch brings CUDA 13 beside an engine linked against libcudart.so.12
    (lmdeploy 0.18.0 resolved freely) mixes majors: the engine fails to load its runtime."""
    from envman.matrix.load import load_matrix

    matrix = load_matrix(REPO / "matrix.toml")
    checked = []
    for lock in sorted((REPO / "lockfiles").glob("*-cuda-py*.txt")):
        engine, version, _variant = lock.name.split("-py")[0].rsplit("-", 2)
        record = matrix.build_requirements.get((engine, "cuda", version))
        if record is None:
            continue
        linked = {n.rsplit(".", 1)[-1] for n in record.sonames if n.startswith("libcudart.so.")}
        found = cuda_runtime(lockfile_pins(lock))
        assert found is not None, f"{lock.name} pins no CUDA runtime"
        pins = lockfile_pins(lock)
        assert linked <= {found[0].split(".")[0]}, f"{lock.name}: links {linked}, pins {found[1].where}"
        other = [p.where for name, p in pins.items() if name in ("nvidia-cuda-runtime", "cuda-toolkit")]
        if linked == {"12"}:
            assert not other, f"{lock.name} pins a CUDA 13 runtime beside a CUDA 12 engine: {other}"
        checked.append(engine)
    assert {"lmdeploy", "sglang", "vllm"} <= set(checked)


def test_the_lmdeploy_record_is_the_cuda_12_build_its_lock_installs() -> None:
    from envman.matrix.load import load_matrix
    from envman.plan.requirements import requirements_for

    matrix = load_matrix(REPO / "matrix.toml")
    record = matrix.build_requirements[("lmdeploy", "cuda", "0.18.0")]
    assert "libcudart.so.12" in record.sonames
    assert record.torch == lockfile_pins(REPO / "lockfiles" / "lmdeploy-0.18.0-cuda-py3.11.txt")["torch"].version
    needs = requirements_for(matrix, "lmdeploy", "0.18.0", "cuda")
    assert needs is not None
    assert (needs.cuda_runtime, needs.min_driver, needs.glibc) == ("12.8", "525.60.13", "2.28")
    # TurboMind's sm_90a/sm_100a/sm_120a run only on exactly 9.0, 10.0, 12.0: no 10.3, no 12.1
    assert needs.sass == ("7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0")

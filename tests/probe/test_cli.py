from __future__ import annotations

import subprocess
import sys


def test_cli_names_the_closest_family() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "envman", "probe", "gema3", "--engine", "vllm"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "error: unknown family 'gema3'" in done.stderr
    assert "hint: Did you mean gemma3" in done.stderr


# -- envman probe --host-requirements, against a local index (ENVMAN_PYPI_URL) -----------------

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from envman.matrix.load import load_matrix  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LIBRARY = Path(__file__).parent / "data" / "_flashmla_extension_C.abi3.so"  # a real vLLM member


def _publish(index: Path, package: str, version: str, filename: str, members: dict[str, bytes]) -> None:
    folder = index / package
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / filename
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    entry = {
        "filename": filename,
        "url": filename,
        "digests": {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()},
        "size": wheel.stat().st_size,
        "packagetype": "bdist_wheel",
        "upload_time": "2025-04-28T00:00:00",
    }
    (folder / "json").write_text(json.dumps({"releases": {version: [entry]}}))


@pytest.fixture
def local_index(tmp_path: Path) -> Path:
    index = tmp_path / "index"
    metadata = "Metadata-Version: 2.1\nName: {0}\n{1}\n"
    _publish(
        index, "vllm", "0.8.5", "vllm-0.8.5-cp38-abi3-manylinux1_x86_64.whl",
        {
            "vllm/_C.abi3.so": LIBRARY.read_bytes(),
            "vllm-0.8.5.dist-info/METADATA": metadata.format("vllm", "Requires-Dist: torch==2.6.0").encode(),
            "vllm-0.8.5.dist-info/WHEEL": b"Wheel-Version: 1.0\nTag: cp38-abi3-linux_x86_64\n",
        },
    )  # fmt: skip
    _publish(
        index, "torch", "2.6.0", "torch-2.6.0-cp311-cp311-manylinux1_x86_64.whl",
        {
            "torch/lib/libtorch_cuda.so": LIBRARY.read_bytes(),
            "torch-2.6.0.dist-info/METADATA": metadata.format(
                "torch", 'Requires-Dist: nvidia-cuda-runtime-cu12 (==12.4.127) ; platform_system == "Linux"'
            ).encode(),
        },
    )  # fmt: skip
    return index


def _envman(tmp_path: Path, index: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVMAN_")}
    env |= {"ENVMAN_HOME": str(tmp_path / "home"), "ENVMAN_PYPI_URL": index.as_uri()}
    return subprocess.run([sys.executable, "-m", "envman", *args], capture_output=True, text=True, env=env)


def test_host_requirements_json_and_write(tmp_path: Path, local_index: Path) -> None:
    matrix = tmp_path / "matrix.toml"
    matrix.write_text((REPO / "matrix.toml").read_text(encoding="utf-8"), encoding="utf-8")
    done = _envman(
        tmp_path, local_index, "probe", "--host-requirements", "--engine", "vllm", "--versions", "==0.8.5",
        "--write", "--matrix", str(matrix), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [build] = json.loads(done.stdout)["builds"]
    assert build["version"] == "0.8.5"
    assert build["cuda_runtime_from"].startswith("nvidia-cuda-runtime-cu12==12.4.127 (torch-2.6.0-")
    assert build["requires"]["cuda_runtime"] == "12.4"
    assert build["requires"]["min_driver"] == "525.60.13"
    assert build["requires"]["compute_capabilities"] == ["9.0", "10.0"]
    assert build["requires"]["glibc"] == "2.5"  # manylinux1 promises 2.5, above the library's GLIBC_2.3
    assert "libcudart.so.13" in build["sonames"]

    written = load_matrix(matrix).build_requirements[("vllm", "cuda", "0.8.5")]
    assert written.torch == "2.6.0"
    assert [k.library for k in written.kernels] == ["vllm/_C.abi3.so", "torch/lib/libtorch_cuda.so (torch 2.6.0)"]
    original = (REPO / "matrix.toml").read_text(encoding="utf-8").split("\n[host_requirements.", 1)[0]
    assert matrix.read_text(encoding="utf-8").startswith(original.rstrip("\n"))  # nothing above was reformatted

    again = _envman(tmp_path, local_index, "probe", "--host-requirements", "--engine", "vllm", "--versions", "==0.8.5")
    assert again.returncode == 0, again.stderr
    assert "vllm 0.8.5: CUDA 12.4 (driver >= 525.60.13), SASS 9.0, 10.0, glibc 2.5" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("gemma3", "--host-requirements", "--engine", "vllm"), "error: --host-requirements takes no FAMILY"),
        (("--host-requirements", "--engine", "vllm", "--variant", "cpu"), "error: vllm/cpu is a cpu build"),
        (("--host-requirements", "--engine", "vllm", "--variant", "rocm"), "error: vllm has no variant 'rocm'"),
        (("--engine", "vllm"), "error: FAMILY is missing"),
    ],
)
def test_host_requirements_usage_errors(tmp_path: Path, local_index: Path, args: tuple[str, ...], message: str) -> None:
    done = _envman(tmp_path, local_index, "probe", *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_a_variant_from_its_own_index_is_not_probed_on_pypi() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVMAN_")}
    done = subprocess.run(
        [sys.executable, "-m", "envman", "probe", "--host-requirements", "--engine", "xllamacpp"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert "error: xllamacpp/cuda wheels come from https://xorbitsai.github.io/xllamacpp/whl/cu128, not from PyPI" in (
        done.stderr
    )

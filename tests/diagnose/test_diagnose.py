"""diagnose on captured logs (real engine output from public issues, tests/diagnose/logs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envman.diagnose import diagnose
from envman.matrix.load import load_matrix

LOGS = Path(__file__).parent / "logs"


@pytest.fixture(scope="module")
def matrix():  # type: ignore[no-untyped-def]
    return load_matrix()


@pytest.mark.parametrize(
    ("log", "first_id"),
    [
        ("llamacpp_unknown_arch_gemma3.log", "llamacpp-unknown-architecture"),
        ("llamacpp_unknown_arch_gemma3n.log", "llamacpp-unknown-architecture"),
        ("vllm_arch_not_supported.log", "vllm-architecture-not-supported"),
        ("vllm_arch_failed_inspect.log", "vllm-architecture-failed-inspection"),
        ("transformers_unknown_model_type_gemma3.log", "transformers-unknown-model-type"),
        ("vllm_bnb_absmax_keyerror.log", "bnb-checkpoint-without-bnb-loader"),
        ("vllm_bnb_absmax_keyerror_llama33.log", "bnb-checkpoint-without-bnb-loader"),
        ("vllm_gemma3_bnb_shape_assert.log", "weight-shape-mismatch"),
        ("vllm_bf16_cc70.log", "bf16-needs-cc80"),
        ("torch_cuda_oom.log", "cuda-out-of-memory"),
        ("torch_cuda_oom_old.log", "cuda-out-of-memory"),
        ("cuda_no_kernel_image.log", "no-kernel-image"),
        ("missing_libcudart12.log", "missing-shared-library"),
        ("missing_libgomp.log", "missing-shared-library"),
        ("missing_libgomp_llama_cpp_python.log", "missing-shared-library"),
        ("sglang_sm75.log", "sglang-needs-sm75"),
        ("torch_driver_too_old.log", "cuda-driver-too-old"),
        ("container_cuda_condition.log", "container-cuda-condition"),
        ("ptx_unsupported_toolchain.log", "ptx-unsupported-toolchain"),
        ("glibc_too_old.log", "glibc-too-old"),
        ("ctypes_libcudart12.log", "cuda-runtime-missing"),
        ("missing_libcudart12.log", "cuda-runtime-missing"),
        ("vllm_pp_eager_intermediate_tensors.log", "vllm-pp-eager-intermediate-tensors"),
    ],
)
def test_each_captured_log_is_recognised(matrix, log: str, first_id: str) -> None:  # type: ignore[no-untyped-def]
    findings = diagnose((LOGS / log).read_text(), matrix)
    assert findings, f"{log}: nothing matched"
    assert first_id in [f.id for f in findings]


def test_unknown_gemma3_architecture_names_the_first_xllamacpp_release(matrix) -> None:  # type: ignore[no-untyped-def]
    text = (LOGS / "llamacpp_unknown_arch_gemma3.log").read_text()
    [finding] = diagnose(text, matrix, engine="xllamacpp")
    assert finding.family == "gemma3"
    assert finding.first_version == "0.1.11"
    assert "xllamacpp>=0.1.11" in finding.fix
    assert finding.entry == "families.gemma3.engines.xllamacpp"
    assert "unknown model architecture: 'gemma3'" in finding.line


def test_vllm_too_old_for_gemma3_names_080(matrix) -> None:  # type: ignore[no-untyped-def]
    text = "ValueError: Model architectures ['Gemma3ForConditionalGeneration'] are not supported for now."
    [finding] = diagnose(text, matrix, engine="vllm")
    assert finding.first_version == "0.8.0"
    assert finding.fix.startswith("use vllm>=0.8.0")


def test_known_bad_bnb_gemma3_is_linked_to_its_matrix_entry(matrix) -> None:  # type: ignore[no-untyped-def]
    text = (
        'File "vllm/model_executor/models/gemma3_mm.py", line 618, in load_weights\n'
        "KeyError: 'layers.12.mlp.down_proj.weight.absmax'\n"
    )
    findings = diagnose(text, matrix, engine="vllm")
    ids = [f.id for f in findings]
    assert ids[0] == "known-bad:gemma3:vllm"
    assert findings[0].fix == "use vllm>=0.8.3"
    assert findings[0].entry == "families.gemma3.engines.vllm.known_bad[0]"
    assert "bnb-checkpoint-without-bnb-loader" in ids


def test_known_bad_needs_the_family_in_the_log(matrix) -> None:  # type: ignore[no-untyped-def]
    # the same KeyError from a Llama checkpoint is not blamed on Gemma-3
    text = (LOGS / "vllm_bnb_absmax_keyerror_llama33.log").read_text()
    assert "known-bad:gemma3:vllm" not in [f.id for f in diagnose(text, matrix)]


def test_engine_filter_skips_other_engines_signatures(matrix) -> None:  # type: ignore[no-untyped-def]
    text = (LOGS / "sglang_sm75.log").read_text()
    assert diagnose(text, matrix, engine="vllm") == []


def test_nothing_matched(matrix) -> None:  # type: ignore[no-untyped-def]
    assert diagnose("INFO: server started\nall good\n", matrix) == []


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], input=stdin, capture_output=True, text=True, check=False
    )


def test_cli_prints_cause_and_fix() -> None:
    result = run_cli("diagnose", str(LOGS / "llamacpp_unknown_arch_gemma3.log"), "--engine", "xllamacpp")
    assert result.returncode == 0, result.stderr
    assert "cause: this llama.cpp build predates the model's architecture: 'gemma3' (gemma3)" in result.stdout
    assert "fix:   use xllamacpp>=0.1.11" in result.stdout


def test_cli_reads_stdin_and_prints_json() -> None:
    text = (LOGS / "vllm_bf16_cc70.log").read_text()
    result = run_cli("diagnose", "-", "--json", stdin=text)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["matched"] is True
    assert data["findings"][0]["id"] == "bf16-needs-cc80"
    assert "float16" in data["findings"][0]["fix"]


def test_cli_no_match_exits_1() -> None:
    result = run_cli("diagnose", "-", stdin="nothing to see\n")
    assert result.returncode == 1
    assert "no known failure signature matched" in result.stdout


def test_cli_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("diagnose", str(tmp_path / "nope.log"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr

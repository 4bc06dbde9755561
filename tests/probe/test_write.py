from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

from envman.errors import ConfigError
from envman.probe.floor import ProbeResult, ProbeTarget
from envman.probe.write import write_floor

SAMPLE = """\
# The matrix: every floor carries its evidence.
[engines.vllm]
package = "vllm"  # PyPI distribution

[families.gemma3]
hf_architectures = ["Gemma3ForCausalLM"]  # text-only checkpoints

# vLLM reads gemma3 since 0.8
[families.gemma3.engines.vllm]
min_version = "0.7.0"
evidence = "a guess"
known_good = ["0.8.5"]  # smoke-tested

[families.qwen3]
model_types = ["qwen3"]

[models.tiny]
family = "gemma3"
"""


def result(family: str, engine: str, floor: str | None, evidence: str) -> ProbeResult:
    target = ProbeTarget(family, engine, engine, "vllm-registry", ("X",))
    return ProbeResult(target, Version(floor) if floor else None, None, evidence, (), 1)


def test_updates_a_floor_and_keeps_every_comment(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(SAMPLE)
    write_floor(matrix, result("gemma3", "vllm", "0.8.0", "vllm-0.8.0.tar.gz registers it"))
    text = matrix.read_text()
    assert text == SAMPLE.replace('"0.7.0"', '"0.8.0"').replace('"a guess"', '"vllm-0.8.0.tar.gz registers it"')
    assert list(tmp_path.iterdir()) == [matrix]  # the temp file is gone


def test_creates_the_engine_table_where_missing(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(SAMPLE)
    write_floor(matrix, result("qwen3", "vllm", "0.8.4", "qwen evidence"))
    write_floor(matrix, result("gemma3", "xllamacpp", "0.1.11", "xllamacpp evidence"))
    text = matrix.read_text()
    for line in SAMPLE.splitlines():
        assert line in text
    data = tomllib.loads(text)
    assert data["families"]["qwen3"]["engines"]["vllm"] == {"min_version": "0.8.4", "evidence": "qwen evidence"}
    assert data["families"]["gemma3"]["engines"]["xllamacpp"]["min_version"] == "0.1.11"
    assert data["families"]["gemma3"]["engines"]["vllm"]["known_good"] == ["0.8.5"]
    assert data["models"]["tiny"]["family"] == "gemma3"


def test_no_supporting_release_removes_the_floor(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(SAMPLE)
    write_floor(matrix, result("gemma3", "vllm", None, "no release has it"))
    engine = tomllib.loads(matrix.read_text())["families"]["gemma3"]["engines"]["vllm"]
    assert "min_version" not in engine
    assert engine["evidence"] == "no release has it"


def test_an_unknown_family_is_a_config_error(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(SAMPLE)
    with pytest.raises(ConfigError, match=r"families\.gemma4 is missing"):
        write_floor(matrix, result("gemma4", "vllm", "1.0", "e"))
    assert matrix.read_text() == SAMPLE

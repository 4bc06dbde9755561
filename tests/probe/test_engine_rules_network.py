"""vLLM's own rules read from its released wheels on PyPI (Python members by range request, cached)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from packaging.version import Version

from envman import pypi
from envman.matrix.load import load_matrix
from envman.probe.engine_rules import plugin_methods, probe_engine_rules, vllm_rules
from envman.probe.rules_write import rules_tables

pytestmark = pytest.mark.network


def _releases(*versions: str) -> list[pypi.Release]:
    wanted = {Version(v) for v in versions}
    return [r for r in pypi.releases("vllm") if r.version in wanted]


def test_float16_refusals_appear_in_0_9_1_and_gemma3_text_in_0_10_2() -> None:
    before, first, later = (vllm_rules(r) for r in _releases("0.9.0.1", "0.9.1", "0.10.2"))
    assert before.refused_dtypes == ()
    assert [d.model_type for d in first.refused_dtypes] == ["gemma2", "gemma3", "plamo2", "glm4"]
    assert first.refused_dtypes[1].member == "vllm/config.py"
    assert first.refused_dtypes[1].reason == "Numerical instability. Please use bfloat16 or float32 instead."
    assert first.refusal_message.startswith("vllm/config.py:")
    assert "gemma3_text" in {d.model_type for d in later.refused_dtypes}
    assert later.refused_dtypes[0].member == "vllm/config/__init__.py"


def test_quantization_methods_and_their_capabilities_as_each_release_declares_them() -> None:
    old, new = (vllm_rules(r) for r in _releases("0.8.5", "0.32.0"))
    assert old.quant_member == "vllm/model_executor/layers/quantization/__init__.py:8"
    fp8 = old.method("fp8")
    assert fp8 is not None
    assert fp8.min_capability == "8.0"
    assert fp8.member == "vllm/model_executor/layers/quantization/fp8.py"
    bnb = old.method("bitsandbytes")
    assert bnb is not None
    assert bnb.min_capability == "7.0"
    # 0.32.0: QUANTIZATION_METHODS is get_args of a Literal; fp8 from 7.5; bitsandbytes and gguf gone
    fp8 = new.method("fp8")
    assert fp8 is not None
    assert fp8.min_capability == "7.5"
    assert new.method("bitsandbytes") is None
    assert new.method("gguf") is None
    mxfp4 = new.method("gpt_oss_mxfp4")
    assert mxfp4 is not None
    assert mxfp4.min_capability == "8.0"
    assert mxfp4.note == "inherited from Mxfp4Config"
    assert "fbgemm_fp8" in new.deprecated


def test_bitsandbytes_left_for_a_plugin_in_0_28_0() -> None:
    rules = probe_engine_rules(_releases("0.27.1", "0.28.0")).rules
    moved = plugin_methods("vllm-bnb-plugin")
    assert [(m.method, m.min_capability) for m in moved] == [("bitsandbytes", "7.0")]
    table = rules_tables(probe_engine_rules(_releases("0.27.1", "0.28.0")), moved)
    plugins = table["quant_plugins"]
    assert [(p["method"], p["package"], p["versions"]) for p in plugins] == [  # type: ignore[union-attr]
        ("bitsandbytes", "vllm-bnb-plugin", ">=0.28.0")
    ]
    assert rules[0].method("bitsandbytes") is not None


def test_cached_by_sha256() -> None:
    (release,) = _releases("0.19.1")
    first = vllm_rules(release)
    started = time.monotonic()
    again = vllm_rules(release)
    assert time.monotonic() - started < 0.5
    assert again == first.__class__(**{**first.__dict__, "seconds": 0.0})


def test_the_committed_matrix_agrees_with_the_wheels() -> None:
    """Spot checks of [engine_rules.vllm] against a fresh read of the wheels."""
    rules = load_matrix().engine_rules["vllm"]
    for release in _releases("0.9.1", "0.14.0", "0.28.0"):
        read = vllm_rules(release)
        for method in read.quant_methods:
            recorded = rules.method(release.version, method.name)
            assert recorded is not None, (release.version, method.name)
            assert str(recorded.min_capability or "") == (method.min_capability or ""), (release.version, method.name)
        for refused in read.refused_dtypes:
            assert rules.refusal(release.version, (refused.model_type,), "float16") is not None


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", "probe", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_probe_engine_rules_writes_tables_the_matrix_loads(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.toml"
    shutil.copyfile(Path(__file__).resolve().parents[2] / "matrix.toml", matrix)
    done = _cli(
        "--engine-rules", "--engine", "vllm", "--versions", ">=0.27.1,<0.28.1", "--plugin", "vllm-bnb-plugin",
        "--write", "--json", "--matrix", str(matrix),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [r["version"] for r in data["releases"]] == ["0.27.1", "0.28.0"]
    assert {p["method"]: p["package"] for p in data["plugins"]} == {
        "gguf": "vllm-gguf-plugin",  # named by vllm's own Requires-Dist (extra-quant)
        "bitsandbytes": "vllm-bnb-plugin",
    }
    rules = load_matrix(matrix).engine_rules["vllm"]
    assert str(rules.probed) == "<=0.28.0,>=0.27.1"
    plugin = rules.plugin(Version("0.28.0"), "bitsandbytes")
    assert plugin is not None
    assert plugin.package == "vllm-bnb-plugin"


def test_probe_engine_rules_usage_errors() -> None:
    done = _cli("gemma3", "--engine-rules", "--engine", "vllm")
    assert done.returncode == 2
    assert "error: --engine-rules takes no FAMILY" in done.stderr
    done = _cli("--engine-rules", "--engine", "sglang")
    assert done.returncode == 2
    assert "error: --engine-rules reads vLLM's source only, not sglang's" in done.stderr

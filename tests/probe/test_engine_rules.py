"""Engine rules as matrix data: runs of releases, validation at load (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from envman.errors import ConfigError
from envman.matrix.load import load_matrix
from envman.probe.engine_rules import EngineRules, QuantMethod
from envman.probe.rules_write import spans

ROOT = Path(__file__).resolve().parents[2]


def _release(version: str, fp8: str | None) -> EngineRules:
    methods = () if fp8 is None else (QuantMethod("fp8", "Fp8Config", fp8, "fp8.py", 1),)
    return EngineRules("vllm", version, f"vllm-{version}.whl", "0" * 64, (), "", methods, "q.py:1", ())


def test_spans_close_at_the_next_release_and_end_at_the_newest_read() -> None:
    rules = [_release("0.7.0", "8.0"), _release("0.8.0", "8.0"), _release("0.9.0", "7.5"), _release("0.10.0", None)]
    found = spans(rules, lambda r: None if (m := r.method("fp8")) is None else (m.min_capability,))
    assert [(s.key, s.versions) for s in found] == [(("8.0",), ">=0.7.0,<0.9.0"), (("7.5",), ">=0.9.0,<0.10.0")]
    assert [(s.key, s.versions) for s in spans(rules[:2], lambda r: ("x",))] == [(("x",), ">=0.7.0,<=0.8.0")]


def test_the_committed_rules_answer_per_version() -> None:
    rules = load_matrix().engine_rules["vllm"]
    assert rules.refusal(Version("0.19.1"), ("gemma3", "gemma3_text"), "float16") is not None
    assert rules.refusal(Version("0.9.0.1"), ("gemma3",), "float16") is None
    fp8 = rules.method(Version("0.8.5"), "fp8")
    assert fp8 is not None
    assert str(fp8.min_capability) == "8.0"
    fp8 = rules.method(Version("0.32.0"), "fp8")
    assert fp8 is not None
    assert str(fp8.min_capability) == "7.5"
    assert rules.method(Version("0.32.0"), "bitsandbytes") is None
    plugin = rules.plugin(Version("0.32.0"), "bitsandbytes")
    assert plugin is not None
    assert plugin.package == "vllm-bnb-plugin"


def test_a_bad_capability_is_reported_with_its_key_path(tmp_path: Path) -> None:
    text = (ROOT / "matrix.toml").read_text(encoding="utf-8")
    aqlm = 'method = "aqlm"\nversions = ">=0.7.0,<0.10.1"\nmin_capability = '
    broken = text.replace(aqlm + '"6.0"', aqlm + '"sm60"', 1)
    assert broken != text
    (tmp_path / "matrix.toml").write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_matrix(tmp_path / "matrix.toml")
    (problem,) = caught.value.problems
    assert problem.endswith(
        " engine_rules.vllm.quant_methods[0].min_capability: 'sm60' is not a compute capability (8.0)"
    )

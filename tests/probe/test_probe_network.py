"""Probes against real PyPI releases (they download a few MB each, once per session)."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envman.probe import ProbeTarget, probe
from envman.report import RecordingReporter

pytestmark = pytest.mark.network

GEMMA3_GGUF = ProbeTarget("gemma3", "xllamacpp", "xllamacpp", "llamacpp-strings", ("gemma3",))
GEMMA3_HF = ProbeTarget(
    "gemma3", "vllm", "vllm", "vllm-registry", ("Gemma3ForCausalLM", "Gemma3ForConditionalGeneration")
)
TODAY = datetime.date(2026, 11, 22)


def downloads(reporter: RecordingReporter) -> list[str]:
    return [message for kind, message in reporter.messages if message.startswith("downloading")]


def test_xllamacpp_knows_gemma3_from_0_1_11() -> None:
    result = probe(GEMMA3_GGUF, versions=SpecifierSet(">=0.1.9,<=0.1.12"), today=TODAY)
    assert result.min_version == Version("0.1.11")
    answers = {str(e.version): e.supported for e in result.examined}
    assert answers["0.1.10"] is False
    assert answers["0.1.11"] is True
    wheel = "xllamacpp-{}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert result.evidence == (
        f"{wheel.format('0.1.11')}: xllamacpp/xllamacpp.cpython-311-x86_64-linux-gnu.so references the string"
        f" gemma3; {wheel.format('0.1.10')} does not (envman probe, 2026-11-22)"
    )


def test_gemma3n_is_not_gemma3() -> None:
    gemma3n = ProbeTarget("gemma3n", "xllamacpp", "xllamacpp", "llamacpp-strings", ("gemma3n",))
    result = probe(gemma3n, versions=SpecifierSet(">=0.1.9,<=0.1.12"), today=TODAY)
    assert result.min_version is None  # 0.1.11 has gemma3 but no gemma3n


def test_vllm_knows_gemma3_from_0_8_0() -> None:
    result = probe(GEMMA3_HF, versions=SpecifierSet(">=0.7.3,<=0.8.0"), today=TODAY)
    assert result.min_version == Version("0.8.0")
    assert [(str(e.version), e.supported) for e in result.examined] == [("0.7.3", False), ("0.8.0", True)]
    assert result.evidence == (
        "vllm-0.8.0.tar.gz: vllm/model_executor/models/registry.py registers Gemma3ForCausalLM;"
        " vllm-0.7.3.tar.gz does not (envman probe, 2026-11-22)"
    )


def test_a_second_probe_downloads_nothing() -> None:
    spec = SpecifierSet(">=0.1.10,<=0.1.11")
    probe(GEMMA3_GGUF, versions=spec)
    reporter = RecordingReporter()
    again = probe(GEMMA3_GGUF, versions=spec, reporter=reporter)
    assert again.min_version == Version("0.1.11")
    assert downloads(reporter) == []


def test_cli_prints_json(envman_home: Path) -> None:
    command = [sys.executable, "-m", "envman", "probe", "gemma3", "--engine", "xllamacpp"]
    command += ["--versions", ">=0.1.10,<=0.1.11", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "ENVMAN_HOME": str(envman_home)})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["family"] == "gemma3"
    assert shown["min_version"] == "0.1.11"
    assert [(e["version"], e["supported"]) for e in shown["examined"]] == [("0.1.10", False), ("0.1.11", True)]

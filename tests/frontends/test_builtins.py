"""Xinference's built-in models: the registry read from the real wheels (PyPI), the matcher against
it, and a real ``up`` that launches the built-in ``gemma-3-1b-it`` by name from local weights.

No real Gemma-3 checkpoint can be downloaded here (no hub). The local weights of the built-in are
therefore envman's random gemma3 GGUF (the architecture the built-in is) labelled ``bf16``, one of
the built-in's GGUF quantizations, so Xinference's own lookup (name, format, size, quantization)
and its loading from ``model_path`` are what the test runs; the tokens are random-weight tokens.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from openai import OpenAI

from envman.frontends import builtins
from envman.hardware.spec import parse_hardware
from envman.matrix.schema import Format, Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan
from tests.frontends.test_serve import envman, home  # noqa: F401 (the module's Xinference home fixture)
from tests.up.test_up import free_port

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry-home")


@pytest.fixture(scope="module")
def registries(registry_home: Path) -> Iterator[dict[str, builtins.Registry]]:
    """Both known-good releases' registries, read from their wheels downloaded from PyPI."""
    patch = pytest.MonkeyPatch()
    patch.setenv("ENVMAN_HOME", str(registry_home))
    try:
        yield {v: builtins.registry(v) for v in ("1.4.0", "4.1.0")}
    finally:
        patch.undo()


def _plan(matrix: Matrix, model: str, frontend: str, hardware: str = "cpu:64GB") -> Plan:
    return Planner(matrix, parse_hardware(hardware, matrix.gpus)).plan(PlanRequest(model=model, frontend=frontend))


def test_the_registries_are_the_wheels_own(registries: dict[str, builtins.Registry]) -> None:
    old, new = registries["1.4.0"], registries["4.1.0"]
    assert old.wheel == "xinference-1.4.0-py3-none-any.whl"
    assert {b.member for b in old.builtins} == {"xinference/model/llm/llm_family.json"}
    assert len(old.builtins) == 126
    assert len(new.builtins) == 171  # one file per family under xinference/model/llm/models/
    gemma = new.get("gemma-3-1b-it")
    assert gemma is not None
    assert gemma.member == "xinference/model/llm/models/gemma-3-1b-it.json"
    assert "chat" in gemma.abilities
    (gguf,) = [s for s in gemma.specs if s.format == "ggufv2"]
    assert (gguf.size, gguf.model_id) == (1, "bartowski/google_gemma-3-1b-it-GGUF")
    assert {"Q4_K_M", "bf16"} <= set(gguf.quantizations)
    assert [s.model_id for s in gemma.specs if s.format == "pytorch"] == ["google/gemma-3-1b-it"]
    old_gemma = old.get("gemma-3-1b-it")
    assert old_gemma is not None
    assert [s.model_id for s in old_gemma.specs if s.format == "pytorch"] == ["google/gemma-3-1b-it"]


@pytest.mark.parametrize("version", ["1.4.0", "4.1.0"])
@pytest.mark.parametrize(
    ("model", "name", "size"),
    [("gemma-3-1b-it", "gemma-3-1b-it", 1), ("gemma-3-27b-it", "gemma-3-it", 27), ("qwen3-8b", "qwen3", 8)],
)
def test_catalog_models_are_built_ins_by_their_hub_repo(
    registries: dict[str, builtins.Registry], real_matrix: Matrix, version: str, model: str, name: str, size: int
) -> None:
    plan = _plan(real_matrix, model, f"xinference=={version}")
    if plan.model.name == "qwen3-8b" and version == "1.4.0":
        choice = builtins.choose(plan, registries[version])  # 1.4.0 predates Qwen3
        assert choice.kind == "custom"
        assert choice.reason == "a custom model: no built-in of Xinference 1.4.0 is qwen3-8b"
        return
    choice = builtins.choose(plan, registries[version])
    assert (choice.kind, choice.name, choice.format, choice.size) == ("builtin", name, "ggufv2", size)
    assert choice.quantization == plan.artifact.quantization == "Q4_K_M"
    repo = next(a.repo for a in plan.model.artifacts if a.format is Format.PYTORCH)
    assert choice.reason == f"the built-in {name}: its hub repo {repo} is a pytorch spec of the built-in"
    assert choice.evidence.startswith(f"xinference-{version}-py3-none-any.whl: xinference/model/llm/")


def test_a_hub_id_matches_by_repo_and_a_renamed_model_by_nothing(
    registries: dict[str, builtins.Registry], real_matrix: Matrix
) -> None:
    plan = _plan(real_matrix, "gemma-3-1b-it", "xinference==4.1.0")
    by_repo = dataclasses.replace(plan, model=dataclasses.replace(plan.model, name="google/gemma-3-1b-it"))
    assert builtins.choose(by_repo, registries["4.1.0"]).name == "gemma-3-1b-it"
    unknown = dataclasses.replace(plan.model, name="my-model", artifacts=())
    bare = dataclasses.replace(plan, model=unknown, artifact=dataclasses.replace(plan.artifact, local_only=True))
    choice = builtins.choose(bare, registries["4.1.0"])
    assert (choice.kind, choice.reason) == ("custom", "a custom model: no built-in of Xinference 4.1.0 is my-model")


def test_a_quantization_the_built_in_lacks_is_a_custom_model_with_the_reason(
    registries: dict[str, builtins.Registry], real_matrix: Matrix
) -> None:
    plan = _plan(real_matrix, "gemma-3-1b-it", "xinference==4.1.0")
    f16 = dataclasses.replace(plan, artifact=dataclasses.replace(plan.artifact, quantization="F16"))
    choice = builtins.choose(f16, registries["4.1.0"])
    assert choice.kind == "custom"
    assert choice.reason == (
        "a custom model: its hub repo google/gemma-3-1b-it is a pytorch spec of the built-in, but it has no "
        "ggufv2 spec with quantization F16 (it offers ggufv2 1B, mlx 1B, pytorch 1B)"
    )


def test_smoke_models_and_unreadable_registries_are_custom_models(real_matrix: Matrix) -> None:
    plan = _plan(real_matrix, "smoke-gemma3", "xinference==4.1.0")
    assert builtins.model_choice(plan).to_json() == {
        "kind": "custom", "name": "smoke-gemma3", "format": None, "size_in_billions": None, "quantization": None,
        "model_id": None, "reason": "a custom model: envman's smoke model is no built-in", "evidence": "",
    }  # fmt: skip
    gemma = _plan(real_matrix, "gemma-3-1b-it", "xinference==4.1.0")
    assert builtins.choose(gemma, None, "offline").reason == "a custom model: offline"


def test_plan_json_shows_the_built_in(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.helpers import cli_env

    result = subprocess.run(
        [sys.executable, "-m", "envman", "plan", "gemma-3-1b-it", "--hardware", "cpu", "--frontend",
         "xinference==4.1.0", "--json"], env=cli_env(tmp_path / "home"), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frontend = json.loads(result.stdout)["frontend"]
    assert (frontend["name"], frontend["version"]) == ("xinference", "4.1.0")
    assert frontend["model"]["kind"] == "builtin"
    assert (frontend["model"]["name"], frontend["model"]["quantization"]) == ("gemma-3-1b-it", "Q4_K_M")


def _bf16_labelled(source: Path, target: Path) -> Path:
    """A copy of ``source`` whose general.file_type says MOSTLY_BF16 (its tensors stay as they are)."""
    from gguf import GGUFReader, LlamaFileType

    shutil.copyfile(source, target)
    reader = GGUFReader(target, "r+")
    field = reader.fields["general.file_type"]
    field.parts[field.data[0]][...] = np.uint32(LlamaFileType.MOSTLY_BF16)
    del reader  # flushes the memory map
    return target


@pytest.mark.engine
@pytest.mark.slow
def test_up_launches_the_built_in_gemma_3_1b_it_from_local_weights(
    home: Path,  # noqa: F811 (the fixture imported above)
    real_matrix: Matrix,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from envman.synth import synthesize

    monkeypatch.setenv("ENVMAN_HOME", str(home))
    weights = _bf16_labelled(
        synthesize(real_matrix.models["smoke-gemma3"], Format.GGUF), home / "gemma-3-1b-it-bf16.gguf"
    )
    port = free_port()
    result = envman(
        home, "up", "gemma-3-1b-it", "--model-path", str(weights), "--frontend", "xinference", "--port", str(port),
        "--detach", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    try:
        assert data["frontend"]["model"]["kind"] == "builtin", data["frontend"]
        assert (data["frontend"]["model"]["name"], data["frontend"]["model"]["quantization"]) == (
            "gemma-3-1b-it", "bf16",
        )  # fmt: skip
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/gemma-3-1b-it", timeout=30) as answer:
            described = json.load(answer)
        # Xinference's own description: launched as its built-in, from the file given, not a download
        assert described["model_name"] == "gemma-3-1b-it"
        assert (described["model_format"], described["quantization"]) == ("ggufv2", "bf16")
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", timeout=300)
        reply = client.chat.completions.create(
            model="gemma-3-1b-it", messages=[{"role": "user", "content": "Say hi"}], max_tokens=4, temperature=0
        )
        assert reply.usage is not None
        assert reply.usage.completion_tokens >= 1
        log = Path(data["log"]).read_text(encoding="utf-8", errors="replace")
        assert "begin sync model" not in log  # a custom model is synced to the worker when registered
    finally:
        down = envman(home, "down", "gemma-3-1b-it")
    assert down.returncode == 0, down.stderr


def test_the_flag_unset_signature_matches_xinference_1_4_0s_own_text(
    registries: dict[str, builtins.Registry], registry_home: Path, tmp_path: Path
) -> None:
    """1.4.0 without USE_XLLAMACPP (or without llama-cpp-python) reaches for llama_cpp: the error its
    source raises is recognised, with the flag and the seed's --frontend as the fix."""
    import ast
    import subprocess
    import sys
    import zipfile

    from tests.helpers import cli_env

    wheel = registry_home / "artifacts" / "xinference" / registries["1.4.0"].wheel
    source = zipfile.ZipFile(wheel).read("xinference/model/llm/llama_cpp/core.py").decode()
    texts = {
        node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant)
        and isinstance(node.value, str) and "llama_cpp" in node.value and "import" in node.value.lower()
    }  # fmt: skip
    (message,) = [t for t in texts if t.startswith("Failed to import module")]
    for line in (f"ImportError: {message}", "ModuleNotFoundError: No module named 'llama_cpp'"):
        result = subprocess.run(
            [sys.executable, "-m", "envman", "diagnose", "-", "--engine", "xllamacpp", "--json"], input=line,
            env=cli_env(tmp_path / "home"), capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert "xinference-llama-cpp-python-missing" in json.dumps(found)
        assert "USE_XLLAMACPP=1" in json.dumps(found)

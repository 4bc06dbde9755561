"""Hub repo ids through huggingface_hub against the local stand-in hub (HF_ENDPOINT), via the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType, LlamaFileType

from envman.matrix.schema import Format, Matrix
from envman.models import resolve
from tests.models.conftest import envman
from tests.models.ggufs import mmproj, rewrite
from tests.weights.fakehub import COMMIT, Hub, serve


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def hub(synth: Callable[[str, Format], Path], tmp_path: Path) -> Hub:
    hub = Hub()
    hub.add("someone/tiny-llama", folder_files(synth("llama", Format.PYTORCH)), revisions=("v1",))
    gemma2 = synth("gemma2", Format.GGUF)  # 8 MB: its header is the first few KiB
    [q8] = rewrite(gemma2, tmp_path / "q8" / "tiny-gemma2-Q8_0.gguf", qtype=GGMLQuantizationType.Q8_0,
                   file_type=LlamaFileType.MOSTLY_Q8_0)  # fmt: skip
    parts = rewrite(synth("gemma2", Format.GGUF), tmp_path / "split" / "tiny-gemma2-F16.gguf", split_max_tensors=100)
    projector = mmproj(tmp_path / "mmproj-tiny-gemma2-f16.gguf")
    files = {q8.name: q8.read_bytes(), projector.name: projector.read_bytes(), "README.md": b"# tiny"}
    files |= {p.name: p.read_bytes() for p in parts}
    hub.add("someone/tiny-gemma2-GGUF", files)
    hub.add("someone/gated", folder_files(synth("llama", Format.PYTORCH)), gated=True)
    broken = folder_files(synth("llama", Format.PYTORCH))
    broken["model.safetensors"] = broken["model.safetensors"][:8] + b"{not json" + broken["model.safetensors"][17:]
    hub.add("someone/broken", broken)
    cut = files[q8.name][:-1000]
    hub.add("someone/cut-GGUF", {q8.name: cut})
    hub.add("someone/dataset-like", {"README.md": b"# no model here", "data.csv": b"a,b"})
    return hub


def inspect(env: dict[str, str], model: str) -> tuple[int, dict[str, object] | str]:
    result = envman(env, "models", "inspect", model, "--json")
    if result.returncode:
        return result.returncode, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return 0, data


def test_a_repo_id_reads_config_and_safetensors_headers_only(
    hub: Hub, hf_env: dict[str, str], real_matrix: Matrix, synth: Callable[[str, Format], Path]
) -> None:
    with serve(hub) as url:
        code, data = inspect(hf_env | {"HF_ENDPOINT": url}, "someone/tiny-llama")
    assert code == 0, data
    assert isinstance(data, dict)
    local = resolve(real_matrix, str(synth("llama", Format.PYTORCH)))
    model = data["model"]
    assert isinstance(model, dict)
    assert (data["source"], data["repo"], data["revision"]) == ("hub", "someone/tiny-llama", COMMIT)
    assert (model["name"], model["family"], model["params_b"]) == ("someone/tiny-llama", "llama", local.model.params_b)
    assert data["files"] == ["config.json", "tokenizer_config.json", "model.safetensors (header)"]
    assert data["chat_template"] is True
    [artifact] = model["artifacts"]  # type: ignore[misc]
    assert artifact["revision"] == COMMIT  # the plan downloads exactly what was read
    weights = [r for r in hub.requests if "model.safetensors" in r and r.startswith("GET")]
    assert weights
    assert all("[bytes=" in r for r in weights)  # only range requests: the header, never the weights
    assert hub.served["someone/tiny-llama/model.safetensors"] < len(
        hub.repos["someone/tiny-llama"]["model.safetensors"]
    )


def test_a_gguf_repo_has_one_artifact_per_quantization_read_by_range(hub: Hub, hf_env: dict[str, str]) -> None:
    with serve(hub) as url:
        code, data = inspect(hf_env | {"HF_ENDPOINT": url}, "someone/tiny-gemma2-GGUF")
    assert code == 0, data
    assert isinstance(data, dict)
    model = data["model"]
    assert isinstance(model, dict)
    files = hub.repos["someone/tiny-gemma2-GGUF"]
    artifacts = {a["quantization"]: a for a in model["artifacts"]}  # type: ignore[attr-defined]
    assert sorted(artifacts) == ["F16", "Q8_0"]
    split = [f for f in files if "-of-" in f]
    assert artifacts["F16"]["file"] == f"tiny-gemma2-F16-00001-of-{len(split):05d}.gguf"
    assert artifacts["F16"]["size_bytes"] == sum(len(files[f]) for f in split) + len(
        files["mmproj-tiny-gemma2-f16.gguf"]
    )
    assert artifacts["Q8_0"]["mmproj"] == "mmproj-tiny-gemma2-f16.gguf"
    assert (model["family"], model["sliding_layers"], model["modalities"]) == ("gemma2", 13, ["text", "image"])
    assert data["parameters_from"] == "GGUF tensor table"
    assert len(files["tiny-gemma2-Q8_0.gguf"]) > 1 << 20
    for name in [*split, "tiny-gemma2-Q8_0.gguf"]:  # headers by one 1 MiB range request each, not the weights
        assert 0 < hub.served[f"someone/tiny-gemma2-GGUF/{name}"] <= 1 << 20
    assert "someone/tiny-gemma2-GGUF/mmproj-tiny-gemma2-f16.gguf" not in hub.served


def test_a_revision_is_used_and_a_missing_one_named(hub: Hub, hf_env: dict[str, str]) -> None:
    with serve(hub) as url:
        code, data = inspect(hf_env | {"HF_ENDPOINT": url}, "someone/tiny-llama@v1")
        missing_code, missing = inspect(hf_env | {"HF_ENDPOINT": url}, "someone/tiny-llama@nope")
    assert code == 0
    assert isinstance(data, dict)
    assert data["revision"] == COMMIT
    assert "GET /api/models/someone/tiny-llama/revision/v1" in hub.requests
    assert missing_code == 2
    assert f"error: someone/tiny-llama has no revision 'nope' on the hub ({url})" in str(missing)


@pytest.mark.parametrize(
    ("repo", "code", "message"),
    [
        ("someone/gated", 3, "error: someone/gated is gated on the Hugging Face hub: config.json cannot be read"),
        ("someone/nope", 2, "error: someone/nope is not a model on the hub ({url}), or it is private"),
        ("someone/broken", 2, "error: someone/broken/model.safetensors: the safetensors header cannot be read"),
        ("someone/cut-GGUF", 2, "error: someone/cut-GGUF/tiny-gemma2-Q8_0.gguf is truncated: its header lists"),
        ("someone/dataset-like", 2, "error: someone/dataset-like holds neither a config.json nor .gguf files"),
    ],
)
def test_bad_repos_exit_with_what_is_wrong(
    repo: str, code: int, message: str, hub: Hub, hf_env: dict[str, str]
) -> None:
    with serve(hub) as url:
        got, stderr = inspect(hf_env | {"HF_ENDPOINT": url}, repo)
    assert got == code
    assert message.format(url=url) in str(stderr)
    assert "Traceback" not in str(stderr)


def test_offline_reads_the_cache_or_says_nothing_is_cached(hub: Hub, hf_env: dict[str, str]) -> None:
    offline = hf_env | {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    code, stderr = inspect(offline, "someone/tiny-llama")
    assert code == 3
    assert "error: someone/tiny-llama is not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in str(stderr)

    with serve(hub) as url:
        assert inspect(hf_env | {"HF_ENDPOINT": url}, "someone/tiny-llama")[0] == 0  # caches config.json
    code, data = inspect(offline, "someone/tiny-llama")
    assert code == 0, data
    assert isinstance(data, dict)
    assert (data["source"], data["revision"], data["parameters_from"]) == ("hub", COMMIT, "config shapes (estimate)")
    assert "read from the local cache: HF_HUB_OFFLINE is set" in data["warnings"]  # type: ignore[operator]


def test_an_unreachable_hub_with_nothing_cached(hf_env: dict[str, str]) -> None:
    code, stderr = inspect(hf_env | {"HF_ENDPOINT": "http://127.0.0.1:9"}, "someone/tiny-llama")
    assert code == 3
    assert "error: someone/tiny-llama is not in the local Hugging Face cache and the hub (http://127.0.0.1:9)" in str(
        stderr
    )

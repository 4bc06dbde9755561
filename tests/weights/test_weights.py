"""Weights: local paths, smoke synthesis aside, and the hub through a local stand-in (HF_ENDPOINT)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envman.errors import UsageError
from envman.matrix.schema import Artifact, Format
from envman.run.weights import check_local
from tests.weights.fakehub import Hub, serve

REPO = Path(__file__).resolve().parents[2]

# huggingface_hub reads HF_* at import: each download runs in a fresh interpreter.
SCRIPT = """
import json, sys
from pathlib import Path
from envman.matrix.schema import Artifact, Format
from envman.run.weights import download
from envman.report import NullReporter
from envman.errors import EnvmanError
spec = json.loads(sys.argv[1])
artifact = Artifact(format=Format(spec["format"]), repo=spec["repo"], file=spec.get("file"))
try:
    path = download(artifact, NullReporter())
    print(json.dumps({"path": str(path)}))
except EnvmanError as error:
    print(json.dumps({"error": type(error).__name__, "message": error.message, "hint": error.hint,
                      "exit_code": error.exit_code}))
"""


def fetch(env: dict[str, str], **spec: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(spec)], env=env, capture_output=True, text=True, check=False,
        cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


@pytest.fixture
def hub() -> Hub:
    hub = Hub()
    hub.add("org/m-GGUF", {"m-Q4_K_M.gguf": b"GGUF-q4", "m-Q8_0.gguf": b"GGUF-q8", "README.md": b"x"})
    hub.add("org/split-GGUF", {"s-Q4_K_M-00001-of-00002.gguf": b"p1", "s-Q4_K_M-00002-of-00002.gguf": b"p2"})
    hub.add("org/m", {"config.json": b"{}", "model.safetensors": b"w", "tokenizer.json": b"{}", "orig.pth": b"big"})
    hub.add("org/gated", {"config.json": b"{}"}, gated=True)
    return hub


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return base | {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}


def test_a_gguf_quantization_fetches_only_its_file(hub: Hub, env: dict[str, str]) -> None:
    with serve(hub) as url:
        got = fetch(env | {"HF_ENDPOINT": url}, format="gguf", repo="org/m-GGUF", file="m-Q4_K_M.gguf")
    path = Path(str(got["path"]))
    assert path.read_bytes() == b"GGUF-q4"
    assert not any("m-Q8_0" in r or "README" in r for r in hub.requests)


def test_a_split_gguf_fetches_every_part(hub: Hub, env: dict[str, str]) -> None:
    with serve(hub) as url:
        got = fetch(
            env | {"HF_ENDPOINT": url}, format="gguf", repo="org/split-GGUF", file="s-Q4_K_M-00001-of-00002.gguf"
        )
    path = Path(str(got["path"]))
    assert path.name == "s-Q4_K_M-00001-of-00002.gguf"
    assert (path.parent / "s-Q4_K_M-00002-of-00002.gguf").read_bytes() == b"p2"


def test_hf_weights_fetch_what_engines_load(hub: Hub, env: dict[str, str]) -> None:
    with serve(hub) as url:
        got = fetch(env | {"HF_ENDPOINT": url}, format="pytorch", repo="org/m")
    path = Path(str(got["path"]))
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]


def test_offline_uses_the_cache_and_says_what_to_do_when_it_cannot(hub: Hub, env: dict[str, str]) -> None:
    with serve(hub) as url:
        fetch(env | {"HF_ENDPOINT": url}, format="gguf", repo="org/m-GGUF", file="m-Q4_K_M.gguf")
    offline = env | {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    cached = fetch(offline, format="gguf", repo="org/m-GGUF", file="m-Q4_K_M.gguf")
    assert Path(str(cached["path"])).read_bytes() == b"GGUF-q4"

    missing = fetch(offline, format="gguf", repo="org/m-GGUF", file="m-Q8_0.gguf")
    assert missing["error"] == "PrerequisiteError"
    assert missing["message"] == (
        "org/m-GGUF/m-Q8_0.gguf is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    )
    assert "unset HF_HUB_OFFLINE" in str(missing["hint"])


def test_a_gated_model_asks_for_a_token(hub: Hub, env: dict[str, str]) -> None:
    with serve(hub) as url:
        got = fetch(env | {"HF_ENDPOINT": url}, format="pytorch", repo="org/gated")
    assert got["error"] == "PrerequisiteError"
    assert got["exit_code"] == 3
    assert got["message"] == "org/gated is gated on the Hugging Face hub"
    assert "HF_TOKEN" in str(got["hint"])


def test_a_missing_repo_or_file(hub: Hub, env: dict[str, str]) -> None:
    with serve(hub) as url:
        repo = fetch(env | {"HF_ENDPOINT": url}, format="pytorch", repo="org/nope")
        file = fetch(env | {"HF_ENDPOINT": url}, format="gguf", repo="org/m-GGUF", file="m-F16.gguf")
    assert repo["message"] == "org/nope does not exist on the hub (or is private)"
    assert file["message"] == "org/m-GGUF has no file m-F16.gguf"


@pytest.mark.slow  # huggingface_hub retries the connection for ~25 s
def test_an_unreachable_hub(env: dict[str, str]) -> None:
    unreachable = env | {
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HUB_ETAG_TIMEOUT": "1",
        "HF_HUB_DOWNLOAD_TIMEOUT": "1",
    }
    got = fetch(unreachable, format="gguf", repo="org/m-GGUF", file="m-Q4_K_M.gguf")
    assert got["error"] == "PrerequisiteError"
    assert got["message"] == (
        "could not download org/m-GGUF/m-Q4_K_M.gguf: "
        "the hub (http://127.0.0.1:9) cannot be reached and it is not cached"
    )


def test_local_paths_are_checked(tmp_path: Path) -> None:
    gguf = Artifact(format=Format.GGUF, repo="org/m-GGUF", file="m-Q4_K_M.gguf")
    hf = Artifact(format=Format.PYTORCH, repo="org/m")
    (tmp_path / "m-Q4_K_M.gguf").write_bytes(b"GGUF")
    assert check_local(tmp_path, gguf) == tmp_path / "m-Q4_K_M.gguf"
    assert check_local(tmp_path / "m-Q4_K_M.gguf", gguf) == tmp_path / "m-Q4_K_M.gguf"
    with pytest.raises(UsageError, match="is not a Hugging Face model directory"):
        check_local(tmp_path, hf)
    (tmp_path / "config.json").write_text("{}")
    assert check_local(tmp_path, hf) == tmp_path
    with pytest.raises(UsageError, match="does not exist"):
        check_local(tmp_path / "nope", hf)

"""Models written from the synthesized smoke models, under names nobody else uses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from envman.matrix.schema import Format, Matrix, Model
from envman.synth import synthesize

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def smoke(real_matrix: Matrix) -> dict[str, Model]:
    return {m.family: m for m in real_matrix.models.values() if m.smoke}


@pytest.fixture(scope="session")
def synth(smoke: dict[str, Model], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Format], Path]:
    """The smoke model of a family in one format (HF folder or GGUF file), made once per session."""
    root = tmp_path_factory.mktemp("synth")

    def make(family: str, fmt: Format) -> Path:
        return synthesize(smoke[family], fmt, root=root)

    return make


@pytest.fixture
def hf_folder(synth: Callable[[str, Format], Path], tmp_path: Path) -> Callable[..., Path]:
    """A copy of a smoke model's HF folder under another name, config.json edited by ``config``."""

    def make(family: str = "llama", name: str = "my-finetune", **config: object) -> Path:
        folder = tmp_path / name
        shutil.copytree(synth(family, Format.PYTORCH), folder)
        if config:
            data = json.loads((folder / "config.json").read_text())
            data.update(config)
            (folder / "config.json").write_text(json.dumps(data))
        return folder

    return make


@pytest.fixture
def gguf_file(synth: Callable[[str, Format], Path], tmp_path: Path) -> Callable[..., Path]:
    """A copy of a smoke model's GGUF under another name."""

    def make(family: str = "llama", name: str = "tiny-chat-F16.gguf") -> Path:
        target = tmp_path / "ggufs" / name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(synth(family, Format.GGUF), target)
        return target

    return make


@pytest.fixture
def hf_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no HF_* of the user's: a cache of its own, the repository's matrix."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ENVMAN_"))}
    return base | {
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "ENVMAN_HOME": str(tmp_path / "home"),
        "ENVMAN_CONFIG": str(tmp_path / "no-config.toml"),
        "ENVMAN_MATRIX": str(REPO / "matrix.toml"),
    }


def envman(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m envman ARGS`` as a user runs it (huggingface_hub reads HF_* at import)."""
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], capture_output=True, text=True, env=env, timeout=120, check=False,
        cwd=REPO,
    )  # fmt: skip
